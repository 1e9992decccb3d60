// Tiny synthetic models (the real architecture, seeded random weights) written once per test run and shared by the
// model tests: GGUF in several types and a Hugging Face directory, all from the same seed, so they are the same model.

using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Model;
using Sirocco.Engine.Synthesis;
using Sirocco.Tests;

namespace Sirocco.Engine.Tests.Model;

internal static class TinyModels
{
    public const ulong Seed = 11;

    private static readonly Lock s_lock = new();
    private static readonly Dictionary<string, string> s_paths = [];
    private static readonly Lazy<TempDir> s_dir = new(() => new TempDir());

    /// <summary>The tiny preset with the full 32000 vocabulary (the real tokenizer) and a 512-token context.</summary>
    public static ModelConfig Config { get; } = SyntheticPresets.Tiny with { ContextLength = 512 };

    /// <summary>Path of the tiny GGUF model of <paramref name="type"/>, written on first use.</summary>
    public static string Gguf(ModelFileType type) => Get($"gguf-{type}", path =>
        SyntheticModelWriter.WriteGguf(path, Config, type, SyntheticTokenizers.Mistral(), Seed));

    /// <summary>Directory of the tiny Hugging Face model in <paramref name="dtype"/>, written on first use.</summary>
    public static string HuggingFace(SafeTensorDtype dtype) => Get($"hf-{dtype}", path =>
        SyntheticModelWriter.WriteHuggingFace(path, Config, dtype, SyntheticTokenizers.Mistral(), Seed));

    private static string Get(string key, Action<string> write)
    {
        lock (s_lock)
        {
            if (!s_paths.TryGetValue(key, out string? path))
            {
                path = s_dir.Value.File(key.StartsWith("gguf", StringComparison.Ordinal) ? key + ".gguf" : key);
                write(path);
                s_paths[key] = path;
            }
            return path;
        }
    }

    /// <summary>Loads a model with an F32 KV cache pool big enough for the tests.</summary>
    public static (LlamaModel Model, KvCachePool Cache) Load(string path, int threads = 2, KvCacheType cacheType = KvCacheType.F32, int maxBatchTokens = 64)
    {
        var model = new LlamaModel(WeightLoader.Load(path), threads, maxBatchTokens);
        var cache = model.CreateCache(new KvCacheOptions(64L << 20, BlockSize: 8, cacheType));
        return (model, cache);
    }
}
