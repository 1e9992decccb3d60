// FinetuneStore on a temporary directory: the create → upload → list → delete cycle, persistence across instances,
// crash leftovers (a failing stream, temp files, an unreferenced blob) recovered at open, parallel writers in one
// "process" and across two store instances sharing the lock file, names, accounts and public finetunes, limits.

using System.Security.Cryptography;
using Sirocco.Server.Finetunes;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Tests.Finetunes;

public sealed class FinetuneStoreTests : IDisposable
{
    private const string Lora = "@cf/mistral/mistral-7b-instruct-v0.2-lora";
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task CreateUploadListDelete_RoundTrip()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);

        Finetune created = store.Create("acc", "my-adapter", Lora, "test adapter");
        Assert.False(created.IsReady);
        Assert.True(Guid.TryParseExact(created.Id, "D", out _));
        Assert.Equal(created.CreatedAt, created.ModifiedAt);
        Assert.False(created.IsPublic);

        Finetune half = await store.UploadAsync("acc", created.Id, Finetune.ConfigFileName, new MemoryStream(AdapterFiles.Config()));
        Assert.False(half.IsReady);
        Assert.Equal([Finetune.WeightsFileName], half.MissingFileNames);
        byte[] weights = AdapterFiles.Weights();
        Finetune ready = await store.UploadAsync("acc", "my-adapter", Finetune.WeightsFileName, new MemoryStream(weights));
        Assert.True(ready.IsReady);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(weights)), ready.Files[Finetune.WeightsFileName].Sha256);
        Assert.Equal(weights.Length, ready.Files[Finetune.WeightsFileName].SizeBytes);

        Finetune listed = Assert.Single(store.List("acc"));
        Assert.Equal(ready, listed);
        Assert.Empty(store.ListPublic());

        ResolvedAdapter resolved = store.ResolveForRun("acc", "my-adapter");
        Assert.Equal(weights, File.ReadAllBytes(resolved.WeightsPath));
        Assert.Equal(AdapterFiles.Config(), File.ReadAllBytes(resolved.ConfigPath));
        Assert.Equal(resolved, store.ResolveForRun("acc", created.Id.ToUpperInvariant()));

        Assert.Equal(created.Id, store.Delete("acc", created.Id).Id);
        Assert.Empty(store.List("acc"));
        Assert.Empty(AdapterFiles.Blobs(_dir.FullPath));
        Assert.Empty(AdapterFiles.TempFiles(_dir.FullPath));
    }

    [Fact]
    public async Task NewInstanceOnTheSameDirectory_SeesEverything()
    {
        FinetuneStore first = AdapterFiles.Open(_dir.FullPath);
        Finetune ready = await AdapterFiles.UploadBothAsync(first, "acc", first.Create("acc", "kept", Lora, "δοκιμή").Id);
        Finetune half = first.Create("acc", "half", Lora);
        await first.UploadAsync("acc", "half", Finetune.ConfigFileName, new MemoryStream(AdapterFiles.Config()));

        FinetuneStore second = AdapterFiles.Open(_dir.FullPath);

        Assert.Equal([ready.Id, half.Id], second.List("acc").Select(f => f.Id));
        Assert.Equal(ready, second.List("acc")[0]);
        Assert.False(second.List("acc")[1].IsReady);
        Assert.Equal("δοκιμή", second.List("acc")[0].Description);
        Assert.True(File.Exists(second.ResolveForRun("acc", "kept").WeightsPath));
    }

    [Fact]
    public async Task StreamThatFailsHalfway_LeavesTheFinetuneNotReadyAndNoTempFile()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);
        Finetune finetune = store.Create("acc", "broken", Lora);
        await store.UploadAsync("acc", "broken", Finetune.ConfigFileName, new MemoryStream(AdapterFiles.Config()));

        var failing = new FailingStream(AdapterFiles.Weights(100_000), failAfterBytes: 200_000);
        await Assert.ThrowsAsync<IOException>(() => store.UploadAsync("acc", "broken", Finetune.WeightsFileName, failing));

        Assert.Empty(AdapterFiles.TempFiles(_dir.FullPath));
        Finetune after = Assert.Single(AdapterFiles.Open(_dir.FullPath).List("acc"));
        Assert.False(after.IsReady);
        Assert.Equal(finetune.Id, after.Id);
        var error = Assert.Throws<ApiException>(() => store.ResolveForRun("acc", "broken"));
        Assert.Equal((400, ErrorCodes.FinetuneMissingFiles), (error.Status, error.Code));
        Assert.Equal("Finetune is missing required files (adapter_model.safetensors and adapter_config.json): \"broken\" has no adapter_model.safetensors", error.Message);
        // The upload can be retried.
        Assert.True((await store.UploadAsync("acc", "broken", Finetune.WeightsFileName, new MemoryStream(AdapterFiles.Weights()))).IsReady);
    }

    [Fact]
    public async Task Open_RemovesWhatACrashLeft_AndKeepsTheFinetunes()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);
        Finetune ready = await AdapterFiles.UploadBothAsync(store, "acc", store.Create("acc", "ok", Lora).Id);
        string blobs = Path.Combine(_dir.FullPath, "blobs", "sha256");
        string metadata = Path.Combine(_dir.FullPath, "finetunes");
        // Killed while streaming a blob; between publishing a blob and writing the metadata; while writing metadata.
        File.WriteAllBytes(Path.Combine(blobs, ".tmp-0123456789abcdef"), new byte[1000]);
        string orphan = new('a', 64);
        File.WriteAllBytes(Path.Combine(blobs, orphan), AdapterFiles.Weights(seed: 9));
        File.WriteAllText(Path.Combine(metadata, ".tmp-fedcba9876543210.json"), "{\"id\": \"trunc");

        FinetuneStore reopened = AdapterFiles.Open(_dir.FullPath);

        Assert.Empty(AdapterFiles.TempFiles(_dir.FullPath));
        Assert.DoesNotContain(orphan, AdapterFiles.Blobs(_dir.FullPath));
        Assert.Equal(2, AdapterFiles.Blobs(_dir.FullPath).Length);
        Assert.Equal(ready, Assert.Single(reopened.List("acc")));
    }

    [Fact]
    public void Open_KeepsATempFileThatALiveUploadHolds()
    {
        AdapterFiles.Open(_dir.FullPath);
        string temp = Path.Combine(_dir.FullPath, "blobs", "sha256", ".tmp-inprogress");
        using (var writer = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            writer.Write(new byte[10]);
            AdapterFiles.Open(_dir.FullPath); // as another process would, while the upload runs
            Assert.True(File.Exists(temp));
        }
        AdapterFiles.Open(_dir.FullPath);
        Assert.False(File.Exists(temp));
    }

    [Fact]
    public async Task ParallelCreatesAndUploads_FromTwoInstances_KeepNamesUniqueAndMetadataWhole()
    {
        // Two instances on one directory behave like two processes: only the lock file serializes them.
        FinetuneStore[] stores = [AdapterFiles.Open(_dir.FullPath), AdapterFiles.Open(_dir.FullPath)];
        const int Names = 12;
        var attempts = Enumerable.Range(0, Names * 2).Select(i => Task.Run(() =>
        {
            try
            {
                return stores[i % 2].Create("acc", $"n{i % Names}", Lora);
            }
            catch (ApiException e) when (e.Code == ErrorCodes.BadInput && e.Message.Contains("already has a finetune named"))
            {
                return null;
            }
        }));
        Finetune?[] created = await Task.WhenAll(attempts);
        Assert.Equal(Names, created.Count(f => f is not null));

        var uploads = created.OfType<Finetune>().SelectMany((f, i) => Finetune.RequiredFileNames.Select(file => Task.Run(() =>
            stores[i % 2].UploadAsync("acc", f.Name, file,
                new MemoryStream(file == Finetune.ConfigFileName ? AdapterFiles.Config() : AdapterFiles.Weights(seed: (byte)i))))));
        await Task.WhenAll(uploads);

        IReadOnlyList<Finetune> listed = AdapterFiles.Open(_dir.FullPath).List("acc");
        Assert.Equal(Names, listed.Count);
        Assert.Equal(Names, listed.Select(f => f.Name).Distinct().Count());
        Assert.All(listed, f => Assert.True(f.IsReady, f.Name));
        Assert.Empty(AdapterFiles.TempFiles(_dir.FullPath));
        Assert.Equal(Names + 1, AdapterFiles.Blobs(_dir.FullPath).Length); // one config shared by all, one weights each
    }

    [Fact]
    public async Task ConcurrentUploadsOfTheSameFile_ExactlyOneWins()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);
        store.Create("acc", "race", Lora);
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
        {
            try
            {
                await store.UploadAsync("acc", "race", Finetune.WeightsFileName, new MemoryStream(AdapterFiles.Weights(seed: (byte)i)));
                return true;
            }
            catch (ApiException e) when (e.Message.Contains("cannot be replaced"))
            {
                return false;
            }
        })));
        Assert.Single(results, r => r);
        Assert.Empty(AdapterFiles.TempFiles(_dir.FullPath));
        Assert.Single(AdapterFiles.Blobs(_dir.FullPath));
    }

    [Theory]
    [InlineData("../x", "a path separator '/'")]
    [InlineData("..", "must start with a letter or a digit")]
    [InlineData(".hidden", "must start with a letter or a digit")]
    [InlineData("-rf", "must start with a letter or a digit")]
    [InlineData("a/b", "a path separator '/'")]
    [InlineData("a\\b", "a path separator '\\'")]
    [InlineData("a\nb", "a control character (U+000A)")]
    [InlineData("a\u0000b", "a control character (U+0000)")]
    [InlineData("two words", "a space")]
    [InlineData("ünï", "'ü'")]
    [InlineData("", "a finetune name is required")]
    [InlineData("0f8fad5b-d9cb-469f-a165-70867728950e", "looks like a finetune id")]
    public void InvalidNames_AreRefused(string name, string expected)
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);
        var error = Assert.Throws<ApiException>(() => store.Create("acc", name, Lora));
        Assert.Equal((400, ErrorCodes.BadInput, "/name"), (error.Status, error.Code, error.Pointer));
        Assert.Contains(expected, error.Message);
        Assert.Empty(store.List("acc"));
    }

    [Fact]
    public void Names_UpTo64Characters_LettersDigitsDashUnderscoreDot()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);
        store.Create("acc", "a", Lora);
        store.Create("acc", "My-Adapter_v1.0", Lora);
        store.Create("acc", new string('x', 64), Lora);
        var error = Assert.Throws<ApiException>(() => store.Create("acc", new string('x', 65), Lora));
        Assert.Contains("longer than the maximum 64 characters", error.Message);
        Assert.Equal(3, store.List("acc").Count);
    }

    [Fact]
    public async Task AnotherAccountsPrivateFinetune_BehavesExactlyAsANonexistentOne()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);
        Finetune mine = await AdapterFiles.UploadBothAsync(store, "alice", store.Create("alice", "secret", Lora).Id);

        Assert.Empty(store.List("bob"));
        Assert.Null(store.Find("bob", "secret"));
        Assert.Null(store.Find("bob", mine.Id));
        foreach (string key in (string[])["secret", mine.Id])
        {
            var hidden = Assert.Throws<ApiException>(() => store.Delete("bob", key));
            var absent = Assert.Throws<ApiException>(() => store.Delete("bob", "nothing-" + key));
            Assert.Equal((404, ErrorCodes.InvalidModelId), (hidden.Status, hidden.Code));
            Assert.Equal(absent.Message.Replace("nothing-", ""), hidden.Message);
            Assert.Equal(ErrorCodes.InvalidModelId, Assert.Throws<ApiException>(() =>
                store.CheckUploadable("bob", key, Finetune.ConfigFileName)).Code);
            var run = Assert.Throws<ApiException>(() => store.ResolveForRun("bob", key));
            Assert.Equal((400, ErrorCodes.BadInput, "/lora"), (run.Status, run.Code, run.Pointer));
        }
        // Names are per account: bob may use the same one, and each sees their own.
        Finetune bobs = store.Create("bob", "secret", Lora);
        Assert.Equal(bobs.Id, store.Find("bob", "secret")!.Id);
        Assert.Equal(mine.Id, store.Find("alice", "secret")!.Id);
        Assert.Equal(mine.Id, Assert.Single(store.List("alice")).Id);
    }

    [Fact]
    public async Task PublicFinetunes_AreReadableByAll_ButChangedOnlyByTheirOwner()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);
        Finetune shared = store.Create("alice", "shared", Lora, isPublic: true);
        Finetune operatorOne = await AdapterFiles.UploadBothAsync(store, null, store.Create(null, "cf-public-test", Lora).Id);

        Assert.True(operatorOne.IsPublic);
        Assert.Null(operatorOne.AccountId);
        Assert.Equal([shared.Id, operatorOne.Id], store.ListPublic().Select(f => f.Id));
        Assert.Empty(store.List("bob"));
        Assert.Equal(shared.Id, store.Find("bob", "shared")!.Id);
        Assert.Equal(operatorOne.Id, store.ResolveForRun("bob", "cf-public-test").Finetune.Id);

        foreach (string key in (string[])["shared", "cf-public-test"])
        {
            var delete = Assert.Throws<ApiException>(() => store.Delete("bob", key));
            Assert.Equal((403, ErrorCodes.AccountNotAllowed), (delete.Status, delete.Code));
            Assert.Equal(ErrorCodes.AccountNotAllowed, Assert.Throws<ApiException>(() =>
                store.CheckUploadable("bob", key, Finetune.WeightsFileName)).Code);
        }
        // A public name is unique among public finetunes, so `lora: name` has one meaning for everyone.
        Assert.Contains("a public finetune named", Assert.Throws<ApiException>(() => store.Create("bob", "shared", Lora, isPublic: true)).Message);
        // A private one of the same name is allowed, and wins for its owner.
        Finetune bobs = store.Create("bob", "shared", Lora);
        Assert.Equal(bobs.Id, store.Find("bob", "shared")!.Id);

        store.Delete("alice", "shared");
        store.Delete(null, "cf-public-test");
        Assert.Empty(store.ListPublic());
    }

    [Fact]
    public async Task Upload_OverTheSizeLimit_StopsReadingAt413()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath, new FinetuneLimits { MaxFileBytes = 300_000 });
        store.Create("acc", "big", Lora);
        var endless = new CountingStream(long.MaxValue);

        var error = await Assert.ThrowsAsync<ApiException>(() => store.UploadAsync("acc", "big", Finetune.WeightsFileName, endless));

        Assert.Equal((413, ErrorCodes.RequestTooLarge), (error.Status, error.Code));
        Assert.Contains("larger than 300000 bytes", error.Message);
        Assert.InRange(endless.BytesRead, 300_001, 300_000 + (256 << 10));
        Assert.Empty(AdapterFiles.TempFiles(_dir.FullPath));
        Assert.Empty(store.List("acc")[0].Files);
        // Exactly the limit is accepted.
        await store.UploadAsync("acc", "big", Finetune.ConfigFileName, new CountingStream(300_000));
    }

    [Fact]
    public async Task SecondUploadOfAFile_IsRefused_AndTheFirstStays()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);
        store.Create("acc", "once", Lora);
        Finetune first = await store.UploadAsync("acc", "once", Finetune.ConfigFileName, new MemoryStream(AdapterFiles.Config(rank: 4)));

        var error = await Assert.ThrowsAsync<ApiException>(() =>
            store.UploadAsync("acc", "once", Finetune.ConfigFileName, new MemoryStream(AdapterFiles.Config(rank: 8))));

        Assert.Equal((400, ErrorCodes.BadInput, "/file_name"), (error.Status, error.Code, error.Pointer));
        Assert.Contains("already has adapter_config.json", error.Message);
        Assert.Contains("create a new finetune", error.Message);
        Assert.Equal(first, store.List("acc")[0]);
    }

    [Theory]
    [InlineData("adapter_model.bin")]
    [InlineData("../adapter_config.json")]
    [InlineData("config.json")]
    public void WrongFileName_IsRefused(string fileName)
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);
        store.Create("acc", "x", Lora);
        var error = Assert.Throws<ApiException>(() => store.CheckUploadable("acc", "x", fileName));
        Assert.Contains("is not an adapter file; use adapter_config.json or adapter_model.safetensors", error.Message);
    }

    [Fact]
    public async Task EmptyFile_IsRefused()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);
        store.Create("acc", "x", Lora);
        var error = await Assert.ThrowsAsync<ApiException>(() => store.UploadAsync("acc", "x", Finetune.ConfigFileName, new MemoryStream()));
        Assert.Contains("the uploaded file is empty", error.Message);
        Assert.Empty(AdapterFiles.TempFiles(_dir.FullPath));
    }

    [Fact]
    public async Task AnUploadThatFailsValidation_IsNotKept_AndTheFinetuneStaysNotReady()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);
        store.Create("acc", "llama", Lora);
        await store.UploadAsync("acc", "llama", Finetune.ConfigFileName, new MemoryStream(AdapterFiles.Config(modelType: "llama")));

        var error = await Assert.ThrowsAsync<ApiException>(() =>
            store.UploadAsync("acc", "llama", Finetune.WeightsFileName, new MemoryStream(AdapterFiles.Weights())));

        Assert.Equal((400, ErrorCodes.BadInput), (error.Status, error.Code));
        Assert.Contains("\"model_type\" is \"llama\"", error.Message);
        Finetune after = Assert.Single(store.List("acc"));
        Assert.Equal([Finetune.ConfigFileName], after.Files.Keys);
        Assert.Single(AdapterFiles.Blobs(_dir.FullPath));
        Assert.Empty(AdapterFiles.TempFiles(_dir.FullPath));
    }

    [Fact]
    public async Task TheValidatorSeesBothFiles_WhenTheSecondArrives()
    {
        var validator = new RecordingValidator();
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath, validator: validator);
        store.Create("acc", "x", Lora);
        await store.UploadAsync("acc", "x", Finetune.WeightsFileName, new MemoryStream(AdapterFiles.Weights()));
        Assert.Empty(validator.Calls);
        await store.UploadAsync("acc", "x", Finetune.ConfigFileName, new MemoryStream(AdapterFiles.Config()));
        var (config, weights) = Assert.Single(validator.Calls);
        Assert.Equal(AdapterFiles.Config(), config);
        Assert.Equal(AdapterFiles.Weights(), weights);
    }

    [Theory]
    [InlineData("@cf/mistral/mistral-7b-instruct-v0.2-lora", "@cf/mistral/mistral-7b-instruct-v0.2-lora")]
    [InlineData("@cf/mistralai/mistral-7b-instruct-v0.2-lora", "@cf/mistral/mistral-7b-instruct-v0.2-lora")]
    [InlineData("@hf/mistral/mistral-7b-instruct-v0.2", "@hf/mistral/mistral-7b-instruct-v0.2")]
    public void Models_ThatTakeLora_AreStoredByTheirCatalogName(string given, string stored)
    {
        Assert.Equal(stored, AdapterFiles.Open(_dir.FullPath).Create("acc", "m", given).Model);
    }

    [Fact]
    public void UnknownModel_Is5007()
    {
        var error = Assert.Throws<ApiException>(() => AdapterFiles.Open(_dir.FullPath).Create("acc", "m", "@cf/meta/llama-2-7b-chat-hf-lora"));
        Assert.Equal((400, ErrorCodes.NoSuchModel), (error.Status, error.Code));
        Assert.StartsWith("No such model @cf/meta/llama-2-7b-chat-hf-lora or task: finetunes can be created for @cf/mistral/", error.Message);
    }

    [Fact]
    public void PerAccountLimit_CountsOwnedFinetunes_NotTheOperators()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath, new FinetuneLimits { MaxFinetunesPerAccount = 2 });
        store.Create("acc", "a", Lora);
        store.Create("acc", "b", Lora);
        var error = Assert.Throws<ApiException>(() => store.Create("acc", "c", Lora));
        Assert.Contains("already has 2 finetunes", error.Message);
        store.Create("other", "c", Lora);
        store.Create(null, "p1", Lora);
        store.Create(null, "p2", Lora);
        store.Create(null, "p3", Lora);
        store.Delete("acc", "a");
        store.Create("acc", "c", Lora);
    }

    [Fact]
    public async Task IdenticalFiles_ShareOneBlob_UntilTheLastUserIsDeleted()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);
        await AdapterFiles.UploadBothAsync(store, "a", store.Create("a", "one", Lora).Id);
        await AdapterFiles.UploadBothAsync(store, "b", store.Create("b", "two", Lora).Id);
        Assert.Equal(2, AdapterFiles.Blobs(_dir.FullPath).Length);
        store.Delete("a", "one");
        Assert.Equal(2, AdapterFiles.Blobs(_dir.FullPath).Length);
        Assert.True(File.Exists(store.ResolveForRun("b", "two").WeightsPath));
        store.Delete("b", "two");
        Assert.Empty(AdapterFiles.Blobs(_dir.FullPath));
    }

    [Fact]
    public async Task MetadataFile_IsTheDocumentedJson()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);
        Finetune f = await AdapterFiles.UploadBothAsync(store, "acc", store.Create("acc", "doc", Lora, "d").Id);
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_dir.FullPath, "finetunes", f.Id + ".json")));
        var root = json.RootElement;
        Assert.Equal(["id", "name", "model", "description", "created_at", "modified_at", "public", "account_id", "files"],
            root.EnumerateObject().Select(p => p.Name));
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", root.GetProperty("created_at").GetString());
        Assert.Equal("acc", root.GetProperty("account_id").GetString());
        var weights = root.GetProperty("files").GetProperty(Finetune.WeightsFileName);
        Assert.Equal(AdapterFiles.Weights().Length, weights.GetProperty("size").GetInt64());
        Assert.True(File.Exists(Path.Combine(_dir.FullPath, "blobs", "sha256", weights.GetProperty("sha256").GetString()!)));
    }

    [Fact]
    public async Task AMissingBlob_MakesTheFinetuneNotRunnable()
    {
        FinetuneStore store = AdapterFiles.Open(_dir.FullPath);
        await AdapterFiles.UploadBothAsync(store, "acc", store.Create("acc", "x", Lora).Id);
        File.Delete(store.ResolveForRun("acc", "x").WeightsPath);
        var error = Assert.Throws<ApiException>(() => store.ResolveForRun("acc", "x"));
        Assert.Equal(ErrorCodes.FinetuneMissingFiles, error.Code);
    }

    private sealed class RecordingValidator : IAdapterValidator
    {
        public List<(byte[] Config, byte[] Weights)> Calls { get; } = [];

        public void Validate(string configPath, string weightsPath) => Calls.Add((File.ReadAllBytes(configPath), File.ReadAllBytes(weightsPath)));
    }

    /// <summary>Gives <c>data</c>, but throws an IOException once <c>failAfterBytes</c> have been read (a client
    /// that disconnects, a process killed mid-copy).</summary>
    private sealed class FailingStream(byte[] data, int failAfterBytes) : MemoryStream(data)
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Position >= failAfterBytes)
            {
                throw new IOException("connection reset");
            }
            return await base.ReadAsync(buffer[..Math.Min(buffer.Length, failAfterBytes - (int)Position)], cancellationToken);
        }
    }

    /// <summary>Zero bytes up to <c>length</c>, counting what was read.</summary>
    private sealed class CountingStream(long length) : Stream
    {
        public long BytesRead { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => BytesRead; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = (int)Math.Min(count, length - BytesRead);
            Array.Clear(buffer, offset, n);
            BytesRead += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
