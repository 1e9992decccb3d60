// `stream: true` on /ai/run: the SSE wire format pinned byte for byte (padding off), the `p` padding when on, text
// equal to the non-streamed answer, and the usage event and [DONE] terminator.

using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Sirocco.Engine.Sampling;
using Sirocco.Engine.Tokenization;
using Sirocco.Server.Apis.Common;

namespace Sirocco.Server.Tests.Http;

public sealed class StreamingTests
{
    [Fact]
    public async Task Stream_WireFormat_IsPinnedByteForByte()
    {
        await using TestServer server = await TestServer.StartAsync(new ServerOptions { SsePaddingMaxLength = 0 });
        ApiAnswer answer = await Api.PostAsync(server.Client, Api.RunPath(Api.Hf),
            """{"messages":[{"role":"system","content":"You are a friendly assistant"},{"role":"user","content":"Why is pizza so good"}],"stream":true,"max_tokens":20,"temperature":0}""");

        int[] ids = MistralChatTemplate.Encode(TestServer.Tokenizer, [new ChatMessage("system", "You are a friendly assistant"), new ChatMessage("user", "Why is pizza so good")]);
        var pieces = new List<string>();
        var reference = TestServer.Reference(ids, 20, SamplingOptions.Greedy, pieces.Add);
        var expected = new StringBuilder();
        foreach (string piece in pieces)
        {
            expected.Append("data: {\"response\":").Append(JsonSerializer.Serialize(piece, ApiResponses.SerializerOptions)).Append("}\n\n");
        }
        expected.Append($"data: {{\"response\":\"\",\"usage\":{{\"prompt_tokens\":{ids.Length},\"completion_tokens\":{reference.GeneratedTokens},\"total_tokens\":{ids.Length + reference.GeneratedTokens}}}}}\n\n");
        expected.Append("data: [DONE]\n\n");

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("text/event-stream", answer.Response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(expected.ToString(), answer.Body);
    }

    [Fact]
    public async Task Stream_WithPadding_EveryTextEventHasAPrefixOfTheAlphabet()
    {
        await using TestServer server = await TestServer.StartAsync(new ServerOptions { SsePaddingMaxLength = 40 });
        ApiAnswer answer = await Api.PostAsync(server.Client, Api.RunPath(Api.Lora), """{"prompt":"Tell me a story","stream":true,"max_tokens":30,"temperature":0}""");
        ApiAnswer whole = await Api.PostAsync(server.Client, Api.RunPath(Api.Lora), """{"prompt":"Tell me a story","max_tokens":30,"temperature":0}""");

        List<string> events = Api.SseData(answer.Body);
        Assert.Equal("[DONE]", events[^1]);
        var text = new StringBuilder();
        var lengths = new HashSet<int>();
        foreach (string data in events[..^2])
        {
            using var json = JsonDocument.Parse(data);
            text.Append(json.RootElement.GetProperty("response").GetString());
            string p = json.RootElement.GetProperty("p").GetString()!;
            Assert.Matches(new Regex("^[a-z0-9]{1,40}$"), p);
            Assert.StartsWith(p, "abcdefghijklmnopqrstuvwxyz0123456789abcd", StringComparison.Ordinal);
            lengths.Add(p.Length);
        }
        using var usage = JsonDocument.Parse(events[^2]);
        Assert.Equal("", usage.RootElement.GetProperty("response").GetString());
        Assert.False(usage.RootElement.TryGetProperty("p", out _));
        Assert.Equal(whole.Result.GetProperty("response").GetString(), text.ToString());
        Assert.Equal(whole.Result.GetProperty("usage").GetRawText(), usage.RootElement.GetProperty("usage").GetRawText());
        Assert.True(lengths.Count > 1 || events.Count < 6, "padding lengths should vary");
    }
}
