// Named model shapes for `sirocco synth`: the real Mistral-7B-v0.2 shape, and a tiny one with the same architecture
// that tests and benchmarks can afford to write and run.

using Sirocco.Engine.Model;

namespace Sirocco.Engine.Synthesis;

/// <summary>Model shapes for synthetic models.</summary>
public static class SyntheticPresets
{
    /// <summary>The real Mistral-7B-Instruct-v0.2 shape (32 layers, 4096 wide, 14336 feed-forward, 32/8 heads).</summary>
    public static ModelConfig Mistral7B => ModelConfig.Mistral7B;

    /// <summary>Mistral's architecture at test size: 2 layers, 256 wide (the narrowest width that holds whole 256-element
    /// k-quant blocks, so Q4_K/Q5_K/Q6_K are exercised for real), 512 feed-forward, 4 query heads sharing 2 KV heads
    /// (grouped-query attention, head dim 64), the real 32000-piece vocabulary and RoPE theta 1e6.
    /// About 11 MB as Q4_K_M, 19 MB as Q8_0, 70 MB as F32.</summary>
    public static ModelConfig Tiny { get; } = new()
    {
        ModelDim = 256,
        HiddenDim = 512,
        LayerCount = 2,
        HeadCount = 4,
        KvHeadCount = 2,
        HeadDim = 64,
        RopeDim = 64,
        VocabSize = 32000,
        ContextLength = 4096,
        RopeTheta = 1_000_000f,
        RmsNormEps = 1e-5f,
    };

    /// <summary>Preset names accepted by the CLI.</summary>
    public static IReadOnlyList<string> Names { get; } = ["tiny", "7b"];

    /// <summary>The preset called <paramref name="name"/> (case-insensitive), or null.</summary>
    public static ModelConfig? Find(string name) => name.ToLowerInvariant() switch
    {
        "tiny" => Tiny,
        "7b" or "mistral-7b" => Mistral7B,
        _ => null,
    };
}
