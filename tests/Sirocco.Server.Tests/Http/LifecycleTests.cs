// Requests over time: several at once all answered (and batched), a client that disconnects stops its generation
// within a step, a full queue answers 429 with code 3040 and Retry-After, and shutdown finishes or cancels what runs.

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Sirocco.Engine.Sampling;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Server.Tests.Http;

public sealed class LifecycleTests
{
    private const string Long = """{"prompt":"Count forever","stream":true,"max_tokens":3000,"temperature":1,"seed":5}""";

    [Fact]
    public async Task ConcurrentRequests_AreAllAnsweredAsIfAlone()
    {
        await using TestServer server = await TestServer.StartAsync(new ServerOptions { MaxActiveSequences = 4 });
        string[] prompts = ["Hello", "What is the capital of France?", "Write a haiku about the sea and the wind", "1 2 3"];

        ApiAnswer[] answers = await Task.WhenAll(prompts.Select(p =>
            Api.PostAsync(server.Client, Api.RunPath(Api.Hf), $$"""{"prompt":"{{p}}","max_tokens":16,"temperature":0}""")));

        for (int i = 0; i < prompts.Length; i++)
        {
            int[] ids = MistralChatTemplate.Encode(TestServer.Tokenizer, [new ChatMessage("user", prompts[i])]);
            Assert.Equal(TestServer.Reference(ids, 16, SamplingOptions.Greedy).Text, answers[i].Result.GetProperty("response").GetString());
        }
    }

    [Fact]
    public async Task ClientDisconnect_StopsTheGenerationWithinAStep()
    {
        await using TestServer server = await TestServer.StartAsync(new ServerOptions { LoraContextWindow = 8192 });
        string longest = Long.Replace("\"max_tokens\":3000", "\"max_tokens\":8000", StringComparison.Ordinal);
        long atClose;
        // A client that goes away: a raw socket, closed after the first event. (HttpClient is not used here: disposing
        // an unfinished response drains it for up to 2 s to reuse the connection, which is not what leaving looks like.)
        using (var socket = new TcpClient())
        {
            await socket.ConnectAsync(server.Address.Host, server.Address.Port);
            NetworkStream stream = socket.GetStream();
            byte[] body = Encoding.UTF8.GetBytes(longest);
            string head = $"POST {Api.RunPath(Api.Lora)} HTTP/1.1\r\nHost: {server.Address.Authority}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
            await stream.WriteAsync(body);
            var received = new StringBuilder();
            byte[] buffer = new byte[4096];
            while (!received.ToString().Contains("data: ", StringComparison.Ordinal))
            {
                int read = await stream.ReadAsync(buffer);
                Assert.True(read > 0, "the server closed the connection before the first event");
                received.Append(Encoding.UTF8.GetString(buffer, 0, read));
            }
            atClose = server.Host.Scheduler.Stats.GeneratedTokens;
            Assert.Equal(1, server.Host.Scheduler.ActiveCount); // still generating: the close is what must stop it
            socket.Client.Close(0); // reset at once, as a killed client or a dropped network does
        }

        var clock = Stopwatch.StartNew();
        while (server.Host.Scheduler.ActiveCount > 0 && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(5);
        }
        Assert.Equal(0, server.Host.Scheduler.ActiveCount);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"the generation ran on for {clock.Elapsed} after the client left");
        long decoded = server.Host.Scheduler.Stats.GeneratedTokens;
        await Task.Delay(200);
        Assert.Equal(decoded, server.Host.Scheduler.Stats.GeneratedTokens);
        // Tokens generated after the socket closed: the server notices at its next write, and the scheduler drops the
        // sequence before the next step. (What was generated before the close depends on how fast this test thread
        // got to read, on a loaded machine; the whole request would be 8000.)
        Assert.True(decoded - atClose < 300, $"{decoded - atClose} tokens were generated after the client left (of {decoded})");
    }

    [Fact]
    public async Task FullQueue_Is429With3040AndRetryAfter()
    {
        await using TestServer server = await TestServer.StartAsync(new ServerOptions { MaxActiveSequences = 1, MaxQueuedRequests = 1, LoraContextWindow = 4096 });
        using var cancel = new CancellationTokenSource();
        // One running and one waiting fill the server; streaming keeps them there until cancelled.
        var running = new List<Task<HttpResponseMessage>>();
        for (int i = 0; i < 2; i++)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, Api.RunPath(Api.Lora)) { Content = new StringContent(Long, Encoding.UTF8, "application/json") };
            running.Add(server.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token));
            var clock = Stopwatch.StartNew();
            while (server.Host.Scheduler.ActiveCount + server.Host.Scheduler.QueuedCount < i + 1 && clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(5);
            }
        }

        ApiAnswer refused = await Api.PostAsync(server.Client, Api.RunPath(Api.Lora), """{"prompt":"one more","max_tokens":1}""");

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.Status);
        Assert.Equal(3040, refused.ErrorCode);
        Assert.True(int.Parse(refused.Response.Headers.GetValues("Retry-After").Single()) >= 1);
        await cancel.CancelAsync();
        foreach (var task in running)
        {
            try
            {
                (await task).Dispose();
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    [Fact]
    public async Task Shutdown_MidStream_EndsWithAnErrorEventAndNoDone()
    {
        TestServer server = await TestServer.StartAsync(new ServerOptions { ShutdownGrace = TimeSpan.FromMilliseconds(200), LoraContextWindow = 4096 });
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, Api.RunPath(Api.Lora)) { Content = new StringContent(Long, Encoding.UTF8, "application/json") };
            using HttpResponseMessage response = await server.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: ", await reader.ReadLineAsync(), StringComparison.Ordinal);

            Task stopping = server.App.StopAsync();
            string rest = await reader.ReadToEndAsync();
            await stopping;

            List<string> events = Api.SseData(rest.TrimStart('\n'));
            Assert.Contains("\"errors\":[{\"code\":3040", events[^1], StringComparison.Ordinal);
            Assert.Contains("\"response\":\"\"", events[^1], StringComparison.Ordinal);
            Assert.DoesNotContain("[DONE]", events);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Shutdown_CancelsWhatOutlivesTheGrace()
    {
        TestServer server = await TestServer.StartAsync(new ServerOptions { ShutdownGrace = TimeSpan.FromMilliseconds(300), LoraContextWindow = 4096 });
        try
        {
            Task<ApiAnswer> whole = Api.PostAsync(server.Client, Api.RunPath(Api.Lora), """{"prompt":"Count forever","max_tokens":4000,"temperature":1}""");
            var clock = Stopwatch.StartNew();
            while (server.Host.Scheduler.ActiveCount == 0 && clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(5);
            }

            clock.Restart();
            await server.App.StopAsync();
            ApiAnswer answer = await whole;

            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"shutdown took {clock.Elapsed}");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.Status);
            Assert.Equal(3040, answer.ErrorCode);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}
