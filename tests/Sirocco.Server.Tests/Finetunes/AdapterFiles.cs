// Adapter files for the finetune tests: a real synthetic PEFT adapter for the test server's model (the server checks
// uploads by loading them with the engine), with the config's rank or model_type rewritten where a test needs a bad
// one, and a minimal well-formed safetensors file padded to any size for the size-limit tests; and a store on a
// temporary directory.

using System.Buffers.Binary;
using System.Text;
using Sirocco.Server.Catalog;
using Sirocco.Server.Finetunes;

namespace Sirocco.Server.Tests.Finetunes;

internal static class AdapterFiles
{
    public static readonly ModelCatalog Catalog = ModelCatalog.Load(4096);

    private static readonly Lazy<TempDir> s_dir = new(() => new TempDir());
    private static readonly Dictionary<byte, (byte[] Config, byte[] Weights)> s_adapters = [];

    /// <summary>adapter_config.json of the synthetic rank-8 adapter, with "r" and "model_type" set as given.</summary>
    public static byte[] Config(int rank = 8, string modelType = "mistral")
    {
        var config = System.Text.Json.Nodes.JsonNode.Parse(Synthetic(1).Config)!.AsObject();
        config["r"] = rank;
        config["model_type"] = modelType;
        return rank == 8 && modelType == "mistral" ? Synthetic(1).Config : Encoding.UTF8.GetBytes(config.ToJsonString());
    }

    /// <summary>adapter_model.safetensors: the synthetic adapter of <paramref name="seed"/> for the test model; or, when
    /// <paramref name="floatCount"/> is given, a file with one F32 tensor of that many seeded bytes (for size limits).</summary>
    public static byte[] Weights(int? floatCount = null, byte seed = 1) =>
        floatCount is int count ? PaddedWeights(count, seed) : Synthetic(seed).Weights;

    private static (byte[] Config, byte[] Weights) Synthetic(byte seed)
    {
        lock (s_adapters)
        {
            if (!s_adapters.TryGetValue(seed, out var files))
            {
                string dir = s_dir.Value.File($"adapter-{seed}");
                Sirocco.Engine.Synthesis.SyntheticLoraWriter.WritePeft(dir, Http.TestServer.Config, new Sirocco.Engine.Synthesis.SyntheticLoraOptions { Seed = seed });
                files = (File.ReadAllBytes(Path.Combine(dir, "adapter_config.json")), File.ReadAllBytes(Path.Combine(dir, "adapter_model.safetensors")));
                s_adapters[seed] = files;
            }
            return files;
        }
    }

    private static byte[] PaddedWeights(int floatCount, byte seed)
    {
        byte[] header = Encoding.UTF8.GetBytes(
            $$$"""{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":{"dtype":"F32","shape":[{{{floatCount}}}],"data_offsets":[0,{{{floatCount * 4}}}]}}""");
        byte[] file = new byte[8 + header.Length + floatCount * 4];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        for (int i = 8 + header.Length; i < file.Length; i++)
        {
            file[i] = (byte)(i * 31 + seed);
        }
        return file;
    }

    public static FinetuneStore Open(string directory, FinetuneLimits? limits = null, IAdapterValidator? validator = null) =>
        new(directory, validator ?? new JsonConfigValidator(), Catalog, limits);

    public static async Task<Finetune> UploadBothAsync(FinetuneStore store, string? account, string idOrName, byte seed = 1)
    {
        await store.UploadAsync(account, idOrName, Finetune.ConfigFileName, new MemoryStream(Config()));
        return await store.UploadAsync(account, idOrName, Finetune.WeightsFileName, new MemoryStream(Weights(seed: seed)));
    }

    /// <summary>Every file under <paramref name="directory"/> whose name starts with ".tmp-".</summary>
    public static string[] TempFiles(string directory) =>
        [.. Directory.EnumerateFiles(directory, ".tmp-*", SearchOption.AllDirectories)];

    public static string[] Blobs(string directory) =>
        [.. Directory.EnumerateFiles(Path.Combine(directory, "blobs", "sha256")).Select(Path.GetFileName).Where(n => !n!.StartsWith('.'))!];
}
