// POST /accounts/{account_id}/ai/run/{model} over real HTTP: the envelope, both path prefixes and the %2F model form,
// bodies without a JSON content type, validation errors with their codes, both catalog models' limits, the chat
// template's ids (against the golden conversations), raw prompts with <s>/</s> markers, and seeded determinism.

using System.Net;
using System.Text.Json;
using Sirocco.Engine.Sampling;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Server.Tests.Http;

public sealed class RunEndpointTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(new ServerOptions { SsePaddingMaxLength = 0, LoraContextWindow = 1024 });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private HttpClient Client => _server.Client;

    [Theory]
    [InlineData("/client/v4", Api.Hf)]
    [InlineData("", Api.Hf)]
    [InlineData("/client/v4", "@hf%2Fmistral%2Fmistral-7b-instruct-v0.2")]
    [InlineData("", "@cf%2Fmistral%2Fmistral-7b-instruct-v0.2-lora")]
    [InlineData("/client/v4", Api.Lora)]
    public async Task Run_AnyPrefixAndModelForm_AnswersTheEnvelope(string prefix, string model)
    {
        ApiAnswer answer = await Api.PostAsync(Client, Api.RunPath(model, prefix: prefix), """{"prompt":"Hello","max_tokens":5,"temperature":0}""", contentType: null);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.StartsWith("application/json", answer.Response.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
        Assert.True(answer.Json.GetProperty("success").GetBoolean());
        Assert.Equal(0, answer.Json.GetProperty("errors").GetArrayLength());
        Assert.Equal(0, answer.Json.GetProperty("messages").GetArrayLength());
        Assert.Equal(JsonValueKind.String, answer.Result.GetProperty("response").ValueKind);
        JsonElement usage = answer.Result.GetProperty("usage");
        int prompt = usage.GetProperty("prompt_tokens").GetInt32();
        int completion = usage.GetProperty("completion_tokens").GetInt32();
        Assert.Equal(MistralChatTemplate.Encode(TestServer.Tokenizer, [new ChatMessage("user", "Hello")]).Length, prompt);
        Assert.InRange(completion, 1, 5);
        Assert.Equal(prompt + completion, usage.GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Run_Greedy_EqualsTheEngineAloneOnTheSamePrompt()
    {
        ApiAnswer answer = await Api.PostAsync(Client, Api.RunPath(Api.Hf), """{"prompt":"Tell me all about PEP-8","max_tokens":12,"temperature":0}""");

        int[] ids = MistralChatTemplate.Encode(TestServer.Tokenizer, [new ChatMessage("user", "Tell me all about PEP-8")]);
        var reference = TestServer.Reference(ids, 12, SamplingOptions.Greedy);
        Assert.Equal(reference.Text, answer.Result.GetProperty("response").GetString());
        Assert.Equal(reference.GeneratedTokens, answer.Result.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Run_GoldenConversations_UseTheTemplateIds()
    {
        int checkedCount = 0;
        foreach (string line in File.ReadLines(TestData.Path("mistral-tokenizer/golden-dev-chat.jsonl")))
        {
            using var golden = JsonDocument.Parse(line);
            JsonElement messages = golden.RootElement.GetProperty("messages");
            if (messages[messages.GetArrayLength() - 1].GetProperty("role").GetString() != "user")
            {
                continue; // a transcript that ends with a finished assistant turn is not a generation request
            }
            int[] ids = [.. golden.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32())];
            string body = $$"""{"messages":{{messages.GetRawText()}},"max_tokens":4,"temperature":0}""";

            ApiAnswer answer = await Api.PostAsync(Client, Api.RunPath(Api.Lora), body);

            Assert.Equal(HttpStatusCode.OK, answer.Status);
            Assert.Equal(ids.Length, answer.Result.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
            Assert.Equal(TestServer.Reference(ids, 4, SamplingOptions.Greedy).Text, answer.Result.GetProperty("response").GetString());
            checkedCount++;
        }
        Assert.True(checkedCount >= 3, $"only {checkedCount} golden conversations end with a user message");
    }

    [Theory]
    [InlineData("""{"prompt":"<s>[INST]comedian[/INST]</s>\n[INST]tell me a joke[/INST]","raw":true}""")]
    [InlineData("""{"prompt":"<s>[INST]comedian[/INST]</s>\n[INST]tell me a joke[/INST]","raw":"true"}""")]
    public async Task Run_RawPrompt_MarkersBecomeBosAndEos(string body)
    {
        ApiAnswer answer = await Api.PostAsync(Client, Api.RunPath(Api.Lora), body[..^1] + ""","max_tokens":4,"temperature":0}""");

        Tokenizer tokenizer = TestServer.Tokenizer;
        int[] expected = [tokenizer.BosId, .. tokenizer.Encode("[INST]comedian[/INST]"), tokenizer.EosId, .. tokenizer.Encode("\n[INST]tell me a joke[/INST]")];
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal(expected.Length, answer.Result.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(TestServer.Reference(expected, 4, SamplingOptions.Greedy).Text, answer.Result.GetProperty("response").GetString());
    }

    [Fact]
    public async Task Run_RawFalseString_AppliesTheTemplate()
    {
        ApiAnswer answer = await Api.PostAsync(Client, Api.RunPath(Api.Hf), """{"prompt":"Hello","raw":"false","max_tokens":1}""");

        Assert.Equal(MistralChatTemplate.Encode(TestServer.Tokenizer, [new ChatMessage("user", "Hello")]).Length,
            answer.Result.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Run_SameSeed_SameText_DifferentSeed_DifferentText()
    {
        const string Body = """{"prompt":"Write a poem","max_tokens":24,"temperature":1.5,"seed":""";
        string Response(ApiAnswer a) => a.Result.GetProperty("response").GetString()!;

        ApiAnswer first = await Api.PostAsync(Client, Api.RunPath(Api.Hf), Body + "9999999999}");
        ApiAnswer second = await Api.PostAsync(Client, Api.RunPath(Api.Hf), Body + "9999999999}");
        ApiAnswer other = await Api.PostAsync(Client, Api.RunPath(Api.Hf), Body + "42}");

        Assert.Equal(Response(first), Response(second));
        Assert.NotEqual(Response(first), Response(other));
        int[] ids = MistralChatTemplate.Encode(TestServer.Tokenizer, [new ChatMessage("user", "Write a poem")]);
        var reference = TestServer.Reference(ids, 24, new SamplingOptions { Temperature = 1.5, Seed = 9999999999 });
        Assert.Equal(reference.Text, Response(first));
    }

    [Fact]
    public async Task Run_MaxTokensZero_AnswersEmptyWithUsage()
    {
        ApiAnswer answer = await Api.PostAsync(Client, Api.RunPath(Api.Hf), """{"prompt":"Hello","max_tokens":0}""");

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("", answer.Result.GetProperty("response").GetString());
        Assert.Equal(0, answer.Result.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Theory]
    [InlineData("""{"max_tokens":3}""", "prompt")]
    [InlineData("""{"prompt":"a","messages":[{"role":"user","content":"b"}]}""", "messages")]
    [InlineData("""{"prompt":""}""", "/prompt")]
    [InlineData("""{"prompt":5}""", "/prompt")]
    [InlineData("""{"prompt":"a","temperature":7}""", "/temperature")]
    [InlineData("""{"prompt":"a","temperature":"hot"}""", "/temperature")]
    [InlineData("""{"prompt":"a","top_k":0}""", "/top_k")]
    [InlineData("""{"prompt":"a","top_k":2.5}""", "/top_k")]
    [InlineData("""{"prompt":"a","seed":0}""", "/seed")]
    [InlineData("""{"prompt":"a","seed":10000000000}""", "/seed")]
    [InlineData("""{"prompt":"a","top_p":2.5}""", "/top_p")]
    [InlineData("""{"prompt":"a","repetition_penalty":-1}""", "/repetition_penalty")]
    [InlineData("""{"prompt":"a","max_tokens":-1}""", "max_tokens")]
    [InlineData("""{"prompt":"a","raw":"yes"}""", "raw")]
    [InlineData("""{"prompt":"a","stream":1}""", "stream")]
    [InlineData("""{"messages":[{"role":"user","content":["x"]}]}""", "/messages/0/content")]
    [InlineData("""{"messages":[{"role":"user"}]}""", "content")]
    [InlineData("""{"messages":"hi"}""", "/messages")]
    [InlineData("""{"prompt":"a","image":[1,2,3]}""", "image")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"functions":[{"name":"f","code":"1"}]}""", "functions")]
    [InlineData("""not json""", "JSON")]
    [InlineData("""[1,2]""", "object")]
    public async Task Run_InvalidBody_Is400With5006NamingTheField(string body, string named)
    {
        ApiAnswer answer = await Api.PostAsync(Client, Api.RunPath(Api.Hf), body);

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.False(answer.Json.GetProperty("success").GetBoolean());
        Assert.Equal(JsonValueKind.Null, answer.Json.GetProperty("result").ValueKind);
        Assert.Equal(5006, answer.ErrorCode);
        Assert.Contains(named, answer.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_UnknownModel_Is400With5007()
    {
        ApiAnswer answer = await Api.PostAsync(Client, Api.RunPath("@cf/meta/llama-3.1-8b-instruct"), """{"prompt":"a"}""");

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal(5007, answer.ErrorCode);
        Assert.Contains("@cf/meta/llama-3.1-8b-instruct", answer.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_HfPromptCharacters_LimitIs6144_LoraTakesMore()
    {
        string at = new('a', 6144);
        string over = new('a', 6145);

        Assert.Equal(HttpStatusCode.OK, (await Api.PostAsync(Client, Api.RunPath(Api.Hf), $$"""{"prompt":"{{at}}","max_tokens":1}""")).Status);
        ApiAnswer tooLong = await Api.PostAsync(Client, Api.RunPath(Api.Hf), $$"""{"prompt":"{{over}}","max_tokens":1}""");
        Assert.Equal(5006, tooLong.ErrorCode);
        Assert.Contains("6144", tooLong.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await Api.PostAsync(Client, Api.RunPath(Api.Lora), $$"""{"prompt":"{{over}}","max_tokens":1}""")).Status);
    }

    [Fact]
    public async Task Run_HfInputPlusMaxTokensOver4096_Is5021WithBothNumbers()
    {
        ApiAnswer answer = await Api.PostAsync(Client, Api.RunPath(Api.Hf), """{"prompt":"Hello","max_tokens":4090}""");

        int prompt = MistralChatTemplate.Encode(TestServer.Tokenizer, [new ChatMessage("user", "Hello")]).Length;
        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal(5021, answer.ErrorCode);
        Assert.Contains($"{prompt} + 4090", answer.ErrorMessage, StringComparison.Ordinal);
        Assert.Contains("4096", answer.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await Api.PostAsync(Client, Api.RunPath(Api.Hf), $$"""{"prompt":"Hello","max_tokens":{{4096 - prompt}},"temperature":0}""")).Status);
    }

    [Fact]
    public async Task Run_HfInputOver3072Tokens_Is5021()
    {
        // Digits are split one per token, so 3100 digits are over 3100 tokens, yet under 6144 characters.
        string digits = string.Concat(Enumerable.Repeat("1234567890", 310));
        ApiAnswer answer = await Api.PostAsync(Client, Api.RunPath(Api.Hf), $$"""{"prompt":"{{digits}}","max_tokens":1}""");

        Assert.Equal(5021, answer.ErrorCode);
        Assert.Contains("3072", answer.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_LoraWindow_IsTheConfiguredContext()
    {
        ApiAnswer over = await Api.PostAsync(Client, Api.RunPath(Api.Lora), """{"prompt":"Hello","max_tokens":1020}""");
        Assert.Equal(5021, over.ErrorCode);
        Assert.Contains("1024", over.ErrorMessage, StringComparison.Ordinal);

        // Without max_tokens the default 256 is shortened to what the window leaves.
        string digits = string.Concat(Enumerable.Repeat("1234567890", 98));
        ApiAnswer shortened = await Api.PostAsync(Client, Api.RunPath(Api.Lora), $$"""{"prompt":"{{digits}}","temperature":0}""");
        Assert.Equal(HttpStatusCode.OK, shortened.Status);
        JsonElement usage = shortened.Result.GetProperty("usage");
        Assert.True(usage.GetProperty("total_tokens").GetInt32() <= 1024);
    }

    [Fact]
    public async Task Run_ToolsOnHf_AnswersWithToolCalls_OnLora_Is400()
    {
        const string Tools = """
            "tools":[{"name":"getWeather","description":"Return the weather for a latitude and longitude",
              "parameters":{"type":"object","properties":{"latitude":{"type":"string","description":"The latitude"}},"required":["latitude"]}}]
            """;
        string body = $$"""{"messages":[{"role":"user","content":"what is the weather in london?"}],{{Tools}},"max_tokens":8,"temperature":0}""";

        ApiAnswer hf = await Api.PostAsync(Client, Api.RunPath(Api.Hf), body);
        ApiAnswer lora = await Api.PostAsync(Client, Api.RunPath(Api.Lora), body);

        Assert.Equal(HttpStatusCode.OK, hf.Status);
        Assert.Equal(JsonValueKind.Array, hf.Result.GetProperty("tool_calls").ValueKind);
        int plain = MistralChatTemplate.Encode(TestServer.Tokenizer, [new ChatMessage("user", "what is the weather in london?")]).Length;
        Assert.True(hf.Result.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > plain + 20, "the tool prompt should be in the prompt");
        Assert.Equal(HttpStatusCode.BadRequest, lora.Status);
        Assert.Contains("tools", lora.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_UnknownLora_Is400NamingIt()
    {
        ApiAnswer answer = await Api.PostAsync(Client, Api.RunPath(Api.Lora), """{"prompt":"a","lora":"my-adapter"}""");

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Contains("my-adapter", answer.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_BodyOverTheLimit_Is413With3006()
    {
        await using TestServer small = await TestServer.StartAsync(new ServerOptions { MaxRequestBodyBytes = 4096 });
        ApiAnswer answer = await Api.PostAsync(small.Client, Api.RunPath(Api.Lora), $$"""{"prompt":"{{new string('a', 5000)}}"}""");

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, answer.Status);
        Assert.Equal(3006, answer.ErrorCode);
    }

    [Fact]
    public async Task UnknownRoute_Is404InTheEnvelope()
    {
        ApiAnswer answer = await Api.GetAsync(Client, "/client/v4/accounts/x/nothing-here");

        Assert.Equal(HttpStatusCode.NotFound, answer.Status);
        Assert.Equal(7000, answer.ErrorCode);
    }

    [Fact]
    public async Task Healthz_IsOk()
    {
        ApiAnswer answer = await Api.GetAsync(Client, "/healthz");

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("ok", answer.Json.GetProperty("status").GetString());
    }

    [Fact]
    public async Task EachRequest_LogsOneLineWithTokensAndTimings()
    {
        ApiAnswer answer = await Api.PostAsync(Client, Api.RunPath(Api.Hf), """{"prompt":"Hello","max_tokens":3,"temperature":0}""");
        string id = answer.Response.Headers.GetValues("X-Request-Id").Single();

        // The line is written once the response is complete, which can be a moment after the client has it.
        string? line = null;
        for (int i = 0; i < 100 && line is null; i++)
        {
            line = _server.Log.FirstOrDefault(l => l.Contains("request " + id, StringComparison.Ordinal));
            await Task.Delay(i == 0 ? 0 : 50);
        }
        Assert.NotNull(line);
        Assert.Single(_server.Log, l => l.Contains("request " + id, StringComparison.Ordinal));
        Assert.Contains($"model={Api.Hf}", line, StringComparison.Ordinal);
        Assert.Contains("prompt_tokens=", line, StringComparison.Ordinal);
        Assert.Contains("completion_tokens=", line, StringComparison.Ordinal);
        Assert.Contains("ttft_ms=", line, StringComparison.Ordinal);
        Assert.Contains("tokens_per_s=", line, StringComparison.Ordinal);
    }
}
