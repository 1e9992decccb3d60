// LoRA over HTTP, end to end: upload a generated adapter through the finetunes API, list it, run with `lora` by name
// and by id (the text equals the engine alone with that adapter, and differs from the base model), restart the server
// on the same data directory and run again, two requests with different adapters at once, the adapter cache, and the
// errors (unknown name, not ready, an adapter that does not fit the model, another account's adapter).

using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;
using Sirocco.Engine.Sampling;
using Sirocco.Engine.Synthesis;
using Sirocco.Engine.Tokenization;
using Sirocco.Server.Tests.Http;

namespace Sirocco.Server.Tests.Lora;

public sealed class LoraRunTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Writes a PEFT adapter for the test model and returns its directory.</summary>
    private string Adapter(string name, ulong seed, int rank = 8, params LlamaTensorRole[] targets)
    {
        string path = _dir.File(name);
        SyntheticLoraWriter.WritePeft(path, TestServer.Config, new SyntheticLoraOptions
        {
            Rank = rank,
            Seed = seed,
            Targets = targets.Length > 0 ? targets : [LlamaTensorRole.Query, LlamaTensorRole.Key, LlamaTensorRole.Value, LlamaTensorRole.AttentionOutput],
            RelativeDelta = 0.5, // large enough to change greedy text on the tiny random model
        });
        return path;
    }

    private static async Task<string> CreateAndUploadAsync(HttpClient client, string account, string name, string adapterDir)
    {
        ApiAnswer created = await Api.PostAsync(client, $"/client/v4/accounts/{account}/ai/finetunes",
            $$"""{"model":"{{Api.Lora}}","name":"{{name}}","description":""}""");
        Assert.Equal(HttpStatusCode.OK, created.Status);
        string id = created.Result.GetProperty("id").GetString()!;
        foreach (string file in (string[])["adapter_config.json", "adapter_model.safetensors"])
        {
            using var form = new MultipartFormDataContent();
            form.Add(new StringContent(file), "file_name");
            var content = new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(adapterDir, file)));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            form.Add(content, "file", "blob");
            HttpResponseMessage upload = await client.PostAsync($"/client/v4/accounts/{account}/ai/finetunes/{id}/finetune-assets", form);
            Assert.True(upload.IsSuccessStatusCode, await upload.Content.ReadAsStringAsync());
        }
        return id;
    }

    private static string Run(string prompt, string? lora, int maxTokens = 16) =>
        lora is null
            ? $$"""{"prompt":"{{prompt}}","max_tokens":{{maxTokens}},"temperature":0}"""
            : $$"""{"prompt":"{{prompt}}","max_tokens":{{maxTokens}},"temperature":0,"lora":"{{lora}}"}""";

    private static string Response(ApiAnswer answer)
    {
        Assert.True(answer.Status == HttpStatusCode.OK, answer.Body);
        return answer.Result.GetProperty("response").GetString()!;
    }

    /// <summary>The engine alone, with the adapter loaded straight from its directory.</summary>
    private static string Reference(string prompt, string? adapterDir, int maxTokens = 16)
    {
        int[] ids = MistralChatTemplate.Encode(TestServer.Tokenizer, [new ChatMessage("user", prompt)]);
        using var model = new LlamaModel(WeightLoader.Load(TestServer.ModelPath), threads: 2, maxBatchTokens: 128);
        LoraAdapter? adapter = adapterDir is null ? null : LoraAdapter.Load(adapterDir, model.Weights);
        using KvCachePool cache = model.CreateCache(KvCacheOptions.ForPositions(model.Config, ids.Length + maxTokens + 1, KvCacheType.F32));
        return new Engine.Generation.TextGenerator(model, TestServer.Tokenizer, cache, adapter).Generate(ids, maxTokens, SamplingOptions.Greedy).Text;
    }

    [Fact]
    public async Task UploadListRun_ByNameAndId_SurvivesARestart()
    {
        string adapter = Adapter("a", seed: 3);
        string data = _dir.File("data");
        string id;
        string expected = Reference("Hello there", adapter);
        Assert.NotEqual(Reference("Hello there", null), expected);

        await using (TestServer server = await TestServer.StartAsync(dataDirectory: data))
        {
            id = await CreateAndUploadAsync(server.Client, "acc", "my-lora", adapter);
            ApiAnswer list = await Api.GetAsync(server.Client, "/client/v4/accounts/acc/ai/finetunes");
            Assert.Contains(list.Result.EnumerateArray(), f => f.GetProperty("name").GetString() == "my-lora");

            Assert.Equal(expected, Response(await Api.PostAsync(server.Client, Api.RunPath(Api.Lora, "acc"), Run("Hello there", "my-lora"))));
            Assert.Equal(expected, Response(await Api.PostAsync(server.Client, Api.RunPath(Api.Hf, "acc"), Run("Hello there", id))));
            Assert.Equal(Reference("Hello there", null), Response(await Api.PostAsync(server.Client, Api.RunPath(Api.Lora, "acc"), Run("Hello there", null))));
            Assert.Equal(1, server.Host.Adapters.LoadCount); // loaded once, then from the cache
        }

        await using (TestServer restarted = await TestServer.StartAsync(dataDirectory: data))
        {
            Assert.Equal(expected, Response(await Api.PostAsync(restarted.Client, Api.RunPath(Api.Lora, "acc"), Run("Hello there", "my-lora"))));
        }
    }

    [Fact]
    public async Task TwoAdapters_AtOnce_EachGetsItsOwnResult()
    {
        string first = Adapter("first", seed: 5);
        string second = Adapter("second", seed: 6, targets: [LlamaTensorRole.Gate, LlamaTensorRole.Up, LlamaTensorRole.Down, LlamaTensorRole.Query]);
        await using TestServer server = await TestServer.StartAsync(new ServerOptions { MaxActiveSequences = 4, SsePaddingMaxLength = 0 });
        await CreateAndUploadAsync(server.Client, "acc", "first", first);
        await CreateAndUploadAsync(server.Client, "acc", "second", second);

        ApiAnswer[] answers = await Task.WhenAll(
            Api.PostAsync(server.Client, Api.RunPath(Api.Lora, "acc"), Run("Tell me a story", "first", 24)),
            Api.PostAsync(server.Client, Api.RunPath(Api.Lora, "acc"), Run("Tell me a story", "second", 24)),
            Api.PostAsync(server.Client, Api.RunPath(Api.Lora, "acc"), Run("Tell me a story", null, 24)));

        Assert.Equal(Reference("Tell me a story", first, 24), Response(answers[0]));
        Assert.Equal(Reference("Tell me a story", second, 24), Response(answers[1]));
        Assert.Equal(Reference("Tell me a story", null, 24), Response(answers[2]));
        Assert.Equal(3, new[] { Response(answers[0]), Response(answers[1]), Response(answers[2]) }.Distinct().Count());
        Assert.True(server.Host.Scheduler.Stats.MaxSequencesPerStep > 1, "the three requests should have shared steps");
    }

    [Fact]
    public async Task OpenAiRoute_TakesLoraToo()
    {
        string adapter = Adapter("o", seed: 8);
        await using TestServer server = await TestServer.StartAsync();
        await CreateAndUploadAsync(server.Client, "acc", "o-lora", adapter);

        ApiAnswer answer = await Api.PostAsync(server.Client, "/client/v4/accounts/acc/ai/v1/chat/completions",
            $$"""{"model":"{{Api.Lora}}","messages":[{"role":"user","content":"Hello there"}],"max_tokens":16,"temperature":0,"lora":"o-lora"}""");

        Assert.Equal(Reference("Hello there", adapter), answer.Json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Errors_NameTheProblem()
    {
        await using TestServer server = await TestServer.StartAsync();
        // Unknown adapter.
        ApiAnswer unknown = await Api.PostAsync(server.Client, Api.RunPath(Api.Lora, "acc"), Run("hi", "nope"));
        Assert.Equal(HttpStatusCode.BadRequest, unknown.Status);
        Assert.Contains("nope", unknown.ErrorMessage, StringComparison.Ordinal);

        // Created but only one file uploaded: 3039.
        ApiAnswer created = await Api.PostAsync(server.Client, "/client/v4/accounts/acc/ai/finetunes", $$"""{"model":"{{Api.Lora}}","name":"half"}""");
        Assert.Equal(HttpStatusCode.OK, created.Status);
        ApiAnswer half = await Api.PostAsync(server.Client, Api.RunPath(Api.Lora, "acc"), Run("hi", "half"));
        Assert.Equal(3039, half.ErrorCode);

        // Another account's adapter is as unknown as a missing one.
        await CreateAndUploadAsync(server.Client, "alice", "private", Adapter("p", seed: 9));
        ApiAnswer other = await Api.PostAsync(server.Client, Api.RunPath(Api.Lora, "bob"), Run("hi", "private"));
        Assert.Equal(HttpStatusCode.BadRequest, other.Status);
        Assert.Contains("private", other.ErrorMessage, StringComparison.Ordinal);

        // Rank over the server's limit (8) is refused at upload, naming the rank.
        string big = Adapter("big", seed: 10, rank: 16);
        ApiAnswer bigCreated = await Api.PostAsync(server.Client, "/client/v4/accounts/acc/ai/finetunes", $$"""{"model":"{{Api.Lora}}","name":"big"}""");
        string bigId = bigCreated.Result.GetProperty("id").GetString()!;
        using var form1 = new MultipartFormDataContent { { new StringContent("adapter_config.json"), "file_name" }, { new ByteArrayContent(File.ReadAllBytes(Path.Combine(big, "adapter_config.json"))), "file", "blob" } };
        Assert.True((await server.Client.PostAsync($"/client/v4/accounts/acc/ai/finetunes/{bigId}/finetune-assets", form1)).IsSuccessStatusCode);
        using var form2 = new MultipartFormDataContent { { new StringContent("adapter_model.safetensors"), "file_name" }, { new ByteArrayContent(File.ReadAllBytes(Path.Combine(big, "adapter_model.safetensors"))), "file", "blob" } };
        HttpResponseMessage refused = await server.Client.PostAsync($"/client/v4/accounts/acc/ai/finetunes/{bigId}/finetune-assets", form2);
        string body = await refused.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("16", body, StringComparison.Ordinal);
        Assert.Contains("8", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AdapterThatDoesNotFitTheModel_IsRefusedAtUpload()
    {
        // An adapter written for a model with another width: the engine validator names the tensor and both shapes.
        string wrong = _dir.File("wrong");
        SyntheticLoraWriter.WritePeft(wrong, TestServer.Config with { ModelDim = 128, HeadCount = 2, KvHeadCount = 1 }, new SyntheticLoraOptions { Seed = 2 });
        await using TestServer server = await TestServer.StartAsync();
        ApiAnswer created = await Api.PostAsync(server.Client, "/client/v4/accounts/acc/ai/finetunes", $$"""{"model":"{{Api.Lora}}","name":"wrong"}""");
        string id = created.Result.GetProperty("id").GetString()!;
        HttpResponseMessage last = null!;
        foreach (string file in (string[])["adapter_config.json", "adapter_model.safetensors"])
        {
            using var form = new MultipartFormDataContent { { new StringContent(file), "file_name" }, { new ByteArrayContent(File.ReadAllBytes(Path.Combine(wrong, file))), "file", "blob" } };
            last = await server.Client.PostAsync($"/client/v4/accounts/acc/ai/finetunes/{id}/finetune-assets", form);
        }
        using var error = JsonDocument.Parse(await last.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.BadRequest, last.StatusCode);
        string message = error.RootElement.GetProperty("errors")[0].GetProperty("message").GetString()!;
        Assert.Contains("adapter_model.safetensors", message, StringComparison.Ordinal);
        Assert.Contains("lora_", message, StringComparison.Ordinal);
    }
}
