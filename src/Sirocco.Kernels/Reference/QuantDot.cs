// Scalar reference dot products between one row of quantized weights and one quantized activation row (Q8_0 for the
// legacy formats, Q8_K for the K-quants): the specification Simd/QuantDot is tested against. Integer sums per block are
// exact; blocks are combined in double. Layouts are documented in Dequantize.cs, next to each dequantizer.

using System.Buffers.Binary;
using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels.Reference;

/// <summary>Reference quantized dot products, each the dot product of the two dequantized rows.</summary>
/// <remarks>
/// Every method takes <c>elementCount</c> (a whole number of blocks of both formats) and two rows of exactly
/// <see cref="GgmlTypeInfo.RowBytes"/> bytes each. Per block the integer products are summed exactly in
/// <see cref="int"/>, scaled by the product of the block scales in double and summed in double; the result is the
/// double dot product of <see cref="Dequantize.Row"/> of each row, up to the float rounding of those dequantized values
/// and of the returned float. Any byte values are accepted.
/// </remarks>
public static class QuantDot
{
    private const int QK = 32;    // elements per Q4_0 / Q8_0 block
    private const int QK_K = 256; // elements per K-quant and Q8_K block

    /// <summary>Σ w·a over a Q8_0 weight row and a Q8_0 activation row: Σ_blocks dw·da·Σ qw·qa.</summary>
    /// <exception cref="ArgumentException">A length is not a whole number of blocks or the byte counts disagree.</exception>
    public static float DotQ8_0Q8_0(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int elementCount)
    {
        int blockCount = BlockRows.Check(GgmlType.Q8_0, elementCount, weightRow.Length, nameof(elementCount), nameof(weightRow));
        BlockRows.Check(GgmlType.Q8_0, elementCount, activationRow.Length, nameof(elementCount), nameof(activationRow));
        double sum = 0;
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<byte> w = weightRow.Slice(b * 34, 34);
            ReadOnlySpan<byte> a = activationRow.Slice(b * 34, 34);
            int sumi = 0;
            for (int j = 0; j < QK; j++)
            {
                sumi += (sbyte)w[2 + j] * (sbyte)a[2 + j];
            }
            sum += (double)ReadHalf(w, 0) * ReadHalf(a, 0) * sumi;
        }
        return (float)sum;
    }

    /// <summary>Σ w·a over a Q4_0 weight row and a Q8_0 activation row: Σ_blocks dw·da·Σ (qw − 8)·qa.</summary>
    /// <exception cref="ArgumentException">A length is not a whole number of blocks or the byte counts disagree.</exception>
    public static float DotQ4_0Q8_0(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int elementCount)
    {
        int blockCount = BlockRows.Check(GgmlType.Q4_0, elementCount, weightRow.Length, nameof(elementCount), nameof(weightRow));
        BlockRows.Check(GgmlType.Q8_0, elementCount, activationRow.Length, nameof(elementCount), nameof(activationRow));
        double sum = 0;
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<byte> w = weightRow.Slice(b * 18, 18);
            ReadOnlySpan<byte> a = activationRow.Slice(b * 34, 34);
            int sumi = 0;
            for (int j = 0; j < QK; j++)
            {
                // Element j < 16 is the low nibble of byte j, element j ≥ 16 the high nibble of byte j − 16.
                int q = j < 16 ? w[2 + j] & 0xF : w[2 + j - 16] >> 4;
                sumi += (q - 8) * (sbyte)a[2 + j];
            }
            sum += (double)ReadHalf(w, 0) * ReadHalf(a, 0) * sumi;
        }
        return (float)sum;
    }

    /// <summary>Σ w·a over a Q4_K weight row and a Q8_K activation row: per 32-element sub-block s,
    /// d·da·sc[s]·Σ q·qa − dmin·da·m[s]·Σ qa. The activation sums are taken from its codes, not its bsums.</summary>
    /// <exception cref="ArgumentException">A length is not a whole number of blocks or the byte counts disagree.</exception>
    public static float DotQ4_KQ8_K(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int elementCount)
    {
        int blockCount = BlockRows.Check(GgmlType.Q4_K, elementCount, weightRow.Length, nameof(elementCount), nameof(weightRow));
        BlockRows.Check(GgmlType.Q8_K, elementCount, activationRow.Length, nameof(elementCount), nameof(activationRow));
        double sum = 0;
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<byte> w = weightRow.Slice(b * 144, 144);
            ReadOnlySpan<byte> a = activationRow.Slice(b * 292, 292);
            double d = ReadHalf(w, 0), dmin = ReadHalf(w, 2);
            double da = BinaryPrimitives.ReadSingleLittleEndian(a);
            ReadOnlySpan<byte> scales = w.Slice(4, 12), qs = w.Slice(16, 128), qa = a.Slice(4, QK_K);
            for (int s = 0; s < 8; s++)
            {
                var (sc, m) = Dequantize.ScaleMinK4(scales, s);
                int sumi = 0, suma = 0;
                for (int e = 32 * s; e < 32 * s + 32; e++)
                {
                    byte packed = qs[32 * (e / 64) + e % 32];
                    int q = s % 2 == 1 ? packed >> 4 : packed & 0xF;
                    sumi += q * (sbyte)qa[e];
                    suma += (sbyte)qa[e];
                }
                sum += d * da * sc * sumi - dmin * da * m * suma;
            }
        }
        return (float)sum;
    }

    /// <summary>Σ w·a over a Q5_K weight row and a Q8_K activation row: per 32-element sub-block s,
    /// d·da·sc[s]·Σ q·qa − dmin·da·m[s]·Σ qa, with q the 5-bit code (low nibble as Q4_K, bit 4 from qh). The
    /// activation sums are taken from its codes, not its bsums.</summary>
    /// <exception cref="ArgumentException">A length is not a whole number of blocks or the byte counts disagree.</exception>
    public static float DotQ5_KQ8_K(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int elementCount)
    {
        int blockCount = BlockRows.Check(GgmlType.Q5_K, elementCount, weightRow.Length, nameof(elementCount), nameof(weightRow));
        BlockRows.Check(GgmlType.Q8_K, elementCount, activationRow.Length, nameof(elementCount), nameof(activationRow));
        double sum = 0;
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<byte> w = weightRow.Slice(b * 176, 176);
            ReadOnlySpan<byte> a = activationRow.Slice(b * 292, 292);
            double d = ReadHalf(w, 0), dmin = ReadHalf(w, 2);
            double da = BinaryPrimitives.ReadSingleLittleEndian(a);
            ReadOnlySpan<byte> scales = w.Slice(4, 12), qh = w.Slice(16, 32), qs = w.Slice(48, 128), qa = a.Slice(4, QK_K);
            for (int s = 0; s < 8; s++)
            {
                var (sc, m) = Dequantize.ScaleMinK4(scales, s);
                int sumi = 0, suma = 0;
                for (int e = 32 * s; e < 32 * s + 32; e++)
                {
                    byte packed = qs[32 * (e / 64) + e % 32];
                    int low = s % 2 == 1 ? packed >> 4 : packed & 0xF;
                    int q = low | ((qh[e % 32] >> s) & 1) << 4;
                    sumi += q * (sbyte)qa[e];
                    suma += (sbyte)qa[e];
                }
                sum += d * da * sc * sumi - dmin * da * m * suma;
            }
        }
        return (float)sum;
    }

    /// <summary>Σ w·a over a Q6_K weight row and a Q8_K activation row: per 16-element sub-block s,
    /// d·da·scales[s]·Σ (q − 32)·qa.</summary>
    /// <exception cref="ArgumentException">A length is not a whole number of blocks or the byte counts disagree.</exception>
    public static float DotQ6_KQ8_K(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int elementCount)
    {
        int blockCount = BlockRows.Check(GgmlType.Q6_K, elementCount, weightRow.Length, nameof(elementCount), nameof(weightRow));
        BlockRows.Check(GgmlType.Q8_K, elementCount, activationRow.Length, nameof(elementCount), nameof(activationRow));
        double sum = 0;
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<byte> w = weightRow.Slice(b * 210, 210);
            ReadOnlySpan<byte> a = activationRow.Slice(b * 292, 292);
            ReadOnlySpan<byte> ql = w.Slice(0, 128), qh = w.Slice(128, 64), scales = w.Slice(192, 16), qa = a.Slice(4, QK_K);
            double d = ReadHalf(w, 208);
            double da = BinaryPrimitives.ReadSingleLittleEndian(a);
            for (int s = 0; s < 16; s++)
            {
                int sumi = 0;
                for (int e = 16 * s; e < 16 * s + 16; e++)
                {
                    int h = e / 128, t = e % 128 / 32, l = e % 32;
                    byte lowByte = ql[64 * h + 32 * (t % 2) + l];
                    int low = t >= 2 ? lowByte >> 4 : lowByte & 0xF;
                    int high = (qh[32 * h + l] >> (2 * t)) & 3;
                    sumi += ((low | high << 4) - 32) * (sbyte)qa[e];
                }
                sum += d * da * (sbyte)scales[s] * sumi;
            }
        }
        return (float)sum;
    }

    private static float ReadHalf(ReadOnlySpan<byte> block, int offset) =>
        HalfBits.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(offset, 2)));
}
