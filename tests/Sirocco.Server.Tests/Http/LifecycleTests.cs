// Requests over time: several at once all answered (and batched), a client that disconnects stops its generation
// within a step, a full queue answers 429 with code 3040 and Retry-After, and shutdown finishes or cancels what runs.

using System.Diagnostics;
using System.Net;
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
        await using TestServer server = await TestServer.StartAsync(new ServerOptions { LoraContextWindow = 4096 });
        using var request = new HttpRequestMessage(HttpMethod.Post, Api.RunPath(Api.Lora)) { Content = new StringContent(Long, Encoding.UTF8, "application/json") };
        using (HttpResponseMessage response = await server.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: ", await reader.ReadLineAsync(), StringComparison.Ordinal);
        } // disposing the response closes the connection mid-stream

        var clock = Stopwatch.StartNew();
        while (server.Host.Scheduler.ActiveCount > 0 && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(10);
        }
        Assert.Equal(0, server.Host.Scheduler.ActiveCount);
        long decoded = server.Host.Scheduler.Stats.GeneratedTokens;
        await Task.Delay(200);
        Assert.Equal(decoded, server.Host.Scheduler.Stats.GeneratedTokens);
        Assert.True(decoded < 3000, $"decoded {decoded} tokens; the disconnect should have stopped it early");
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
