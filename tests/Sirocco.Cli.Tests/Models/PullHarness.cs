// One in-process pull setup per test: a fake hub, an empty model store in a temporary directory, and a resolver whose
// hub options point at the fake with fast retries; progress and notes are captured instead of printed.

using Sirocco.Cli.Models;

namespace Sirocco.Cli.Tests.Models;

internal sealed class PullHarness : IAsyncDisposable
{
    private readonly StringWriter _log = new();

    private PullHarness(FakeHub hub, string storeDirectory)
    {
        Hub = hub;
        StoreDirectory = storeDirectory;
    }

    public FakeHub Hub { get; }

    public string StoreDirectory { get; }

    public ModelStore Store => new(StoreDirectory);

    /// <summary>What the pulls reported (notes and progress lines).</summary>
    public string Log => _log.ToString();

    public static async Task<PullHarness> StartAsync()
    {
        string dir = Path.Combine(Path.GetTempPath(), "sirocco-store-" + Guid.NewGuid().ToString("N")[..10]);
        return new PullHarness(await FakeHub.StartAsync(), dir);
    }

    public HubOptions Options(string? token = null, bool offline = false, int maxAttempts = 4) => new()
    {
        Endpoint = Hub.Endpoint,
        Token = token,
        Offline = offline,
        RetryDelay = TimeSpan.FromMilliseconds(10),
        MaxAttempts = maxAttempts,
        ReadTimeout = TimeSpan.FromSeconds(20),
    };

    public ModelResolver Resolver(HubOptions? options = null, Func<string, long>? freeSpace = null, string? aliases = null) =>
        new(Store, options ?? Options(), ModelAliases.WithOverrides(aliases), new DownloadReporter(_log, isTerminal: false), freeSpace);

    public Task<ResolvedModel> ResolveAsync(string reference, HubOptions? options = null, Func<string, long>? freeSpace = null) =>
        Resolver(options, freeSpace).ResolveAsync(reference, download: true, CancellationToken.None);

    /// <summary>Every file under the store, relative, sorted.</summary>
    public string[] StoreFiles() => Directory.Exists(StoreDirectory)
        ? [.. Directory.EnumerateFiles(StoreDirectory, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(StoreDirectory, f)).Order(StringComparer.Ordinal)]
        : [];

    public async ValueTask DisposeAsync()
    {
        await Hub.DisposeAsync();
        if (Directory.Exists(StoreDirectory))
        {
            Directory.Delete(StoreDirectory, recursive: true);
        }
        await _log.DisposeAsync();
    }
}
