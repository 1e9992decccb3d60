// Q8_K: the 256-element activation format the K-quant dot products (Reference/QuantDot, Simd/QuantDot) pair with.
// Never stored in a GGUF; the forward pass quantizes each activation vector once and reuses it for every weight row.

using System.Buffers.Binary;

namespace Sirocco.Kernels.Quant;

public static partial class Quantize
{
    private const int QK_K8 = 256; // elements per Q8_K block

    /// <summary>Q8_K row, as ggml's <c>quantize_row_q8_K_ref</c>: with <c>max</c> the element of largest magnitude
    /// (sign kept, first one on ties), iscale = −127 / max, q = min(127, round-half-even(iscale · x)), d = 1 / iscale
    /// as an f32, and bsums[i] = the sum of q over elements 16i … 16i + 15. An all-zero block gets d = 0 and zero codes
    /// and sums (ggml leaves its bsums unwritten). Every code lies in −127 … 127.</summary>
    /// <remarks>Layout, 292 bytes per 256 elements: [0, 4) d f32; [4, 260) qs 256 × int8; [260, 292) bsums 16 × int16,
    /// all little-endian; x[j] = d · qs[j] (see <see cref="Reference.Dequantize.Q8_K"/>).</remarks>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q8_K(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q8_K, src.Length, dst.Length, nameof(src), nameof(dst));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * QK_K8, QK_K8);
            Span<byte> block = dst.Slice(b * 292, 292);
            float max = SignedAbsMax(x);
            if (max == 0f)
            {
                block.Clear();
                continue;
            }
            float iscale = -127f / max;
            for (int i = 0; i < QK_K8 / 16; i++)
            {
                int sum = 0;
                for (int j = 16 * i; j < 16 * i + 16; j++)
                {
                    // ggml's nearest_int rounds half to even (the 1.5 · 2^23 trick), as MathF.Round does by default.
                    int q = Math.Min(127, (int)MathF.Round(iscale * x[j]));
                    block[4 + j] = (byte)(sbyte)q;
                    sum += q;
                }
                BinaryPrimitives.WriteInt16LittleEndian(block.Slice(260 + 2 * i, 2), (short)sum);
            }
            BinaryPrimitives.WriteSingleLittleEndian(block, 1f / iscale);
        }
    }
}
