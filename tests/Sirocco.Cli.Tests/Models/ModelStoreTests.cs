// The model store on disk: removal deletes a model's files but not ones another stored model shares, and prunes empty
// folders; --verify catches a file changed after download and takes the model out of use; a file gone missing makes
// the model damaged (never loaded) until a pull repairs it, fetching only what is missing.

using Sirocco.Cli.Models;

namespace Sirocco.Cli.Tests.Models;

public sealed class ModelStoreTests
{
    [Fact]
    public async Task Remove_DeletesTheModel_ButKeepsFilesAnotherModelShares()
    {
        await using var h = await PullHarness.StartAsync();
        FakeRepo repo = TinyHubModels.AddGgufRepo(h.Hub);
        ResolvedModel byQuant = await h.ResolveAsync("test-org/Tiny-GGUF:Q4_K_M");
        int cdnRequests = h.Hub.Requests.Count(r => r.ToCdn);
        ResolvedModel byFile = await h.ResolveAsync("test-org/Tiny-GGUF:tiny.Q4_K_M.gguf");
        Assert.Equal(byQuant.Path, byFile.Path);
        Assert.Equal(cdnRequests, h.Hub.Requests.Count(r => r.ToCdn)); // shared and already verified: not fetched again
        ModelStore store = h.Store;
        Assert.Equal(2, store.List().Count);

        long freed = store.Remove(store.Find(PullTests.HubRef("test-org/Tiny-GGUF:Q4_K_M"))!);

        Assert.Equal(0, freed);
        Assert.True(File.Exists(byFile.Path));
        Assert.Equal(StoredModelState.Ready, Assert.Single(store.List()).State);

        freed = store.Remove(store.Find(PullTests.HubRef("test-org/Tiny-GGUF:tiny.Q4_K_M.gguf"))!);

        Assert.Equal(TinyHubModels.Gguf.Length, freed);
        Assert.Empty(store.List());
        Assert.Empty(Directory.EnumerateFileSystemEntries(h.StoreDirectory));
        Assert.NotNull(repo);
    }

    [Fact]
    public async Task Verify_CatchesAChangedFile_AndTheModelIsNotUsedAgain()
    {
        await using var h = await PullHarness.StartAsync();
        TinyHubModels.AddGgufRepo(h.Hub);
        ResolvedModel model = await h.ResolveAsync("test-org/Tiny-GGUF:Q4_K_M");
        var reporter = new DownloadReporter(TextWriter.Null, false);
        Assert.Null(await ModelStore.VerifyAsync(h.Store.List()[0], reporter, CancellationToken.None));
        using (var f = new FileStream(model.Path, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = 1000;
            f.WriteByte(0xEE);
        }

        string? problem = await ModelStore.VerifyAsync(h.Store.List()[0], reporter, CancellationToken.None);

        Assert.Matches("^tiny.Q4_K_M.gguf does not match its sha256 \\(expected [0-9a-f]{64}, got [0-9a-f]{64}\\); it was deleted$", problem);
        Assert.False(File.Exists(model.Path));
        Assert.Empty(h.Store.List());
        var e = await Assert.ThrowsAsync<ModelStoreException>(() => h.ResolveAsync("test-org/Tiny-GGUF:Q4_K_M", h.Options(offline: true)));
        Assert.Contains("is not in the model store", e.Message);
    }

    [Fact]
    public async Task MissingFile_MakesTheModelDamaged_AndAPullRepairsOnlyThat()
    {
        await using var h = await PullHarness.StartAsync();
        TinyHubModels.AddCheckpointRepo(h.Hub);
        ResolvedModel model = await h.ResolveAsync("test-org/Tiny-HF");
        File.Delete(Path.Combine(model.Path, "tokenizer.json"));

        StoredModel damaged = Assert.Single(h.Store.List());
        Assert.Equal(StoredModelState.Damaged, damaged.State);
        Assert.Equal("tokenizer.json is missing", damaged.Problem);
        var e = await Assert.ThrowsAsync<ModelStoreException>(() => h.ResolveAsync("test-org/Tiny-HF", h.Options(offline: true)));
        Assert.Equal($"test-org/Tiny-HF in the model store is damaged (tokenizer.json is missing) and offline mode (--offline or HF_HUB_OFFLINE) forbids downloading it: run `sirocco pull test-org/Tiny-HF` to repair it", e.Message);

        int before = h.Hub.Requests.Count(r => r.Path.Contains("/resolve/", StringComparison.Ordinal));
        ResolvedModel repaired = await h.ResolveAsync("test-org/Tiny-HF");

        Assert.True(File.Exists(Path.Combine(repaired.Path, "tokenizer.json")));
        Assert.Equal(StoredModelState.Ready, Assert.Single(h.Store.List()).State);
        string[] fetched = [.. h.Hub.Requests.Where(r => r.Path.Contains("/resolve/", StringComparison.Ordinal)).Skip(before).Select(r => r.Path)];
        Assert.Single(fetched);
        Assert.EndsWith("/tokenizer.json", fetched[0]);
        Assert.Contains("damaged", h.Log);
    }
}
