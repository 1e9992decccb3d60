// The OpenAI-compatible routes driven by the official OpenAI .NET SDK (NuGet `OpenAI`), streamed and not, and by raw
// HTTP for the parts the SDK hides: chunk framing, include_usage, completions, models and errors.

using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using Sirocco.Engine.Sampling;
using Sirocco.Engine.Tokenization;
using ChatMessage = OpenAI.Chat.ChatMessage;

namespace Sirocco.Server.Tests.Http;

public sealed class OpenAiTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private ChatClient Chat(string path = "v1") =>
        new(Api.Hf, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(_server.Address, path) });

    [Fact]
    public async Task OfficialSdk_ChatCompletion_StreamedAndNot_GiveTheSameText()
    {
        ChatMessage[] messages = [new SystemChatMessage("You are terse."), new UserChatMessage("Name a colour.")];
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12 };

        ChatCompletion whole = (await Chat().CompleteChatAsync(messages, options)).Value;
        var streamed = new StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (StreamingChatCompletionUpdate update in Chat("client/v4/accounts/acc/ai/v1").CompleteChatStreamingAsync(messages, options))
        {
            foreach (var part in update.ContentUpdate)
            {
                streamed.Append(part.Text);
            }
            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }

        int[] ids = MistralChatTemplate.Encode(TestServer.Tokenizer,
            [new Engine.Tokenization.ChatMessage("system", "You are terse."), new Engine.Tokenization.ChatMessage("user", "Name a colour.")]);
        var reference = TestServer.Reference(ids, 12, SamplingOptions.Greedy);
        Assert.Equal(reference.Text, whole.Content[0].Text);
        Assert.Equal(reference.Text, streamed.ToString());
        Assert.Equal(ids.Length, whole.Usage.InputTokenCount);
        Assert.Equal(reference.GeneratedTokens, whole.Usage.OutputTokenCount);
        Assert.NotNull(usage);
        Assert.Equal(whole.Usage.TotalTokenCount, usage.TotalTokenCount);
        Assert.Equal(whole.FinishReason, finish);
    }

    [Fact]
    public async Task OfficialSdk_UnknownModel_RaisesWithTheServersMessage()
    {
        var client = new ChatClient("gpt-4o", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(_server.Address, "v1") });

        var error = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, error.Status);
        Assert.Contains("gpt-4o", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChatStream_IncludeUsage_EndsWithAUsageChunkThenDone()
    {
        ApiAnswer answer = await Api.PostAsync(_server.Client, "/v1/chat/completions",
            $$"""{"model":"{{Api.Lora}}","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":5,"temperature":0}""");

        List<string> events = Api.SseData(answer.Body);
        Assert.Equal("[DONE]", events[^1]);
        using var first = JsonDocument.Parse(events[0]);
        Assert.Equal("assistant", first.RootElement.GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        using var last = JsonDocument.Parse(events[^2]);
        Assert.Equal(0, last.RootElement.GetProperty("choices").GetArrayLength());
        Assert.True(last.RootElement.GetProperty("usage").GetProperty("total_tokens").GetInt32() > 0);
        using var finish = JsonDocument.Parse(events[^3]);
        Assert.NotEqual(JsonValueKind.Null, finish.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind);
        Assert.All(events[..^1], e => Assert.Equal("chat.completion.chunk", JsonDocument.Parse(e).RootElement.GetProperty("object").GetString()));
    }

    [Fact]
    public async Task Completions_ContinueTheRawPrompt()
    {
        ApiAnswer answer = await Api.PostAsync(_server.Client, "/v1/completions",
            $$"""{"model":"{{Api.Hf}}","prompt":"Once upon a time","max_tokens":6,"temperature":0}""");

        int[] ids = TestServer.Tokenizer.Encode("Once upon a time", addBos: true);
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("text_completion", answer.Json.GetProperty("object").GetString());
        Assert.Equal(TestServer.Reference(ids, 6, SamplingOptions.Greedy).Text, answer.Json.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal(ids.Length, answer.Json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Models_ListsBothCatalogModels()
    {
        ApiAnswer answer = await Api.GetAsync(_server.Client, "/v1/models");

        Assert.Equal("list", answer.Json.GetProperty("object").GetString());
        Assert.Equal([Api.Lora, Api.Hf], answer.Json.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).Order());
    }

    [Theory]
    [InlineData("""{"model":"@hf/mistral/mistral-7b-instruct-v0.2"}""", "messages")]
    [InlineData("""{"model":"@hf/mistral/mistral-7b-instruct-v0.2","messages":[{"role":"user","content":"x"}],"temperature":9}""", "temperature")]
    [InlineData("""{"model":"@hf/mistral/mistral-7b-instruct-v0.2","messages":[{"role":"user","content":"x"}],"n":2}""", "n")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}]}""", "model")]
    public async Task Chat_BadBody_IsAn400InOpenAisShape(string body, string named)
    {
        ApiAnswer answer = await Api.PostAsync(_server.Client, "/v1/chat/completions", body);

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("invalid_request_error", answer.Json.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains(named, answer.Json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chat_StopSequence_EndsTheTextBeforeIt()
    {
        ApiAnswer free = await Api.PostAsync(_server.Client, "/v1/chat/completions",
            $$"""{"model":"{{Api.Hf}}","messages":[{"role":"user","content":"Go"}],"max_tokens":30,"temperature":0}""");
        string text = free.Json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.True(text.Length > 6, "the reference text is too short for this test");
        string stop = text.Substring(text.Length / 2, 2);
        string expected = text[..text.IndexOf(stop, StringComparison.Ordinal)];

        ApiAnswer stopped = await Api.PostAsync(_server.Client, "/v1/chat/completions",
            $$"""{"model":"{{Api.Hf}}","messages":[{"role":"user","content":"Go"}],"max_tokens":30,"temperature":0,"stop":{{JsonSerializer.Serialize(stop)}}}""");

        JsonElement choice = stopped.Json.GetProperty("choices")[0];
        Assert.Equal(expected, choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
    }
}
