// Pulling from a fake hub on 127.0.0.1, in process: a fresh pull verifies and registers the model; a dropped
// connection resumes with Range (counted in bytes served); digests and sizes that do not match are rejected leaving
// nothing that looks complete; 401/403/404 and an unreachable hub give one clear message; a stored model is reused
// without a request; disk space is checked first; offline mode never touches the network.

using System.Security.Cryptography;
using Sirocco.Cli.Models;
using Sirocco.Engine.Model;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Cli.Tests.Models;

public sealed class PullTests
{
    private const string GgufRef = "test-org/Tiny-GGUF:Q4_K_M";

    [Fact]
    public async Task FreshPull_VerifiesWritesAManifestAndTheModelLoads()
    {
        await using var h = await PullHarness.StartAsync();
        FakeRepo repo = TinyHubModels.AddGgufRepo(h.Hub);

        ResolvedModel model = await h.ResolveAsync(GgufRef);

        string expected = Path.Combine(h.StoreDirectory, "test-org", "tiny-gguf", repo.Commit, "tiny.Q4_K_M.gguf");
        Assert.Equal(expected, model.Path);
        Assert.Equal(TinyHubModels.Gguf, File.ReadAllBytes(model.Path));
        Assert.Equal([$"test-org/tiny-gguf/{repo.Commit}/tiny.Q4_K_M.gguf", "test-org/tiny-gguf/quant-q4_k_m.manifest.json"], h.StoreFiles());
        StoredModel stored = Assert.Single(h.Store.List());
        Assert.Equal(StoredModelState.Ready, stored.State);
        Assert.True(stored.Manifest.Verified);
        Assert.Equal("Q4_K_M", stored.Manifest.Quantization);
        Assert.Equal(repo.Commit, stored.Manifest.Commit);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(TinyHubModels.Gguf)), Assert.Single(stored.Manifest.Files).Sha256);
        string manifest = File.ReadAllText(stored.ManifestPath);
        Assert.Contains("\"kind\": \"Gguf\"", manifest);
        Assert.Contains("\"load_path\": \"tiny.Q4_K_M.gguf\"", manifest);
        Assert.Contains("\"verified\": true", manifest);
        Assert.DoesNotContain("size_bytes", manifest);
        // The download went hub → 302 → CDN on the other port; only the chosen file was fetched.
        Assert.Single(h.Hub.Requests, r => r.ToCdn);
        Assert.Equal(TinyHubModels.Gguf.Length, h.Hub.CdnBytesServed);
        using LlamaModel llama = new(WeightLoader.Load(model.Path), threads: 1);
        Assert.Equal(1, llama.Config.LayerCount);
    }

    [Fact]
    public async Task StoredModel_IsReusedWithoutARequest()
    {
        await using var h = await PullHarness.StartAsync();
        TinyHubModels.AddGgufRepo(h.Hub);
        ResolvedModel first = await h.ResolveAsync(GgufRef);
        int requests = h.Hub.RequestCount;

        ResolvedModel again = await h.ResolveAsync(GgufRef);
        ResolvedModel offline = await h.ResolveAsync(GgufRef, h.Options(offline: true));
        ResolvedModel otherCase = await h.ResolveAsync("TEST-ORG/tiny-gguf:q4_k_m");

        Assert.Equal(first.Path, again.Path);
        Assert.Equal(first.Path, offline.Path);
        Assert.Equal(first.Path, otherCase.Path);
        Assert.Equal(requests, h.Hub.RequestCount);
    }

    [Fact]
    public async Task DroppedConnection_ResumesWithRange_WithoutStartingAgain()
    {
        await using var h = await PullHarness.StartAsync();
        TinyHubModels.AddGgufRepo(h.Hub);
        int size = TinyHubModels.Gguf.Length;
        h.Hub.DropAfterBytes = size / 2;
        h.Hub.DropCount = 1;

        ResolvedModel model = await h.ResolveAsync(GgufRef);

        Assert.Equal(TinyHubModels.Gguf, File.ReadAllBytes(model.Path));
        FakeRequest[] cdn = [.. h.Hub.Requests.Where(r => r.ToCdn)];
        Assert.Equal(2, cdn.Length);
        Assert.Null(cdn[0].Range);
        // The second request asks for the rest from what arrived (the server's last buffered bytes may be lost in the
        // abort), and the server sent about the file once, not one and a half times.
        long resumedAt = ResumeOffset(cdn[1]);
        Assert.InRange(resumedAt, 1, size / 2);
        Assert.InRange(h.Hub.CdnBytesServed, size, size + (size / 2 - resumedAt));
        Assert.Contains("the connection dropped", h.Log);
        Assert.DoesNotContain(h.StoreFiles(), f => f.EndsWith(".partial", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DroppedConnection_AfterTheRetries_KeepsThePartial_AndTheNextPullResumes()
    {
        await using var h = await PullHarness.StartAsync();
        TinyHubModels.AddGgufRepo(h.Hub);
        int size = TinyHubModels.Gguf.Length;
        h.Hub.DropAfterBytes = size / 3;
        h.Hub.DropCount = 1;

        var e = await Assert.ThrowsAsync<ModelStoreException>(() => h.ResolveAsync(GgufRef, h.Options(maxAttempts: 1)));

        Assert.Contains("are kept — run `sirocco pull test-org/Tiny-GGUF:Q4_K_M` again to resume", e.Message);
        string partial = Assert.Single(h.StoreFiles(), f => f.EndsWith(".partial", StringComparison.Ordinal));
        long kept = new FileInfo(Path.Combine(h.StoreDirectory, partial)).Length;
        Assert.InRange(kept, 1, size / 3);
        Assert.Equal(StoredModelState.Incomplete, Assert.Single(h.Store.List()).State);
        Assert.Null(h.Store.Find(HubRef(GgufRef)));

        ResolvedModel model = await h.ResolveAsync(GgufRef);

        Assert.Equal(TinyHubModels.Gguf, File.ReadAllBytes(model.Path));
        Assert.Equal($"bytes={kept}-", h.Hub.Requests.Last(r => r.ToCdn).Range);
        Assert.InRange(h.Hub.CdnBytesServed, size, size + (size / 3 - kept));
        Assert.Contains("resuming at", h.Log);
        Assert.Equal(StoredModelState.Ready, Assert.Single(h.Store.List()).State);
    }

    [Fact]
    public async Task DigestMismatch_IsRejected_AndNothingCompleteLooking_IsLeft()
    {
        await using var h = await PullHarness.StartAsync();
        TinyHubModels.AddGgufRepo(h.Hub);
        h.Hub.CorruptContent = true;

        var e = await Assert.ThrowsAsync<ModelStoreException>(() => h.ResolveAsync(GgufRef));

        string sha = Convert.ToHexStringLower(SHA256.HashData(TinyHubModels.Gguf));
        Assert.Matches($"the download of tiny.Q4_K_M.gguf from test-org/Tiny-GGUF does not match the sha256 the hub published \\(expected {sha}, got [0-9a-f]{{64}}\\); it was deleted — run `sirocco pull test-org/Tiny-GGUF:Q4_K_M` again", e.Message);
        Assert.DoesNotContain(h.StoreFiles(), f => f.EndsWith(".gguf", StringComparison.Ordinal) || f.EndsWith(".partial", StringComparison.Ordinal) || f.EndsWith(".manifest.json", StringComparison.Ordinal));
        Assert.Null(h.Store.Find(HubRef(GgufRef)));
    }

    [Fact]
    public async Task ServerSendingMoreBytes_IsRejected()
    {
        await using var h = await PullHarness.StartAsync();
        TinyHubModels.AddGgufRepo(h.Hub);
        h.Hub.ExtraBytes = 100;

        var e = await Assert.ThrowsAsync<ModelStoreException>(() => h.ResolveAsync(GgufRef));

        Assert.Contains($"the server announced {TinyHubModels.Gguf.Length + 100:N0} bytes for tiny.Q4_K_M.gguf of test-org/Tiny-GGUF, but the hub published {TinyHubModels.Gguf.Length:N0}", e.Message);
        Assert.DoesNotContain(h.StoreFiles(), f => f.EndsWith(".gguf", StringComparison.Ordinal) || f.EndsWith(".partial", StringComparison.Ordinal) || f.EndsWith(".manifest.json", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ServerIgnoringRange_RestartsCleanly()
    {
        await using var h = await PullHarness.StartAsync();
        TinyHubModels.AddGgufRepo(h.Hub);
        h.Hub.DropAfterBytes = TinyHubModels.Gguf.Length / 2;
        h.Hub.DropCount = 1;
        h.Hub.IgnoreRange = true;

        ResolvedModel model = await h.ResolveAsync(GgufRef);

        Assert.Equal(TinyHubModels.Gguf, File.ReadAllBytes(model.Path));
        Assert.Contains("the server ignored the request to resume (200 instead of 206)", h.Log);
    }

    [Fact]
    public async Task DamagedPartialFromAnEarlierRun_IsDetected_AndDownloadedAgain()
    {
        await using var h = await PullHarness.StartAsync();
        FakeRepo repo = TinyHubModels.AddGgufRepo(h.Hub);
        string dir = Path.Combine(h.StoreDirectory, "test-org", "tiny-gguf", repo.Commit);
        Directory.CreateDirectory(dir);
        byte[] damaged = TinyHubModels.Gguf[..(TinyHubModels.Gguf.Length / 2)];
        damaged[100] ^= 0xFF;
        File.WriteAllBytes(Path.Combine(dir, "tiny.Q4_K_M.gguf.partial"), damaged);

        ResolvedModel model = await h.ResolveAsync(GgufRef);

        Assert.Equal(TinyHubModels.Gguf, File.ReadAllBytes(model.Path));
        Assert.Contains("the partial file kept from an earlier run was damaged", h.Log);
    }

    [Fact]
    public async Task PartialLargerThanTheFile_StartsAgain()
    {
        await using var h = await PullHarness.StartAsync();
        FakeRepo repo = TinyHubModels.AddGgufRepo(h.Hub);
        string dir = Path.Combine(h.StoreDirectory, "test-org", "tiny-gguf", repo.Commit);
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "tiny.Q4_K_M.gguf.partial"), new byte[TinyHubModels.Gguf.Length + 10]);

        ResolvedModel model = await h.ResolveAsync(GgufRef);

        Assert.Equal(TinyHubModels.Gguf, File.ReadAllBytes(model.Path));
        Assert.Contains("is larger than the file", h.Log);
        Assert.Null(h.Hub.Requests.Single(r => r.ToCdn).Range);
    }

    [Fact]
    public async Task MissingRepository_404_SaysCheckTheName()
    {
        await using var h = await PullHarness.StartAsync();

        var e = await Assert.ThrowsAsync<ModelStoreException>(() => h.ResolveAsync("test-org/No-Such-Repo:Q4_K_M", h.Options(token: FakeHub.ValidToken)));

        Assert.Equal($"no repository test-org/No-Such-Repo on {h.Hub.Endpoint.AbsoluteUri.TrimEnd('/')} (404 Not Found): check the name; if it is private, check that your token can read it", e.Message);
        Assert.Empty(h.StoreFiles());
    }

    [Fact]
    public async Task MissingRepository_Anonymous401_MentionsTheToken()
    {
        await using var h = await PullHarness.StartAsync();

        var e = await Assert.ThrowsAsync<ModelStoreException>(() => h.ResolveAsync("test-org/No-Such-Repo"));

        Assert.StartsWith("no repository test-org/No-Such-Repo on http://127.0.0.1:", e.Message);
        Assert.Contains("(401 Unauthorized), or it is private or gated and needs a Hugging Face token: check the name, or set HF_TOKEN", e.Message);
    }

    [Fact]
    public async Task MissingFile_404_FromResolve()
    {
        await using var h = await PullHarness.StartAsync();
        FakeRepo repo = TinyHubModels.AddGgufRepo(h.Hub);
        using var hub = new HubClient(h.Options());

        var e = await Assert.ThrowsAsync<ModelStoreException>(() => hub.OpenFileAsync(HubRef(GgufRef), repo.Commit, "tiny.Q9_K.gguf", 0, CancellationToken.None));

        Assert.Equal($"test-org/Tiny-GGUF has no file tiny.Q9_K.gguf on {h.Hub.Endpoint.AbsoluteUri.TrimEnd('/')} (404 Not Found): check the name", e.Message);
    }

    [Fact]
    public async Task UnknownQuant_ListsWhatTheRepositoryHas()
    {
        await using var h = await PullHarness.StartAsync();
        TinyHubModels.AddGgufRepo(h.Hub);

        var e = await Assert.ThrowsAsync<ModelStoreException>(() => h.ResolveAsync("test-org/Tiny-GGUF:Q5_K_M"));

        Assert.Equal("test-org/Tiny-GGUF has no GGUF file for Q5_K_M; it has IQ4_K_M, Q4_K_M, Q4_K_M_L, Q8_0 (for example test-org/Tiny-GGUF:Q4_K_M)", e.Message);
        Assert.Empty(h.StoreFiles());
    }

    [Fact]
    public async Task GatedRepository_WithoutToken_401_SaysSetHfToken()
    {
        await using var h = await PullHarness.StartAsync();
        TinyHubModels.AddGgufRepo(h.Hub, "test-org/Gated-GGUF", FakeAccess.Gated);

        var e = await Assert.ThrowsAsync<ModelStoreException>(() => h.ResolveAsync("test-org/Gated-GGUF:Q4_K_M"));

        Assert.Equal($"test-org/Gated-GGUF is a gated repository: it needs a Hugging Face token: set HF_TOKEN (and accept the model's terms at {h.Hub.Endpoint.AbsoluteUri}test-org/Gated-GGUF)", e.Message);
        Assert.Empty(h.StoreFiles()); // refused before a byte arrived: not even the plan is left
        Assert.Empty(h.Store.List());
    }

    [Fact]
    public async Task GatedRepository_TokenWithoutAccess_403_SaysAcceptTheTerms()
    {
        await using var h = await PullHarness.StartAsync();
        TinyHubModels.AddGgufRepo(h.Hub, "test-org/Gated-GGUF", FakeAccess.Gated);

        var e = await Assert.ThrowsAsync<ModelStoreException>(() => h.ResolveAsync("test-org/Gated-GGUF:Q4_K_M", h.Options(token: FakeHub.NoAccessToken)));

        Assert.StartsWith("test-org/Gated-GGUF is a gated repository and your token has no access to it (403 Forbidden): accept its terms at", e.Message);
    }

    [Fact]
    public async Task PrivateRepository_WithToken_Downloads_AndTheTokenNeverReachesTheCdn()
    {
        await using var h = await PullHarness.StartAsync();
        TinyHubModels.AddGgufRepo(h.Hub, "test-org/Private-GGUF", FakeAccess.Private);

        var anonymous = await Assert.ThrowsAsync<ModelStoreException>(() => h.ResolveAsync("test-org/Private-GGUF:Q4_K_M"));
        ResolvedModel model = await h.ResolveAsync("test-org/Private-GGUF:Q4_K_M", h.Options(token: FakeHub.ValidToken));

        Assert.Contains("needs a Hugging Face token", anonymous.Message);
        Assert.Equal(TinyHubModels.Gguf, File.ReadAllBytes(model.Path));
        Assert.All(h.Hub.Requests.Where(r => !r.ToCdn).Skip(1), r => Assert.Equal($"Bearer {FakeHub.ValidToken}", r.Authorization));
        Assert.All(h.Hub.Requests.Where(r => r.ToCdn), r => Assert.Null(r.Authorization));
        Assert.Contains(h.Hub.Requests, r => r.ToCdn);
    }

    [Fact]
    public async Task UnreachableHub_SaysSoAtOnce()
    {
        await using var h = await PullHarness.StartAsync();
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now
        HubOptions options = h.Options() with { Endpoint = new Uri($"http://127.0.0.1:{port}"), RetryDelay = TimeSpan.FromSeconds(30) };

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<ModelStoreException>(() => h.ResolveAsync(GgufRef, options));

        Assert.StartsWith($"cannot reach http://127.0.0.1:{port}: ", e.Message);
        Assert.Contains("use --offline with a model already in the store", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "no retries before the hub ever answered");
    }

    [Fact]
    public async Task NotEnoughDiskSpace_FailsBeforeDownloading()
    {
        await using var h = await PullHarness.StartAsync();
        TinyHubModels.AddGgufRepo(h.Hub);

        var e = await Assert.ThrowsAsync<ModelStoreException>(() => h.ResolveAsync(GgufRef, freeSpace: _ => 10L << 20));

        Assert.StartsWith("not enough disk space for test-org/Tiny-GGUF:Q4_K_M: the download needs ", e.Message);
        Assert.Contains($"has 10.0 MiB free (keeping 64.0 MiB spare); free some space, or put the store elsewhere with --models-dir or SIROCCO_MODELS", e.Message);
        Assert.DoesNotContain(h.Hub.Requests, r => r.ToCdn);
        Assert.Empty(h.StoreFiles());
    }

    [Fact]
    public async Task Offline_MissingModel_NamesThePullCommand_WithoutARequest()
    {
        await using var h = await PullHarness.StartAsync();
        TinyHubModels.AddGgufRepo(h.Hub);

        var e = await Assert.ThrowsAsync<ModelStoreException>(() => h.ResolveAsync(GgufRef, h.Options(offline: true)));

        Assert.Equal($"test-org/Tiny-GGUF:Q4_K_M is not in the model store ({h.StoreDirectory}) and offline mode (--offline or HF_HUB_OFFLINE) forbids downloading it: run `sirocco pull test-org/Tiny-GGUF:Q4_K_M` first (while online), or give a local file", e.Message);
        Assert.Equal(0, h.Hub.RequestCount);
    }

    [Fact]
    public async Task SafeTensorsRepository_TakesTheCheckpoint_SkipsDuplicates_AndLoads()
    {
        await using var h = await PullHarness.StartAsync();
        FakeRepo repo = TinyHubModels.AddCheckpointRepo(h.Hub);

        ResolvedModel model = await h.ResolveAsync("test-org/Tiny-HF");

        Assert.Equal(Path.Combine(h.StoreDirectory, "test-org", "tiny-hf", repo.Commit), model.Path);
        string[] files = [.. Directory.EnumerateFiles(model.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];
        Assert.Equal(TinyHubModels.Checkpoint.Keys.Order(StringComparer.Ordinal), files);
        Assert.DoesNotContain(h.Hub.Requests, r => r.Path.Contains("pytorch_model.bin", StringComparison.Ordinal) || r.Path.Contains("consolidated", StringComparison.Ordinal) || r.Path.Contains("README", StringComparison.Ordinal));
        StoredModel stored = Assert.Single(h.Store.List());
        Assert.Equal(ModelKind.SafeTensors, stored.Manifest.Kind);
        Assert.Equal("BF16", stored.Manifest.Quantization);
        using LlamaModel llama = new(WeightLoader.Load(model.Path), threads: 1);
        Tokenizer tokenizer = TokenizerLoader.Load(model.Path);
        Assert.Equal([1, 22557, 1526], tokenizer.Encode("Hello world", addBos: true));
    }

    [Fact]
    public async Task SmallFileWithWrongContent_FailsItsGitBlobId()
    {
        await using var h = await PullHarness.StartAsync();
        FakeRepo repo = TinyHubModels.AddCheckpointRepo(h.Hub);
        // The file list gave config.json's blob id; the hub then serves other bytes of the same length.
        FakeFile listed = repo.Files["config.json"];
        byte[] other = [.. listed.Content];
        other[^2] = (byte)'X';
        var served = new FakeFile("config.json", other, Lfs: false);
        repo.Files["config.json"] = served;
        using var hub = new HubClient(h.Options());
        var downloader = new Downloader(hub, new DownloadReporter(TextWriter.Null, false));
        string target = Path.Combine(h.StoreDirectory, "config.json");
        var entry = new HubFileEntry("config.json", listed.Content.Length, listed.GitOid, null);

        var e = await Assert.ThrowsAsync<ModelStoreException>(() =>
            downloader.DownloadAsync(HubRef("test-org/Tiny-HF"), repo.Commit, entry, target, "config.json", "sirocco pull test-org/Tiny-HF", CancellationToken.None));

        Assert.Contains($"does not match the git blob id the hub published (expected {listed.GitOid}, got {served.GitOid})", e.Message);
        Assert.False(File.Exists(target));
        Assert.False(File.Exists(target + ".partial"));
    }

    [Fact]
    public async Task EmptyFile_IsWrittenWithoutARequest_AndChecked()
    {
        await using var h = await PullHarness.StartAsync();
        var empty = new FakeFile("empty.txt", [], Lfs: false);
        using var hub = new HubClient(h.Options());
        var downloader = new Downloader(hub, new DownloadReporter(TextWriter.Null, false));
        string target = Path.Combine(h.StoreDirectory, "empty.txt");

        string sha = await downloader.DownloadAsync(HubRef("o/r"), new string('0', 40), new HubFileEntry("empty.txt", 0, empty.GitOid, null), target, "empty.txt", "sirocco pull o/r", CancellationToken.None);

        Assert.Equal(empty.Sha256, sha);
        Assert.Equal(0, new FileInfo(target).Length);
        Assert.Equal(0, h.Hub.RequestCount);
        await Assert.ThrowsAsync<ModelStoreException>(() => downloader.DownloadAsync(HubRef("o/r"), new string('0', 40),
            new HubFileEntry("bad.txt", 0, new string('1', 40), null), target, "bad.txt", "sirocco pull o/r", CancellationToken.None));
    }

    private static long ResumeOffset(FakeRequest request) =>
        request.Range is { } range && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-')
            ? long.Parse(range[6..^1])
            : throw new InvalidOperationException($"not a resume: {request.Range}");

    internal static HubModelReference HubRef(string text) =>
        HubModelReference.TryParse(text, out var reference) ? reference : throw new ArgumentException(text);
}
