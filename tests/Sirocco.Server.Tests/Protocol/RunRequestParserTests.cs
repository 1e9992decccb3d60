// /ai/run bodies through RunRequestParser for both models: every class of bad input with the message and pointer a
// client sees (always 400 / 5006), the leniencies Workers AI clients rely on, and the RunRequest built from good bodies.

using System.Text;
using Sirocco.Engine.Sampling;
using Sirocco.Server.Catalog;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Tests.Protocol;

public sealed class RunRequestParserTests
{
    private static readonly ModelCatalog s_catalog = ModelCatalog.Load(8192);
    private static readonly CatalogModel s_hf = s_catalog.Find(ModelCatalog.HfModelName)!;
    private static readonly CatalogModel s_lora = s_catalog.Find(ModelCatalog.LoraModelName)!;

    public static TheoryData<string> ModelNames => [ModelCatalog.HfModelName, ModelCatalog.LoraModelName];

    private static CatalogModel Model(string name) => s_catalog.Find(name)!;

    private static RunRequest Parse(string json, CatalogModel? model = null) =>
        RunRequestParser.Parse(Encoding.UTF8.GetBytes(json), model ?? s_hf);

    private static ApiException Bad(string json, CatalogModel? model = null) => BadBytes(Encoding.UTF8.GetBytes(json), model);

    private static ApiException BadBytes(byte[] body, CatalogModel? model = null)
    {
        var e = Assert.Throws<ApiException>(() => RunRequestParser.Parse(body, model ?? s_hf));
        Assert.Equal(ErrorCodes.BadInput, e.Code);
        Assert.Equal(400, e.Status);
        return e;
    }

    // ---- the body as a whole ----

    [Theory]
    [InlineData("")]
    [InlineData("  \n")]
    public void EmptyBody(string body)
    {
        var e = Bad(body);
        Assert.Equal("/: the body is empty; send a JSON object with `prompt` or `messages`", e.Message);
        Assert.Equal("/", e.Pointer);
    }

    [Theory]
    [InlineData("{\"prompt\": \"hi\"")]
    [InlineData("{prompt: \"hi\"}")]
    [InlineData("{\"prompt\": \"hi\"} x")]
    [InlineData("{\"prompt\": \"hi\",}")]
    [InlineData("prompt=hi")]
    public void MalformedJson(string body)
    {
        Assert.StartsWith("/: the body is not valid JSON: ", Bad(body).Message);
    }

    [Fact]
    public void MalformedJson_SaysWhereFromTheJsonReader()
    {
        Assert.Equal("/: the body is not valid JSON: 'p' is an invalid start of a value. LineNumber: 0 | BytePositionInLine: 0.", Bad("prompt=hi").Message);
    }

    [Fact]
    public void DuplicateKeys_AreMalformed()
    {
        Assert.StartsWith("/: the body is not valid JSON: ", Bad("""{"prompt":"a","prompt":"b"}""").Message);
    }

    [Fact]
    public void InvalidUtf8_IsMalformed()
    {
        byte[] body = [.. "{\"prompt\":\""u8, 0xFF, 0xFE, .. "\"}"u8];
        Assert.Equal("/: the body is not valid JSON: it is not valid UTF-8", BadBytes(body).Message);
    }

    [Fact]
    public void EscapedLoneSurrogate_IsMalformed()
    {
        var e = Bad("""{"prompt": "a\ud800b"}""");
        Assert.Equal("/prompt: a string holds an unpaired surrogate escape (\\uD800–\\uDFFF), which is not text", e.Message);
        Assert.Equal("/prompt", e.Pointer);
        Assert.Equal("a\U0001F600b", Parse("""{"prompt": "a\ud83d\ude00b"}""").Prompt); // a pair is fine
    }

    [Fact]
    public void Utf8Bom_IsSkipped()
    {
        byte[] body = [0xEF, 0xBB, 0xBF, .. "{\"prompt\":\"hi\"}"u8];
        Assert.Equal("hi", RunRequestParser.Parse(body, s_hf).Prompt);
    }

    [Theory]
    [InlineData("[]", "an empty array")]
    [InlineData("[{\"prompt\":\"x\"}]", "an array")]
    [InlineData("\"hello\"", "the string \"hello\"")]
    [InlineData("42", "42")]
    [InlineData("null", "null")]
    public void NonObjectBody(string body, string found)
    {
        Assert.Equal($"/: the body must be a JSON object with `prompt` or `messages`, found {found}", Bad(body).Message);
    }

    // ---- prompt versus messages ----

    [Theory]
    [MemberData(nameof(ModelNames))]
    public void NeitherPromptNorMessages(string model)
    {
        var e = Bad("""{"temperature": 0.5}""", Model(model));
        Assert.Equal("/: one of `prompt` or `messages` is required", e.Message);
        Assert.Equal("/", e.Pointer);
    }

    [Theory]
    [MemberData(nameof(ModelNames))]
    public void BothPromptAndMessages(string model)
    {
        var e = Bad("""{"prompt": "a", "messages": [{"role": "user", "content": "b"}]}""", Model(model));
        Assert.Equal("/: send either `prompt` or `messages`, not both", e.Message);
    }

    // ---- schema violations, reported for the variant the client meant ----

    [Theory]
    [InlineData("""{"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}""", "/messages/0/content: expected a string, found an array", "/messages/0/content")]
    [InlineData("""{"messages": [{"role": "user"}]}""", "/messages/0: the required property `content` is missing", "/messages/0")]
    [InlineData("""{"messages": [{"role": "user", "content": "a"}, {"content": "b"}]}""", "/messages/1: the required property `role` is missing", "/messages/1")]
    [InlineData("""{"messages": [{"role": 1, "content": "a"}]}""", "/messages/0/role: expected a string, found 1", "/messages/0/role")]
    [InlineData("""{"messages": [{"role": "user", "content": null}]}""", "/messages/0/content: expected a string, found null", "/messages/0/content")]
    [InlineData("""{"messages": ["hi"]}""", "/messages/0: expected an object, found the string \"hi\"", "/messages/0")]
    [InlineData("""{"messages": {"role": "user"}}""", "/messages: expected an array, found an object", "/messages")]
    [InlineData("""{"prompt": 5}""", "/prompt: expected a string, found 5", "/prompt")]
    [InlineData("""{"prompt": ""}""", "/prompt: the empty string is too short; the minimum length is 1 character", "/prompt")]
    [InlineData("""{"prompt": "x", "temperature": 7}""", "/temperature: 7 is above the maximum 5", "/temperature")]
    [InlineData("""{"prompt": "x", "temperature": -0.1}""", "/temperature: -0.1 is below the minimum 0", "/temperature")]
    [InlineData("""{"prompt": "x", "temperature": "0.5"}""", "/temperature: expected a number, found the string \"0.5\"", "/temperature")]
    [InlineData("""{"prompt": "x", "top_p": 2.5}""", "/top_p: 2.5 is above the maximum 2", "/top_p")]
    [InlineData("""{"prompt": "x", "top_k": 0}""", "/top_k: 0 is below the minimum 1", "/top_k")]
    [InlineData("""{"prompt": "x", "top_k": 51}""", "/top_k: 51 is above the maximum 50", "/top_k")]
    [InlineData("""{"prompt": "x", "top_k": 2.5}""", "/top_k: expected an integer, found 2.5", "/top_k")]
    [InlineData("""{"prompt": "x", "seed": 0}""", "/seed: 0 is below the minimum 1", "/seed")]
    [InlineData("""{"prompt": "x", "seed": 10000000000}""", "/seed: 10000000000 is above the maximum 9999999999", "/seed")]
    [InlineData("""{"prompt": "x", "seed": 1.5}""", "/seed: expected an integer, found 1.5", "/seed")]
    [InlineData("""{"prompt": "x", "max_tokens": 10.5}""", "/max_tokens: expected an integer, found 10.5", "/max_tokens")]
    [InlineData("""{"prompt": "x", "max_tokens": "10"}""", "/max_tokens: expected an integer, found the string \"10\"", "/max_tokens")]
    [InlineData("""{"prompt": "x", "repetition_penalty": 2.01}""", "/repetition_penalty: 2.01 is above the maximum 2", "/repetition_penalty")]
    [InlineData("""{"prompt": "x", "frequency_penalty": -1}""", "/frequency_penalty: -1 is below the minimum 0", "/frequency_penalty")]
    [InlineData("""{"prompt": "x", "presence_penalty": 3}""", "/presence_penalty: 3 is above the maximum 2", "/presence_penalty")]
    [InlineData("""{"prompt": "x", "lora": 7}""", "/lora: expected a string, found 7", "/lora")]
    [InlineData("""{"messages": [{"role": "user", "content": "x"}], "lora": ["a"]}""", "/lora: expected a string, found an array", "/lora")]
    [InlineData("""{"messages": [{"role": "user", "content": "x"}], "raw": 1}""", "/raw: expected a boolean, found 1", "/raw")]
    [InlineData("""{"messages": [{"role": "user", "content": "x"}], "stream": 0}""", "/stream: expected a boolean, found 0", "/stream")]
    [InlineData("""{"messages": [{"role": "tool", "content": "x", "name": 3}]}""", "/messages/0/name: expected a string, found 3", "/messages/0/name")]
    [InlineData("""{"messages": [{"role": "assistant", "content": "x", "tool_calls": {}}]}""", "/messages/0/tool_calls: expected an array, found an object", "/messages/0/tool_calls")]
    public void SchemaViolation_NamesPathValueAndRule(string body, string message, string pointer)
    {
        foreach (var model in new[] { s_hf, s_lora })
        {
            var e = Bad(body, model);
            Assert.Equal(message, e.Message);
            Assert.Equal(pointer, e.Pointer);
        }
    }

    [Fact]
    public void SeveralViolations_AreAllListed()
    {
        var e = Bad("""{"prompt": "x", "temperature": 9, "top_k": 0}""");
        Assert.Equal("/temperature: 9 is above the maximum 5; /top_k: 0 is below the minimum 1", e.Message);
        Assert.Equal("/temperature", e.Pointer);
    }

    [Fact]
    public void ManyViolations_AreCapped()
    {
        string messages = string.Join(",", Enumerable.Range(0, 15).Select(_ => """{"role": "user"}"""));
        var e = Bad($$"""{"messages": [{{messages}}]}""");
        Assert.EndsWith("; and 5 more", e.Message);
    }

    [Theory]
    [InlineData(ModelCatalog.HfModelName, 6144)]
    [InlineData(ModelCatalog.LoraModelName, 131072)]
    public void PromptAndContentLength_PerModel(string name, int max)
    {
        var model = Model(name);
        Assert.Equal(max, model.Limits.MaxPromptCharacters);
        Assert.Equal(max, Parse($$"""{"prompt": "{{new string('a', max)}}"}""", model).Prompt!.Length);
        Assert.Equal($"/prompt: a string of {max + 1} characters is longer than the maximum {max} characters",
            Bad($$"""{"prompt": "{{new string('a', max + 1)}}"}""", model).Message);
        Assert.Single(Parse($$"""{"messages": [{"role": "user", "content": "{{new string('a', max)}}"}]}""", model).Messages!);
        Assert.Equal($"/messages/0/content: a string of {max + 1} characters is longer than the maximum {max} characters",
            Bad($$"""{"messages": [{"role": "user", "content": "{{new string('a', max + 1)}}"}]}""", model).Message);
    }

    [Fact]
    public void PromptLength_CountsCodePoints()
    {
        string emoji = string.Concat(Enumerable.Repeat("😀", 6144)); // 12288 UTF-16 units
        Assert.Equal(12288, Parse($$"""{"prompt": "{{emoji}}"}""").Prompt!.Length);
    }

    // ---- raw and stream as strings ----

    [Theory]
    [InlineData("\"true\"", true)]
    [InlineData("\"false\"", false)]
    [InlineData("true", true)]
    [InlineData("false", false)]
    public void Raw_AcceptsBooleanOrItsString(string raw, bool expected)
    {
        Assert.Equal(expected, Parse($$"""{"prompt": "x", "raw": {{raw}}}""").Raw);
        Assert.Equal(expected, Parse($$"""{"messages": [{"role": "user", "content": "x"}], "raw": {{raw}}}""", s_lora).Raw);
        Assert.Equal(expected, Parse($$"""{"prompt": "x", "stream": {{raw}}}""").Stream);
    }

    [Theory]
    [InlineData("raw", "yes")]
    [InlineData("raw", "True")]
    [InlineData("stream", "1")]
    [InlineData("stream", "")]
    public void RawOrStream_OtherStrings_AreRefused(string field, string value)
    {
        var e = Bad($$"""{"prompt": "x", "{{field}}": "{{value}}"}""");
        Assert.Equal($"/{field}: expected a boolean (or the string \"true\" or \"false\"), found the string \"{value}\"", e.Message);
        Assert.Equal("/" + field, e.Pointer);
    }

    [Fact]
    public void LoraDocsExample_MessagesWithRawStringAndLora()
    {
        var request = Parse("""{ "messages": [{"role": "user", "content": "Hello world"}], "raw": "true", "lora": "00000000-0000-0000-0000-000000000" }""", s_lora);
        Assert.True(request.Raw);
        Assert.Equal("00000000-0000-0000-0000-000000000", request.Lora);
        Assert.Equal([new RunMessage("user", "Hello world")], request.Messages!);
    }

    // ---- unsupported fields ----

    [Theory]
    [MemberData(nameof(ModelNames))]
    public void Image_IsRefused(string model)
    {
        var e = Bad("""{"prompt": "describe", "image": [1, 2, 3]}""", Model(model));
        Assert.Equal($"/image: {model} is a text-only model; this model does not support `image`", e.Message);
        Assert.Equal("/image", e.Pointer);
        Assert.Contains("does not support `image`", Bad("""{"messages": [{"role": "user", "content": "x"}], "image": "AAAA"}""", Model(model)).Message);
    }

    [Theory]
    [MemberData(nameof(ModelNames))]
    public void Functions_AreRefused(string model)
    {
        var e = Bad("""{"messages": [{"role": "user", "content": "x"}], "functions": [{"name": "f", "code": "return 1"}]}""", Model(model));
        Assert.Equal("/functions: this model does not support `functions` (embedded code execution); describe tools with `tools` instead", e.Message);
        Assert.Null(Parse("""{"messages": [{"role": "user", "content": "x"}], "functions": []}""", Model(model)).Tools);
    }

    [Fact]
    public void Tools_OnTheLoraModel_AreRefusedNamingIt()
    {
        var e = Bad("""{"messages": [{"role": "user", "content": "x"}], "tools": [{"name": "f"}]}""", s_lora);
        Assert.Equal("/tools: @cf/mistral/mistral-7b-instruct-v0.2-lora does not support `tools`; use @hf/mistral/mistral-7b-instruct-v0.2 for tool use, or send the request without `tools`", e.Message);
        Assert.Equal("/tools", e.Pointer);
        Assert.Null(Parse("""{"messages": [{"role": "user", "content": "x"}], "tools": []}""", s_lora).Tools);
    }

    // ---- max_tokens ----

    [Fact]
    public void MaxTokens_NegativeRefused_ZeroAccepted_HugeClamped()
    {
        var e = Bad("""{"prompt": "x", "max_tokens": -1}""");
        Assert.Equal("/max_tokens: -1 is below the minimum 0", e.Message);
        Assert.Equal("/max_tokens", e.Pointer);
        Assert.Equal(0, Parse("""{"prompt": "x", "max_tokens": 0}""").MaxTokens);
        Assert.Equal(0, Parse("""{"prompt": "x", "max_tokens": 0}""").EffectiveMaxTokens);
        Assert.Equal(100, Parse("""{"prompt": "x", "max_tokens": 100.0}""").MaxTokens);
        Assert.Equal(int.MaxValue, Parse("""{"prompt": "x", "max_tokens": 1e12}""").MaxTokens);
        Assert.Null(Parse("""{"prompt": "x"}""").MaxTokens);
        Assert.Equal(256, Parse("""{"prompt": "x"}""").EffectiveMaxTokens);
    }

    // ---- leniencies ----

    [Fact]
    public void NullFields_CountAsNotGiven()
    {
        var request = Parse("""{"prompt": "x", "temperature": null, "max_tokens": null, "raw": null, "lora": null, "messages": null}""");
        Assert.Equal("x", request.Prompt);
        Assert.Null(request.Temperature);
        Assert.Null(request.MaxTokens);
        Assert.False(request.Raw);
        Assert.Null(request.Messages);
    }

    [Fact]
    public void UnknownFields_AreIgnored()
    {
        var request = Parse("""{"prompt": "x", "response_format": {"type": "json_object"}, "foo": [1], "messages_extra": 2}""");
        Assert.Equal("x", request.Prompt);
    }

    [Fact]
    public void ToolMessageFields_AreAccepted()
    {
        var request = Parse("""
            {"messages": [
              {"role": "user", "content": "weather?"},
              {"role": "assistant", "content": null, "tool_calls": [{"id": "1", "type": "function", "function": {"name": "getWeather", "arguments": "{\"city\":\"Paris\"}"}}]},
              {"role": "tool", "content": "{\"temp\": 21}", "name": "getWeather", "tool_call_id": "1"}]}
            """, s_lora);
        var messages = request.Messages!;
        Assert.Equal("", messages[1].Content);
        Assert.Equal("getWeather", Assert.Single(messages[1].ToolCalls!)["function"]!["name"]!.GetValue<string>());
        Assert.Equal("getWeather", messages[2].Name);
        Assert.Equal("1", messages[2].ToolCallId);
    }

    [Fact]
    public void BlankLora_CountsAsNotGiven()
    {
        Assert.Null(Parse("""{"prompt": "x", "lora": ""}""").Lora);
        Assert.Null(Parse("""{"prompt": "x", "lora": "  "}""").Lora);
        Assert.Equal("cf-public-magicoder", Parse("""{"prompt": "x", "lora": "cf-public-magicoder"}""").Lora);
    }

    // ---- messages ----

    [Fact]
    public void EmptyConversation_IsRefused()
    {
        var e = Bad("""{"messages": []}""");
        Assert.Equal("/messages: the conversation is empty; send at least one message", e.Message);
    }

    [Fact]
    public void UnknownRole_IsRefusedNamingItAndTheAcceptedOnes()
    {
        var e = Bad("""{"messages": [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]}""");
        Assert.Equal("/messages/1/role: the role \"robot\" is not supported; use \"system\", \"developer\", \"user\", \"assistant\", \"tool\", \"function\"", e.Message);
        Assert.Equal("/messages/1/role", e.Pointer);
        Assert.Contains("\"User\" is not supported", Bad("""{"messages": [{"role": "User", "content": "a"}]}""").Message);
    }

    [Fact]
    public void AllAcceptedRoles_Parse()
    {
        var request = Parse("""
            {"messages": [{"role": "system", "content": "s"}, {"role": "developer", "content": "d"}, {"role": "user", "content": "u"},
                          {"role": "assistant", "content": "a"}, {"role": "tool", "content": "t"}, {"role": "function", "content": "f"}]}
            """);
        Assert.Equal(["system", "developer", "user", "assistant", "tool", "function"], request.Messages!.Select(m => m.Role));
    }

    // ---- values and sampling ----

    [Fact]
    public void AllFields_AreRead()
    {
        var request = Parse("""
            {"prompt": "p", "raw": true, "stream": true, "max_tokens": 12, "temperature": 0, "top_p": 0.9, "top_k": 40,
             "seed": 9999999999, "repetition_penalty": 1.1, "frequency_penalty": 0.5, "presence_penalty": 0.25, "lora": "my-lora"}
            """);
        Assert.Equal("p", request.Prompt);
        Assert.True(request.Raw);
        Assert.True(request.Stream);
        Assert.Equal(12, request.MaxTokens);
        Assert.Equal(0, request.Temperature);
        Assert.Equal(0.9, request.TopP);
        Assert.Equal(40, request.TopK);
        Assert.Equal(9999999999L, request.Seed);
        Assert.Equal(1.1, request.RepetitionPenalty);
        Assert.Equal(0.5, request.FrequencyPenalty);
        Assert.Equal(0.25, request.PresencePenalty);
        Assert.Equal("my-lora", request.Lora);

        var sampling = request.ToSamplingOptions();
        Assert.True(sampling.IsGreedy);
        Assert.Equal(0.9, sampling.TopP);
        Assert.Equal(40, sampling.TopK);
        Assert.Equal(9999999999UL, sampling.Seed);
        Assert.Equal(1.1, sampling.RepetitionPenalty);
        Assert.Equal(0.5, sampling.FrequencyPenalty);
        Assert.Equal(0.25, sampling.PresencePenalty);
        Assert.Empty(sampling.Validate());
    }

    [Fact]
    public void Sampling_Defaults_AreWorkersAiTemperatureAndEverythingElseOff()
    {
        var sampling = Parse("""{"prompt": "p"}""").ToSamplingOptions();
        Assert.Equal(new SamplingOptions { Temperature = 0.6, TopP = 1, TopK = 0, RepetitionPenalty = 1, FrequencyPenalty = 0, PresencePenalty = 0, Seed = null }, sampling);
    }

    [Fact]
    public void Sampling_RepetitionPenaltyZero_IsOff_AndTopPAboveOneIsKept()
    {
        var sampling = Parse("""{"prompt": "p", "repetition_penalty": 0, "top_p": 2}""").ToSamplingOptions();
        Assert.Equal(1, sampling.RepetitionPenalty);
        Assert.Equal(2, sampling.TopP);
        Assert.Empty(sampling.Validate());
    }

    // ---- tools ----

    [Fact]
    public void Tools_BothForms()
    {
        var request = Parse("""
            {"messages": [{"role": "user", "content": "x"}], "tools": [
              {"name": "getWeather", "description": "Weather at a place", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
              {"type": "function", "function": {"name": "getTime", "parameters": {"type": "object", "properties": {}}}}]}
            """);
        Assert.True(request.UsesTools);
        var tools = request.Tools!;
        Assert.Equal(["getWeather", "getTime"], tools.Select(t => t.Name));
        Assert.Equal("Weather at a place", tools[0].Description);
        Assert.Null(tools[1].Description);
        Assert.Equal("string", tools[0].Parameters!["properties"]!["city"]!["type"]!.GetValue<string>());
    }

    [Fact]
    public void Tools_WithPrompt_AreAcceptedOnTheHfModel()
    {
        Assert.Equal("f", Assert.Single(Parse("""{"prompt": "x", "tools": [{"name": "f"}]}""").Tools!).Name);
    }

    [Theory]
    [InlineData("""[{"description": "no name"}]""", "/tools/0: a tool needs a non-empty string `name`")]
    [InlineData("""[{"type": "function", "function": {"name": ""}}]""", "/tools/0/function: a tool needs a non-empty string `name`")]
    [InlineData("""[{"name": "f"}, {"name": "f"}]""", "/tools/1/name: the tool name \"f\" is used twice")]
    [InlineData("""[{"type": "retrieval", "function": {"name": "f"}}]""", "/tools/0/type: expected \"function\", found the string \"retrieval\"")]
    [InlineData("""[{"name": "f", "parameters": "x"}]""", "/tools/0/parameters: expected an object (a JSON schema), found the string \"x\"")]
    [InlineData("""[{"name": "f", "description": 3}]""", "/tools/0/description: expected a string, found 3")]
    [InlineData("""["f"]""", "/tools/0: expected an object, found the string \"f\"")]
    [InlineData("""[{"type": "function", "function": {"name": 5}}]""", "/tools/0/function/name: expected a string, found 5")]
    public void Tools_Malformed(string tools, string message)
    {
        Assert.Equal(message, Bad($$"""{"messages": [{"role": "user", "content": "x"}], "tools": {{tools}}}""").Message);
    }

    [Fact]
    public void Tools_WithRaw_AreRefused()
    {
        var e = Bad("""{"prompt": "x", "raw": true, "tools": [{"name": "f"}]}""");
        Assert.Equal("/tools: `tools` needs the chat template, and `raw` turns it off; send one or the other", e.Message);
    }

    [Fact]
    public void ToolChoice()
    {
        const string body = """{"messages": [{"role": "user", "content": "x"}], "tools": [{"name": "a"}, {"name": "b"}], "tool_choice": CHOICE}""";
        Assert.Equal(2, Parse(body.Replace("CHOICE", "\"auto\"")).Tools!.Count);
        Assert.Equal(2, Parse(body.Replace("CHOICE", "\"required\"")).Tools!.Count);
        Assert.Null(Parse(body.Replace("CHOICE", "\"none\"")).Tools);
        Assert.Equal("b", Assert.Single(Parse(body.Replace("CHOICE", """{"type": "function", "function": {"name": "b"}}""")).Tools!).Name);
        Assert.Equal("a", Assert.Single(Parse(body.Replace("CHOICE", "\"a\"")).Tools!).Name);
        Assert.Equal("/tool_choice: there is no tool named \"c\"; the tools are \"a\", \"b\"",
            Bad(body.Replace("CHOICE", """{"type": "function", "function": {"name": "c"}}""")).Message);
        Assert.StartsWith("/tool_choice: expected \"auto\", \"none\", \"required\"", Bad(body.Replace("CHOICE", "3")).Message);
        Assert.Equal(2, Parse(body.Replace("CHOICE", "null")).Tools!.Count);
    }

    [Fact]
    public void ParsingFromManyThreads_SharesTheCatalogSafely()
    {
        var fresh = ModelCatalog.Load(4096); // nothing validated with it yet
        Parallel.For(0, 256, i =>
        {
            var model = fresh.Models[i % 2];
            var request = RunRequestParser.Parse(Encoding.UTF8.GetBytes($$"""{"messages": [{"role": "user", "content": "m{{i}}"}], "temperature": 1, "top_k": {{i % 50 + 1}}}"""), model);
            Assert.Equal(i % 50 + 1, request.TopK);
            Assert.Throws<ApiException>(() => RunRequestParser.Parse("""{"prompt": "x", "temperature": 9}"""u8, model));
            Assert.NotNull(model.Entry["id"]);
        });
    }

    // ---- model lookup ----

    [Fact]
    public void UnknownModel_FindReturnsNull_AndTheErrorNamesIt()
    {
        Assert.Null(s_catalog.Find("@cf/meta/llama-2-7b-chat-int8"));
        var e = ApiException.NoSuchModel("@cf/meta/llama-2-7b-chat-int8");
        Assert.Equal(ErrorCodes.NoSuchModel, e.Code);
        Assert.Equal(400, e.Status);
        Assert.Equal("No such model @cf/meta/llama-2-7b-chat-int8 or task", e.Message);
    }
}
