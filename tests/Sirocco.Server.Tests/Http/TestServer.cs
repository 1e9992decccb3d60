// Starts the real server (Kestrel on 127.0.0.1, a free port) over a tiny generated model — the Mistral architecture
// and the real tokenizer with seeded random weights and an 8192-token context — so tests speak HTTP to it as clients
// do. Each test gets its own server with its own options; the model file is written once per test run.

using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Sirocco.Engine.Generation;
using Sirocco.Engine.Model;
using Sirocco.Engine.Sampling;
using Sirocco.Engine.Synthesis;
using Sirocco.Engine.Tokenization;
using Sirocco.Server.Hosting;

namespace Sirocco.Server.Tests.Http;

internal sealed class TestServer : IAsyncDisposable
{
    public const ulong Seed = 11;

    /// <summary>The tiny preset with the real vocabulary and an 8192-token context (so the @hf model's 4096-token
    /// window and a LoRA window set by the test both fit).</summary>
    public static ModelConfig Config { get; } = SyntheticPresets.Tiny with { ContextLength = 8192 };

    private static readonly Lazy<TempDir> s_dir = new(() => new TempDir());
    private static readonly Lazy<string> s_model = new(() =>
    {
        string path = s_dir.Value.File("tiny-q8_0.gguf");
        SyntheticModelWriter.WriteGguf(path, Config, ModelFileType.Q8_0, SyntheticTokenizers.Mistral(), Seed);
        return path;
    });
    private static readonly Lazy<Tokenizer> s_tokenizer = new(() => TokenizerLoader.Load(s_model.Value));

    public static Tokenizer Tokenizer => s_tokenizer.Value;

    public static string ModelPath => s_model.Value;

    private readonly TempDir? _ownDataDirectory;

    private TestServer(WebApplication app, ModelHost host, Uri address, ConcurrentQueue<string> log, TempDir? ownDataDirectory)
    {
        _ownDataDirectory = ownDataDirectory;
        App = app;
        Host = host;
        Address = address;
        Log = log;
        Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(2) };
    }

    public WebApplication App { get; }

    public ModelHost Host { get; }

    public Uri Address { get; }

    public HttpClient Client { get; }

    /// <summary>Log lines the server wrote ("Level Category: message | exception").</summary>
    public ConcurrentQueue<string> Log { get; }

    /// <summary>Starts a server with <paramref name="options"/> (host and port are forced to 127.0.0.1:0).</summary>
    /// <param name="dataDirectory">The adapter store's directory when the options name none; null gives the server a
    /// fresh temporary one, deleted when it stops (a test that restarts a server passes the same one twice).</param>
    public static async Task<TestServer> StartAsync(ServerOptions? options = null, string? dataDirectory = null)
    {
        options = (options ?? new ServerOptions { SsePaddingMaxLength = 0 }) with { Host = "127.0.0.1", Port = 0 };
        TempDir? ownDataDirectory = options.DataDirectory is null && dataDirectory is null ? new TempDir() : null;
        options = options with { DataDirectory = options.DataDirectory ?? dataDirectory ?? ownDataDirectory!.FullPath };
        var model = new LlamaModel(WeightLoader.Load(ModelPath), threads: 2, maxBatchTokens: 128);
        var host = new ModelHost(model, Tokenizer, options, "tiny-q8_0.gguf", KvCacheType.F32);
        var log = new ConcurrentQueue<string>();
        WebApplication app = SiroccoServer.Build(options, host, logging => logging.AddProvider(new QueueLoggerProvider(log)));
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new TestServer(app, host, new Uri(address + "/"), log, ownDataDirectory);
    }

    /// <summary>What the engine alone generates for <paramref name="promptIds"/> (a reference for HTTP answers).</summary>
    public static GenerationResult Reference(int[] promptIds, int maxTokens, SamplingOptions sampling, Action<string>? onText = null)
    {
        using var model = new LlamaModel(WeightLoader.Load(ModelPath), threads: 2, maxBatchTokens: 128);
        using KvCachePool cache = model.CreateCache(KvCacheOptions.ForPositions(model.Config, promptIds.Length + maxTokens + 1, KvCacheType.F32));
        return new TextGenerator(model, Tokenizer, cache).Generate(promptIds, maxTokens, sampling, onText);
    }

    /// <summary>Stops the server, then checks it logged nothing at Error or Critical: every failure a test provokes
    /// must be answered, not crash a request.</summary>
    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        Host.Dispose();
        _ownDataDirectory?.Dispose();
        string[] errors = [.. Log.Where(l => l.StartsWith("Error ", StringComparison.Ordinal) || l.StartsWith("Critical ", StringComparison.Ordinal))];
        Assert.True(errors.Length == 0, "the server logged errors:\n" + string.Join("\n", errors));
    }

    private sealed class QueueLoggerProvider(ConcurrentQueue<string> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new QueueLogger(categoryName, lines);

        public void Dispose()
        {
        }
    }

    private sealed class QueueLogger(string category, ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " | " + exception.GetType().Name + ": " + exception.Message)}");
    }
}
