// Weight matrix × activation rows, the forward pass's one heavy operation. Activations are converted once per matmul
// into the format the weight type multiplies best against (QuantizeActivation), then any range of weight rows can be
// multiplied against all activation rows (Multiply), so a worker pool can split rows across threads.

using System.Runtime.Intrinsics.X86;
using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels.Simd;

/// <summary>Matrix products of a <see cref="WeightMatrix"/> with a batch of activation rows.</summary>
/// <remarks>
/// Protocol: for each activation row x (length <see cref="WeightMatrix.Columns"/>) call
/// <see cref="QuantizeActivation"/> into a slot of <see cref="ActivationRowBytes"/> bytes; then
/// <see cref="Multiply"/> computes output[t·stride + r] = Σ_c W[r, c]·x_t[c] for the rows asked. The activation
/// format is private to this class: Q8_0's quantization in a planar layout for Q8_0 and Q4_0 weights, Q8_K rows for
/// K-quants, f32 for float weights. Multiply allocates nothing for quantized weights and may run on several threads
/// at once over disjoint row ranges.
/// </remarks>
public static partial class MatMul
{
    /// <summary>Whether <paramref name="weightType"/> can be multiplied.</summary>
    public static bool Supports(GgmlType weightType) => weightType is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16
        or GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    /// <summary>The activation quantization used against <paramref name="weightType"/> (for Q8_0 its rule and codes;
    /// the bytes are laid out as <see cref="ActivationRowBytes"/> describes).</summary>
    public static GgmlType ActivationType(GgmlType weightType) => weightType switch
    {
        GgmlType.Q8_0 or GgmlType.Q4_0 => GgmlType.Q8_0,
        GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K => GgmlType.Q8_K,
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 => GgmlType.F32,
        _ => throw Unsupported(weightType),
    };

    /// <summary>Bytes one converted activation row of <paramref name="columns"/> elements takes.</summary>
    /// <remarks>For Q8_0/Q4_0 weights the row holds Q8_0 codes and scales in a private planar layout
    /// (columns · 1.25 bytes, see MatMul.Quantized.cs); otherwise it is a row of <see cref="ActivationType"/>.</remarks>
    public static int ActivationRowBytes(GgmlType weightType, int columns) => ActivationType(weightType) == GgmlType.Q8_0
        ? PlanarQ8RowBytes(columns)
        : checked((int)GgmlTypes.Get(ActivationType(weightType)).RowBytes(columns));

    /// <summary>Converts one activation row for multiplication against weights of <paramref name="weightType"/>.</summary>
    /// <exception cref="ArgumentException">Sizes disagree or the length is not a whole number of blocks.</exception>
    public static void QuantizeActivation(GgmlType weightType, ReadOnlySpan<float> activation, Span<byte> destination)
    {
        GgmlType type = ActivationType(weightType);
        int blockSize = GgmlTypes.Get(type).BlockSize;
        if (activation.Length % blockSize != 0)
        {
            throw new ArgumentException($"{type} activations are whole blocks of {blockSize} elements; got {activation.Length}", nameof(activation));
        }
        if (destination.Length != ActivationRowBytes(weightType, activation.Length))
        {
            throw new ArgumentException($"destination holds {destination.Length} bytes; a {type} row of {activation.Length} needs {ActivationRowBytes(weightType, activation.Length)}", nameof(destination));
        }
        switch (type)
        {
            case GgmlType.Q8_0:
                QuantizePlanarQ8(activation, destination);
                break;
            case GgmlType.Q8_K:
                ActivationQuantizer.Q8_K(activation, destination);
                break;
            default:
                Quantize.Row(type, activation, destination);
                break;
        }
    }

    /// <summary>output[t·<paramref name="outputStride"/> + r] = row r of <paramref name="weights"/> · activation t,
    /// for r in [<paramref name="rowStart"/>, <paramref name="rowEnd"/>) and t in [0, <paramref name="tokenCount"/>).</summary>
    /// <param name="activations"><paramref name="tokenCount"/> rows made by <see cref="QuantizeActivation"/>, back to back.</param>
    /// <exception cref="ArgumentException">A range or size does not fit.</exception>
    public static void Multiply(in WeightMatrix weights, int rowStart, int rowEnd, ReadOnlySpan<byte> activations, int tokenCount, Span<float> output, int outputStride)
    {
        int actBytes = ActivationRowBytes(weights.Type, weights.Columns);
        if (rowStart < 0 || rowEnd > weights.Rows || rowStart > rowEnd)
        {
            throw new ArgumentOutOfRangeException(nameof(rowStart), $"rows [{rowStart}, {rowEnd}) of a matrix of {weights.Rows}");
        }
        if (tokenCount < 0 || activations.Length < (long)actBytes * tokenCount)
        {
            throw new ArgumentException($"{tokenCount} activation rows need {(long)actBytes * tokenCount} bytes; got {activations.Length}", nameof(activations));
        }
        if (tokenCount > 0 && (outputStride < rowEnd || output.Length < (long)(tokenCount - 1) * outputStride + rowEnd))
        {
            throw new ArgumentException($"output of {output.Length} with stride {outputStride} cannot hold {tokenCount} rows up to column {rowEnd}", nameof(output));
        }
        if (rowStart == rowEnd || tokenCount == 0)
        {
            return;
        }
        MultiplyChecked(weights, rowStart, rowEnd, activations, actBytes, tokenCount, output, outputStride);
    }

    private static unsafe void MultiplyChecked(in WeightMatrix w, int rowStart, int rowEnd, ReadOnlySpan<byte> act, int actBytes, int tokenCount, Span<float> output, int stride)
    {
        switch (w.Type)
        {
            case GgmlType.F32 or GgmlType.F16 or GgmlType.BF16:
                MultiplyFloat(w, rowStart, rowEnd, act, actBytes, tokenCount, output, stride);
                return;
        }
        fixed (byte* a = act)
        fixed (float* o = output)
        {
            switch (w.Type)
            {
                case GgmlType.Q8_0 or GgmlType.Q4_0:
                    MultiplyPlanarQ8(w, rowStart, rowEnd, a, actBytes, tokenCount, o, stride);
                    return;
                case GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K:
                    MultiplyKQuant(w, rowStart, rowEnd, a, actBytes, tokenCount, o, stride);
                    return;
                default:
                    throw Unsupported(w.Type);
            }
        }
    }

    internal static NotSupportedException Unsupported(GgmlType type) =>
        new($"matrix products with {type} weights are not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)");
}
