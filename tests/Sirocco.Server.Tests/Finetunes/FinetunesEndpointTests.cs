// The finetunes API over real HTTP: wrangler's flow (create, one multipart upload per file by id, list) and the docs'
// (trailing slashes, by name), the public list with limit/offset/orderBy, delete, every error with its status and
// code, account isolation (also with tokens), a restart on the same data directory, and a client that disconnects
// halfway through an upload. One server serves the class; each test works in its own account.

using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Sirocco.Server.Auth;
using Sirocco.Server.Finetunes;
using Sirocco.Server.Tests.Http;

namespace Sirocco.Server.Tests.Finetunes;

public sealed class FinetunesEndpointTests : IClassFixture<FinetunesEndpointTests.SharedServer>
{
    public const int MaxFileBytes = 256 << 10;
    public const int MaxPerAccount = 3;
    private readonly TestServer _server;
    private readonly HttpClient _client;
    private readonly string _account = "acc-" + Guid.NewGuid().ToString("N")[..8];

    public FinetunesEndpointTests(SharedServer shared)
    {
        _server = shared.Server;
        _client = _server.Client;
    }

    public sealed class SharedServer : IAsyncLifetime
    {
        internal TestServer Server { get; private set; } = null!;

        public async Task InitializeAsync() => Server = await TestServer.StartAsync(new ServerOptions
        {
            MaxAdapterFileBytes = MaxFileBytes,
            MaxFinetunesPerAccount = MaxPerAccount,
        });

        public async Task DisposeAsync() => await Server.DisposeAsync();
    }

    private static string PathOf(string account, string rest = "", string prefix = "/client/v4") => $"{prefix}/accounts/{account}/ai/finetunes{rest}";

    private Task<ApiAnswer> CreateAsync(string body, string? account = null, string rest = "") =>
        Api.PostAsync(_client, PathOf(account ?? _account, rest), body);

    private async Task<string> CreateIdAsync(string name, bool isPublic = false, string? account = null)
    {
        ApiAnswer answer = await CreateAsync($$"""{"model":"{{Api.Lora}}","name":"{{name}}","description":"","public":{{(isPublic ? "true" : "false")}}}""", account);
        Assert.True(answer.Status == HttpStatusCode.OK, answer.Body);
        return answer.Result.GetProperty("id").GetString()!;
    }

    /// <summary>The form wrangler and curl send: file_name, then the file (a Blob with a file name).</summary>
    private static MultipartFormDataContent Form(string? fileName, byte[]? file, bool fileFirst = false)
    {
        var form = new MultipartFormDataContent();
        void AddFile()
        {
            if (file is not null)
            {
                form.Add(new ByteArrayContent(file), "file", fileName ?? "blob");
            }
        }
        if (fileFirst)
        {
            AddFile();
        }
        if (fileName is not null)
        {
            form.Add(new StringContent(fileName), "file_name");
        }
        if (!fileFirst)
        {
            AddFile();
        }
        return form;
    }

    private Task<ApiAnswer> UploadAsync(string finetune, string fileName, byte[] file, string? account = null, string slash = "", string prefix = "/client/v4", bool fileFirst = false) =>
        Api.SendAsync(_client, HttpMethod.Post, PathOf(account ?? _account, $"/{finetune}/finetune-assets{slash}", prefix), Form(fileName, file, fileFirst));

    private static void AssertError(ApiAnswer answer, HttpStatusCode status, int code, string message)
    {
        Assert.True(answer.Status == status, $"{answer.Status}: {answer.Body}");
        Assert.False(answer.Json.GetProperty("success").GetBoolean());
        Assert.Equal(code, answer.ErrorCode);
        Assert.Contains(message, answer.ErrorMessage);
    }

    [Fact]
    public async Task WranglersFlow_CreateThenUploadEachFileById_ThenList()
    {
        ApiAnswer created = await CreateAsync($$"""{"model":"{{Api.Lora}}","name":"my-lora","description":""}""");

        Assert.Equal(HttpStatusCode.OK, created.Status);
        Assert.True(created.Json.GetProperty("success").GetBoolean());
        Assert.Equal(0, created.Json.GetProperty("errors").GetArrayLength());
        JsonElement result = created.Result;
        Assert.Equal(["id", "name", "model", "description", "created_at", "modified_at", "public"], result.EnumerateObject().Select(p => p.Name));
        string id = result.GetProperty("id").GetString()!;
        Assert.True(Guid.TryParseExact(id, "D", out _));
        Assert.Equal("my-lora", result.GetProperty("name").GetString());
        Assert.Equal(Api.Lora, result.GetProperty("model").GetString());
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", result.GetProperty("created_at").GetString());
        Assert.False(result.GetProperty("public").GetBoolean());

        ApiAnswer config = await UploadAsync(id, Finetune.ConfigFileName, AdapterFiles.Config());
        Assert.True(config.Status == HttpStatusCode.OK, config.Body);
        Assert.True(config.Json.GetProperty("success").GetBoolean());
        Assert.False(config.Result.GetProperty("ready").GetBoolean());
        ApiAnswer weights = await UploadAsync(id, Finetune.WeightsFileName, AdapterFiles.Weights());
        Assert.True(weights.Result.GetProperty("ready").GetBoolean());
        Assert.Equal(AdapterFiles.Weights().Length, weights.Result.GetProperty("files").GetProperty(Finetune.WeightsFileName).GetProperty("size").GetInt64());

        ApiAnswer list = await Api.GetAsync(_client, PathOf(_account));
        JsonElement item = Assert.Single(list.Result.EnumerateArray());
        Assert.Equal(id, item.GetProperty("id").GetString());
        Assert.Equal("my-lora", item.GetProperty("name").GetString());
        Assert.Equal("", item.GetProperty("description").GetString());
        Assert.Equal(7, item.EnumerateObject().Count());
        Assert.True(_server.App.Services.GetRequiredService<FinetuneStore>().ResolveForRun(_account, "my-lora").Finetune.IsReady);
    }

    [Fact]
    public async Task DocsFlow_TrailingSlashes_ByName_RootPrefix_FileBeforeFileName()
    {
        ApiAnswer created = await Api.PostAsync(_client, PathOf(_account, "/", prefix: ""),
            """{"model":"@cf/mistralai/mistral-7b-instruct-v0.2-lora","name":"docs.example","description":"from the docs"}""", contentType: null);
        Assert.True(created.Status == HttpStatusCode.OK, created.Body);
        Assert.Equal(Api.Lora, created.Result.GetProperty("model").GetString());

        Assert.Equal(HttpStatusCode.OK, (await UploadAsync("docs.example", Finetune.WeightsFileName, AdapterFiles.Weights(), slash: "/", prefix: "")).Status);
        ApiAnswer last = await UploadAsync("docs.example", Finetune.ConfigFileName, AdapterFiles.Config(), slash: "/", fileFirst: true);
        Assert.True(last.Status == HttpStatusCode.OK, last.Body);
        Assert.True(last.Result.GetProperty("ready").GetBoolean());

        JsonElement item = Assert.Single((await Api.GetAsync(_client, PathOf(_account, "/", prefix: ""))).Result.EnumerateArray());
        Assert.Equal("from the docs", item.GetProperty("description").GetString());
    }

    [Fact]
    public async Task PublicList_ShowsEveryAccountsPublicFinetunes_WithLimitOffsetAndOrder()
    {
        string other = _account + "-other";
        string tag = _account;
        await CreateIdAsync($"{tag}-b", isPublic: true);
        await CreateIdAsync($"{tag}-private");
        await CreateIdAsync($"{tag}-a", isPublic: true, account: other);
        await CreateIdAsync($"{tag}-c", isPublic: true);

        async Task<string[]> Names(string query)
        {
            ApiAnswer answer = await Api.GetAsync(_client, PathOf("someone-else", "/public" + query));
            Assert.True(answer.Status == HttpStatusCode.OK, answer.Body);
            return [.. answer.Result.EnumerateArray().Select(f => f.GetProperty("name").GetString()!).Where(n => n.StartsWith(tag, StringComparison.Ordinal))];
        }

        Assert.Equal([$"{tag}-b", $"{tag}-a", $"{tag}-c"], await Names(""));
        Assert.Equal([$"{tag}-a", $"{tag}-b", $"{tag}-c"], await Names("?orderBy=name"));
        Assert.Equal([$"{tag}-c", $"{tag}-b", $"{tag}-a"], await Names("?orderBy=name%20desc"));
        string[] all = [.. (await Api.GetAsync(_client, PathOf("x", "/public?orderBy=name"))).Result.EnumerateArray().Select(f => f.GetProperty("name").GetString()!)];
        int first = Array.IndexOf(all, $"{tag}-a");
        Assert.Equal([$"{tag}-b"], await Names($"?orderBy=name&offset={first + 1}&limit=1"));
        // The owner's own list has its public and private ones, not the other account's.
        Assert.Equal(3, (await Api.GetAsync(_client, PathOf(_account))).Result.GetArrayLength());

        AssertError(await Api.GetAsync(_client, PathOf(_account, "/public?limit=0")), HttpStatusCode.BadRequest, 5006, "`limit` is \"0\"");
        AssertError(await Api.GetAsync(_client, PathOf(_account, "/public?orderBy=size")), HttpStatusCode.BadRequest, 5006, "`orderBy` is \"size\"");
    }

    [Fact]
    public async Task Delete_RemovesIt_ThenItIsUnknown()
    {
        string id = await CreateIdAsync("doomed");
        await UploadAsync(id, Finetune.ConfigFileName, AdapterFiles.Config());

        ApiAnswer deleted = await Api.SendAsync(_client, HttpMethod.Delete, PathOf(_account, "/" + id));
        Assert.True(deleted.Status == HttpStatusCode.OK, deleted.Body);
        Assert.Equal(id, deleted.Result.GetProperty("id").GetString());
        Assert.Equal(0, (await Api.GetAsync(_client, PathOf(_account))).Result.GetArrayLength());

        AssertError(await Api.SendAsync(_client, HttpMethod.Delete, PathOf(_account, "/" + id)), HttpStatusCode.NotFound, 3042, "not found");
        await CreateIdAsync("doomed");
        Assert.Equal(HttpStatusCode.OK, (await Api.SendAsync(_client, HttpMethod.Delete, PathOf(_account, "/doomed/", prefix: ""))).Status);
    }

    [Theory]
    [InlineData("", 5006, "the body is empty")]
    [InlineData("{\"model\":", 5006, "not valid JSON")]
    [InlineData("[]", 5006, "must be a JSON object")]
    [InlineData("{\"name\":\"x\"}", 5006, "`model` is missing")]
    [InlineData("{\"model\":\"@cf/mistral/mistral-7b-instruct-v0.2-lora\"}", 5006, "`name` is missing")]
    [InlineData("{\"model\":7,\"name\":\"x\"}", 5006, "/model: expected a string, found the number 7")]
    [InlineData("{\"model\":\"@cf/meta/llama-2-7b-chat-hf-lora\",\"name\":\"x\"}", 5007, "No such model @cf/meta/llama-2-7b-chat-hf-lora")]
    [InlineData("{\"model\":\"@cf/mistral/mistral-7b-instruct-v0.2-lora\",\"name\":\"../x\"}", 5006, "/name: \"../x\" contains a path separator '/'")]
    [InlineData("{\"model\":\"@cf/mistral/mistral-7b-instruct-v0.2-lora\",\"name\":\"x\",\"public\":\"yes\"}", 5006, "/public: expected a boolean")]
    [InlineData("{\"model\":\"@cf/mistral/mistral-7b-instruct-v0.2-lora\",\"name\":\"x\",\"description\":[]}", 5006, "/description: expected a string")]
    public async Task Create_BadBodies_Are400(string body, int code, string message)
    {
        AssertError(await CreateAsync(body), HttpStatusCode.BadRequest, code, message);
        Assert.Equal(0, (await Api.GetAsync(_client, PathOf(_account))).Result.GetArrayLength());
    }

    [Fact]
    public async Task Create_DuplicateName_TooLongDescription_TooMany()
    {
        await CreateIdAsync("taken");
        AssertError(await CreateAsync($$"""{"model":"{{Api.Lora}}","name":"taken"}"""), HttpStatusCode.BadRequest, 5006, "already has a finetune named \"taken\"");
        AssertError(await CreateAsync($$"""{"model":"{{Api.Lora}}","name":"long","description":"{{new string('d', 1025)}}"}"""),
            HttpStatusCode.BadRequest, 5006, "/description: 1025 characters is longer than the maximum 1024");
        for (int i = 1; i < MaxPerAccount; i++)
        {
            await CreateIdAsync($"n{i}");
        }
        AssertError(await CreateAsync($$"""{"model":"{{Api.Lora}}","name":"one-more"}"""), HttpStatusCode.BadRequest, 5006, $"already has {MaxPerAccount} finetunes");
    }

    [Fact]
    public async Task Upload_Errors_NameTheProblem()
    {
        string id = await CreateIdAsync("target");
        string assets = PathOf(_account, $"/{id}/finetune-assets");

        AssertError(await UploadAsync("nothing-here", Finetune.ConfigFileName, AdapterFiles.Config()), HttpStatusCode.NotFound, 3042, "Finetune \"nothing-here\" not found");
        AssertError(await Api.PostAsync(_client, assets, "{}"), HttpStatusCode.BadRequest, 5006, "expected a multipart/form-data body");
        AssertError(await Api.SendAsync(_client, HttpMethod.Post, assets, Form(null, AdapterFiles.Config())), HttpStatusCode.BadRequest, 5006, "`file_name` is missing");
        AssertError(await Api.SendAsync(_client, HttpMethod.Post, assets, Form(Finetune.ConfigFileName, null)), HttpStatusCode.BadRequest, 5006, "`file` (the file's bytes) is missing");
        AssertError(await UploadAsync(id, "adapter_model.bin", AdapterFiles.Weights()), HttpStatusCode.BadRequest, 5006, "\"adapter_model.bin\" is not an adapter file");
        AssertError(await UploadAsync(id, Finetune.WeightsFileName, new byte[MaxFileBytes + 1]), HttpStatusCode.RequestEntityTooLarge, 3006,
            $"larger than {MaxFileBytes} bytes");

        Assert.Equal(HttpStatusCode.OK, (await UploadAsync(id, Finetune.ConfigFileName, AdapterFiles.Config(rank: 16))).Status);
        AssertError(await UploadAsync(id, Finetune.ConfigFileName, AdapterFiles.Config()), HttpStatusCode.BadRequest, 5006, "already has adapter_config.json");
        // The pair is checked when it is complete: rank 16 is over the default limit of 8, so the weights are refused.
        AssertError(await UploadAsync(id, Finetune.WeightsFileName, AdapterFiles.Weights()), HttpStatusCode.BadRequest, 5006,
            "LoRA adapter adapter_config.json: r: expected a rank of at most 8, found 16");
        JsonElement item = Assert.Single((await Api.GetAsync(_client, PathOf(_account))).Result.EnumerateArray());
        FinetuneStore store = _server.App.Services.GetRequiredService<FinetuneStore>();
        Assert.False(store.Find(_account, id)!.IsReady);
        Assert.Equal(id, item.GetProperty("id").GetString());
        Assert.Empty(AdapterFiles.TempFiles(store.DataDirectory));
    }

    [Fact]
    public async Task AnotherAccountsPrivateFinetune_LooksExactlyLikeANonexistentOne()
    {
        string owner = _account + "-owner";
        string id = await CreateIdAsync("private-one", account: owner);

        Assert.Equal(0, (await Api.GetAsync(_client, PathOf(_account))).Result.GetArrayLength());
        foreach (string key in (string[])[id, "private-one"])
        {
            ApiAnswer upload = await UploadAsync(key, Finetune.ConfigFileName, AdapterFiles.Config());
            ApiAnswer missing = await UploadAsync(key + "x", Finetune.ConfigFileName, AdapterFiles.Config());
            AssertError(upload, HttpStatusCode.NotFound, 3042, "not found");
            Assert.Equal(missing.ErrorMessage.Replace(key + "x", key), upload.ErrorMessage);
            AssertError(await Api.SendAsync(_client, HttpMethod.Delete, PathOf(_account, "/" + key)), HttpStatusCode.NotFound, 3042, "not found");
        }
        Assert.DoesNotContain((await Api.GetAsync(_client, PathOf(_account, "/public"))).Result.EnumerateArray(), f => f.GetProperty("id").GetString() == id);
        Assert.Single((await Api.GetAsync(_client, PathOf(owner))).Result.EnumerateArray());
    }

    [Fact]
    public async Task AnotherAccountsPublicFinetune_IsListedButNotChangeable()
    {
        string owner = _account + "-owner";
        string id = await CreateIdAsync(_account + "-pub", isPublic: true, account: owner);
        AssertError(await UploadAsync(id, Finetune.ConfigFileName, AdapterFiles.Config()), HttpStatusCode.Forbidden, 3041, "only its owner can change or delete it");
        AssertError(await Api.SendAsync(_client, HttpMethod.Delete, PathOf(_account, "/" + id)), HttpStatusCode.Forbidden, 3041, "only its owner");
        Assert.Equal(HttpStatusCode.OK, (await Api.SendAsync(_client, HttpMethod.Delete, PathOf(owner, "/" + id))).Status);
    }

    [Fact]
    public async Task WithTokens_EachAccountSeesOnlyItsOwn()
    {
        const string AliceToken = "alice-token-0123456789";
        const string BobToken = "bob-token-0123456789ab";
        await using TestServer server = await TestServer.StartAsync(new ServerOptions
        {
            Tokens = [new ApiToken("alice", AliceToken), new ApiToken("bob", BobToken)],
        });
        HttpClient client = server.Client;
        ApiAnswer created = await Api.PostAsync(client, PathOf("alice"), $$"""{"model":"{{Api.Lora}}","name":"mine"}""", bearer: AliceToken);
        Assert.Equal(HttpStatusCode.OK, created.Status);

        AssertError(await Api.GetAsync(client, PathOf("alice"), bearer: BobToken), HttpStatusCode.Unauthorized, 10000, "Authentication error");
        AssertError(await Api.GetAsync(client, PathOf("alice")), HttpStatusCode.Unauthorized, 10000, "Authentication error");
        Assert.Equal(0, (await Api.GetAsync(client, PathOf("bob"), bearer: BobToken)).Result.GetArrayLength());
        AssertError(await Api.SendAsync(client, HttpMethod.Delete, PathOf("bob", "/mine"), bearer: BobToken), HttpStatusCode.NotFound, 3042, "not found");
        Assert.Single((await Api.GetAsync(client, PathOf("alice"), bearer: AliceToken)).Result.EnumerateArray());
    }

    [Fact]
    public async Task ANewServerOnTheSameDataDirectory_StillHasTheFinetunes()
    {
        using var data = new TempDir();
        string id;
        await using (TestServer first = await TestServer.StartAsync(dataDirectory: data.FullPath))
        {
            ApiAnswer created = await Api.PostAsync(first.Client, PathOf("acc"), $$"""{"model":"{{Api.Lora}}","name":"durable"}""");
            id = created.Result.GetProperty("id").GetString()!;
            foreach (var (name, bytes) in (ValueTuple<string, byte[]>[])[(Finetune.ConfigFileName, AdapterFiles.Config()), (Finetune.WeightsFileName, AdapterFiles.Weights())])
            {
                Assert.Equal(HttpStatusCode.OK, (await Api.SendAsync(first.Client, HttpMethod.Post, PathOf("acc", $"/{id}/finetune-assets"), Form(name, bytes))).Status);
            }
        }
        await using TestServer second = await TestServer.StartAsync(dataDirectory: data.FullPath);
        JsonElement item = Assert.Single((await Api.GetAsync(second.Client, PathOf("acc"))).Result.EnumerateArray());
        Assert.Equal(id, item.GetProperty("id").GetString());
        AssertError(await Api.SendAsync(second.Client, HttpMethod.Post, PathOf("acc", "/durable/finetune-assets"), Form(Finetune.ConfigFileName, AdapterFiles.Config())),
            HttpStatusCode.BadRequest, 5006, "already has adapter_config.json");
        Assert.True(second.App.Services.GetRequiredService<FinetuneStore>().ResolveForRun("acc", "durable").Finetune.IsReady);
    }

    [Fact]
    public async Task AClientThatDisconnectsHalfwayThroughAnUpload_LeavesTheFinetuneNotReadyAndNoTempFile()
    {
        string id = await CreateIdAsync("interrupted");
        await UploadAsync(id, Finetune.ConfigFileName, AdapterFiles.Config());
        FinetuneStore store = _server.App.Services.GetRequiredService<FinetuneStore>();
        string blobs = Path.Combine(store.DataDirectory, "blobs", "sha256");
        byte[] weights = AdapterFiles.Weights();
        const string Boundary = "sirocco-test-boundary";
        byte[] head = Encoding.ASCII.GetBytes(
            $"--{Boundary}\r\nContent-Disposition: form-data; name=\"file_name\"\r\n\r\n{Finetune.WeightsFileName}\r\n" +
            $"--{Boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{Finetune.WeightsFileName}\"\r\n" +
            "Content-Type: application/octet-stream\r\n\r\n");
        var content = new HalfThenHang([.. head, .. weights.AsSpan(0, weights.Length / 2)]);
        content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse($"multipart/form-data; boundary={Boundary}");
        using var cancel = new CancellationTokenSource();
        using var request = new HttpRequestMessage(HttpMethod.Post, PathOf(_account, $"/{id}/finetune-assets")) { Content = content };
        Task<HttpResponseMessage> sending = _client.SendAsync(request, cancel.Token);

        await content.Sent.WaitAsync(TimeSpan.FromSeconds(30));
        await WaitUntil(() => AdapterFiles.TempFiles(blobs).Length > 0 && new FileInfo(AdapterFiles.TempFiles(blobs)[0]).Length > 0);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sending);

        await WaitUntil(() => AdapterFiles.TempFiles(blobs).Length == 0);
        Finetune after = store.Find(_account, id)!;
        Assert.False(after.IsReady);
        Assert.Equal([Finetune.ConfigFileName], after.Files.Keys);
        // The file can be uploaded again, whole.
        ApiAnswer retry = await UploadAsync(id, Finetune.WeightsFileName, weights);
        Assert.True(retry.Result.GetProperty("ready").GetBoolean());
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50);
        }
        Assert.True(condition(), "condition not reached in 10 s");
    }

    /// <summary>Sends its bytes, then neither more nor the end: the request stays open until the client cancels it.</summary>
    private sealed class HalfThenHang(byte[] bytes) : HttpContent
    {
        private readonly TaskCompletionSource _sent = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Sent => _sent.Task;

        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context, CancellationToken cancellationToken)
        {
            await stream.WriteAsync(bytes, cancellationToken);
            await stream.FlushAsync(cancellationToken);
            _sent.TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
