// One adapted projection of one layer: the LoRA matrices A [r × in] and B [out × r] held in f32, the scale, and the
// unmerged delta y += s·B·(A·x) that the forward pass adds after the base product. LoraAdapter owns one per adapted
// (layer, projection); the kernels are the existing SIMD dot product and multiply-add of Sirocco.Kernels.Simd.Ops.

using Sirocco.Kernels.Simd;

namespace Sirocco.Engine.Lora;

/// <summary>The LoRA factors of one projection, ready to apply.</summary>
internal sealed class LoraProjection
{
    /// <summary>Ranks up to this keep their r intermediate values on the stack.</summary>
    private const int MaxStackRank = 256;

    /// <summary>Output elements updated by all r rank rows before moving on: 8 KiB of y stays in L1 while the r rows
    /// of Bᵀ stream past it once, instead of y making r round trips through L2.</summary>
    private const int OutputChunk = 2048;

    private readonly float[] _a;  // [Rank][Inputs]: A as PEFT stores it
    private readonly float[] _bT; // [Rank][Outputs]: B transposed, its rows in the base model's q/k order

    /// <param name="a">A, row-major [rank × inputs].</param>
    /// <param name="bTransposed">Bᵀ, row-major [rank × outputs], already in the base model's row order.</param>
    public LoraProjection(LoraModule module, int layer, int rank, int inputs, int outputs, float scale, float[] a, float[] bTransposed)
    {
        System.Diagnostics.Debug.Assert(a.Length == (long)rank * inputs && bTransposed.Length == (long)rank * outputs);
        Module = module;
        Layer = layer;
        Rank = rank;
        Inputs = inputs;
        Outputs = outputs;
        Scale = scale;
        _a = a;
        _bT = bTransposed;
    }

    public LoraModule Module { get; }

    public int Layer { get; }

    public int Rank { get; }

    public int Inputs { get; }

    public int Outputs { get; }

    /// <summary>s: α/r, α/√r (rsLoRA) or, for a GGUF adapter without alpha, 1.</summary>
    public float Scale { get; }

    /// <summary>Bytes of the two matrices.</summary>
    public long Bytes => ((long)_a.Length + _bT.Length) * sizeof(float);

    /// <summary>A as stored, [Rank × Inputs] (tests).</summary>
    internal ReadOnlySpan<float> A => _a;

    /// <summary>Bᵀ as stored, [Rank × Outputs] (tests).</summary>
    internal ReadOnlySpan<float> BTransposed => _bT;

    /// <summary>y += s·B·(A·x) for one token row. Allocation-free and thread-safe: the r intermediate values live on
    /// the caller's stack.</summary>
    /// <remarks>t = s·A·x is r dot products of length Inputs (SIMD, float accumulation); then y += Σⱼ tⱼ·Bᵀⱼ, r fused
    /// multiply-adds over contiguous rows. The result differs from the double-precision reference by float rounding
    /// in the dots (relative 1e-6 for these lengths) and in the r-term sums.</remarks>
    public void AddDelta(ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.Length != Inputs || y.Length != Outputs)
        {
            ThrowLengths(x.Length, y.Length);
        }
        int rank = Rank;
        Span<float> t = rank <= MaxStackRank ? stackalloc float[rank] : new float[rank];
        ReadOnlySpan<float> a = _a;
        for (int j = 0; j < rank; j++)
        {
            t[j] = Scale * Ops.Dot(a.Slice(j * Inputs, Inputs), x);
        }
        ReadOnlySpan<float> bT = _bT;
        for (int start = 0; start < Outputs; start += OutputChunk)
        {
            int count = Math.Min(OutputChunk, Outputs - start);
            Span<float> yChunk = y.Slice(start, count);
            for (int j = 0; j < rank; j++)
            {
                Ops.MultiplyAdd(t[j], bT.Slice(j * Outputs + start, count), yChunk);
            }
        }
    }

    private void ThrowLengths(int inputs, int outputs) =>
        throw new ArgumentException($"{Module.ModulePath(Layer)}: the adapter maps {Inputs} inputs to {Outputs} outputs; got spans of {inputs} and {outputs} (an adapter loaded for another model?)");
}
