// The weights of a loaded model as views the kernels read in place: matrices stay in the memory-mapped file (GGUF, or
// safetensors for a Hugging Face directory) unless they were converted at load, and only the small RMSNorm vectors
// are copied into managed arrays. See WeightLoader for how each format gets here.

using Sirocco.Kernels;
using Sirocco.Kernels.Simd;

namespace Sirocco.Engine.Model;

/// <summary>One decoder layer's weights.</summary>
public sealed class LayerWeights
{
    public required float[] AttentionNorm { get; init; }

    public required WeightMatrix Query { get; init; }

    public required WeightMatrix Key { get; init; }

    public required WeightMatrix Value { get; init; }

    public required WeightMatrix AttentionOutput { get; init; }

    public required float[] FeedForwardNorm { get; init; }

    public required WeightMatrix Gate { get; init; }

    public required WeightMatrix Up { get; init; }

    public required WeightMatrix Down { get; init; }

    /// <summary>The matrices in forward order, with their roles.</summary>
    public IEnumerable<(LlamaTensorRole Role, WeightMatrix Matrix)> Matrices =>
    [
        (LlamaTensorRole.Query, Query), (LlamaTensorRole.Key, Key), (LlamaTensorRole.Value, Value),
        (LlamaTensorRole.AttentionOutput, AttentionOutput), (LlamaTensorRole.Gate, Gate), (LlamaTensorRole.Up, Up),
        (LlamaTensorRole.Down, Down),
    ];
}

/// <summary>All weights of a Llama/Mistral model, plus the resources (mapped files, buffers) that hold them.</summary>
public sealed class ModelWeights : IDisposable
{
    private readonly IDisposable[] _owners;

    internal ModelWeights(ModelConfig config, string sourcePath, string description, RopeStyle ropeStyle,
        WeightMatrix tokenEmbedding, LayerWeights[] layers, float[] outputNorm, WeightMatrix output, IDisposable[] owners)
    {
        Config = config;
        SourcePath = sourcePath;
        Description = description;
        RopeStyle = ropeStyle;
        TokenEmbedding = tokenEmbedding;
        Layers = layers;
        OutputNorm = outputNorm;
        Output = output;
        _owners = owners;
    }

    public ModelConfig Config { get; }

    /// <summary>The file or directory the weights came from.</summary>
    public string SourcePath { get; }

    /// <summary>Format and types, e.g. "GGUF Q4_K_M (Q4_K, Q6_K, F32)".</summary>
    public string Description { get; }

    /// <summary>Which RoPE pairing the q/k rows of this layout need: GGUF files hold llama.cpp's interleaved order,
    /// Hugging Face checkpoints the rotate-half order. Attention scores are the same either way.</summary>
    public RopeStyle RopeStyle { get; }

    public WeightMatrix TokenEmbedding { get; }

    public IReadOnlyList<LayerWeights> Layers { get; }

    public float[] OutputNorm { get; }

    public WeightMatrix Output { get; }

    /// <summary>Bytes of weights a decode step reads: every layer matrix and the output head (the embedding is
    /// read one row per token).</summary>
    public long BytesPerToken => Layers.Sum(l => l.Matrices.Sum(m => m.Matrix.ByteCount)) + Output.ByteCount;

    public void Dispose()
    {
        foreach (IDisposable owner in _owners)
        {
            owner.Dispose();
        }
    }

    internal static void CheckMultipliable(WeightMatrix matrix, string name, string path)
    {
        if (!MatMul.Supports(matrix.Type))
        {
            throw new Formats.UnsupportedModelException(
                $"{path}: tensor {name} is {matrix.Type}; Sirocco runs F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K weights (files Q4_0, Q4_K_M, Q5_K_M, Q6_K, Q8_0, F16, BF16, F32)");
        }
    }
}
