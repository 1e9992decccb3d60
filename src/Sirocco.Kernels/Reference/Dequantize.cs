// Scalar reference dequantizers: a row of ggml blocks (little-endian bytes) to floats, one plain loop per format,
// each preceded by its byte layout. The specification that SIMD kernels and Quant/Quantize are tested against; it
// reproduces ggml's dequantize_row_* bit for bit (tests/…/Reference/GgmlFixtureTests.cs, testdata/ggml-quant).

using System.Buffers.Binary;
using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels.Reference;

/// <summary>Reference dequantizers from ggml block formats to <see cref="float"/>.</summary>
/// <remarks>
/// Every method takes one row: <c>dst.Length</c> elements, a whole number of blocks, read from exactly
/// <see cref="GgmlTypeInfo.RowBytes"/> bytes of <c>src</c>. Arithmetic is float, in the order ggml's
/// <c>dequantize_row_*</c> uses (no fused multiply-add), so the results are identical, not merely close.
/// </remarks>
public static class Dequantize
{
    private const int QK = 32;    // elements per block of the legacy formats (Q4_0 … Q8_0)
    private const int QK_K = 256; // elements per super-block of the K-quants

    /// <summary>Dequantizes one row of <paramref name="type"/> blocks into <paramref name="dst"/>.</summary>
    /// <exception cref="ArgumentException"><c>dst.Length</c> is not a whole number of blocks, or <c>src.Length</c>
    /// is not exactly the bytes of those blocks.</exception>
    /// <exception cref="NotSupportedException"><paramref name="type"/> has no reference dequantizer.</exception>
    public static void Row(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case GgmlType.F32: F32(src, dst); break;
            case GgmlType.F16: F16(src, dst); break;
            case GgmlType.BF16: BF16(src, dst); break;
            case GgmlType.Q8_0: Q8_0(src, dst); break;
            case GgmlType.Q4_0: Q4_0(src, dst); break;
            case GgmlType.Q4_1: Q4_1(src, dst); break;
            case GgmlType.Q5_0: Q5_0(src, dst); break;
            case GgmlType.Q5_1: Q5_1(src, dst); break;
            case GgmlType.Q4_K: Q4_K(src, dst); break;
            case GgmlType.Q5_K: Q5_K(src, dst); break;
            case GgmlType.Q6_K: Q6_K(src, dst); break;
            case GgmlType.Q8_K: Q8_K(src, dst); break;
            default: throw new NotSupportedException($"There is no reference dequantizer for ggml type {type}.");
        }
    }

    /// <summary>Whether <see cref="Row"/> accepts <paramref name="type"/>.</summary>
    public static bool IsSupported(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16
        or GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1
        or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K or GgmlType.Q8_K;

    // F32: 4 bytes per element, an IEEE single, little-endian.
    /// <summary>F32 row: copies little-endian singles.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void F32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        BlockRows.Check(GgmlType.F32, dst.Length, src.Length, nameof(dst), nameof(src));
        for (int i = 0; i < dst.Length; i++)
        {
            dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src.Slice(4 * i, 4));
        }
    }

    // F16: 2 bytes per element, an IEEE half, little-endian.
    /// <summary>F16 row: widens little-endian halves (exactly).</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void F16(ReadOnlySpan<byte> src, Span<float> dst)
    {
        BlockRows.Check(GgmlType.F16, dst.Length, src.Length, nameof(dst), nameof(src));
        for (int i = 0; i < dst.Length; i++)
        {
            dst[i] = HalfBits.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src.Slice(2 * i, 2)));
        }
    }

    // BF16: 2 bytes per element, the top half of an IEEE single, little-endian.
    /// <summary>BF16 row: widens little-endian bfloat16 values (exactly).</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void BF16(ReadOnlySpan<byte> src, Span<float> dst)
    {
        BlockRows.Check(GgmlType.BF16, dst.Length, src.Length, nameof(dst), nameof(src));
        for (int i = 0; i < dst.Length; i++)
        {
            dst[i] = BFloat16Bits.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src.Slice(2 * i, 2)));
        }
    }

    // Q8_0, 34 bytes per 32 elements:
    //   [0, 2)   d   f16 scale
    //   [2, 34)  qs  32 × int8, element j in byte 2 + j
    //   x[j] = qs[j] * d
    /// <summary>Q8_0 row: 32 signed bytes and one f16 scale per block.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q8_0(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q8_0, dst.Length, src.Length, nameof(dst), nameof(src));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<byte> block = src.Slice(b * 34, 34);
            Span<float> y = dst.Slice(b * QK, QK);
            float d = ReadHalf(block, 0);
            for (int j = 0; j < QK; j++)
            {
                y[j] = (sbyte)block[2 + j] * d;
            }
        }
    }

    // Q4_0, 18 bytes per 32 elements:
    //   [0, 2)   d   f16 scale
    //   [2, 18)  qs  16 bytes; byte i holds element i in its low nibble and element i + 16 in its high nibble
    //   x[j] = (q[j] - 8) * d,  q in 0..15
    /// <summary>Q4_0 row: 4-bit codes centred on 8, one f16 scale per block.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q4_0(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q4_0, dst.Length, src.Length, nameof(dst), nameof(src));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<byte> block = src.Slice(b * 18, 18);
            Span<float> y = dst.Slice(b * QK, QK);
            float d = ReadHalf(block, 0);
            for (int j = 0; j < QK; j++)
            {
                int q = Nibble(block[2 + (j % 16)], high: j >= 16);
                y[j] = (q - 8) * d;
            }
        }
    }

    // Q4_1, 20 bytes per 32 elements:
    //   [0, 2)   d   f16 scale
    //   [2, 4)   m   f16 offset (the block minimum)
    //   [4, 20)  qs  nibbles as in Q4_0
    //   x[j] = q[j] * d + m,  q in 0..15
    /// <summary>Q4_1 row: unsigned 4-bit codes with an f16 scale and offset per block.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q4_1(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q4_1, dst.Length, src.Length, nameof(dst), nameof(src));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<byte> block = src.Slice(b * 20, 20);
            Span<float> y = dst.Slice(b * QK, QK);
            float d = ReadHalf(block, 0);
            float m = ReadHalf(block, 2);
            for (int j = 0; j < QK; j++)
            {
                int q = Nibble(block[4 + (j % 16)], high: j >= 16);
                y[j] = q * d + m;
            }
        }
    }

    // Q5_0, 22 bytes per 32 elements:
    //   [0, 2)   d   f16 scale
    //   [2, 6)   qh  uint32 little-endian; bit j is bit 4 (value 16) of element j
    //   [6, 22)  qs  low 4 bits, nibbles as in Q4_0
    //   x[j] = (q[j] - 16) * d,  q in 0..31
    /// <summary>Q5_0 row: 5-bit codes centred on 16, one f16 scale per block.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q5_0(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q5_0, dst.Length, src.Length, nameof(dst), nameof(src));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<byte> block = src.Slice(b * 22, 22);
            Span<float> y = dst.Slice(b * QK, QK);
            float d = ReadHalf(block, 0);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(block.Slice(2, 4));
            for (int j = 0; j < QK; j++)
            {
                int q = Nibble(block[6 + (j % 16)], high: j >= 16) | (int)((qh >> j) & 1) << 4;
                y[j] = (q - 16) * d;
            }
        }
    }

    // Q5_1, 24 bytes per 32 elements:
    //   [0, 2)   d   f16 scale
    //   [2, 4)   m   f16 offset (the block minimum)
    //   [4, 8)   qh  uint32 little-endian; bit j is bit 4 of element j
    //   [8, 24)  qs  low 4 bits, nibbles as in Q4_0
    //   x[j] = q[j] * d + m,  q in 0..31
    /// <summary>Q5_1 row: unsigned 5-bit codes with an f16 scale and offset per block.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q5_1(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q5_1, dst.Length, src.Length, nameof(dst), nameof(src));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<byte> block = src.Slice(b * 24, 24);
            Span<float> y = dst.Slice(b * QK, QK);
            float d = ReadHalf(block, 0);
            float m = ReadHalf(block, 2);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(block.Slice(4, 4));
            for (int j = 0; j < QK; j++)
            {
                int q = Nibble(block[8 + (j % 16)], high: j >= 16) | (int)((qh >> j) & 1) << 4;
                y[j] = q * d + m;
            }
        }
    }

    // Q4_K, 144 bytes per 256 elements, in 8 sub-blocks of 32 (sub-block s = elements 32s .. 32s + 31):
    //   [0, 2)     d       f16 super-scale of the sub-block scales
    //   [2, 4)     dmin    f16 super-scale of the sub-block mins
    //   [4, 16)    scales  8 six-bit scales sc[s] and 8 six-bit mins m[s], packed (see ScaleMinK4)
    //   [16, 144)  qs      4 groups of 32 bytes; group g holds sub-block 2g in its low nibbles and 2g + 1 in its high
    //                      nibbles, so element e is in byte 32 * (e / 64) + e % 32, high nibble when (e / 32) is odd
    //   x[e] = (d * sc[s]) * q[e] - (dmin * m[s]),  q in 0..15
    /// <summary>Q4_K row: 4-bit codes, 6-bit scale and min per 32 elements, f16 super-scales per 256.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q4_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q4_K, dst.Length, src.Length, nameof(dst), nameof(src));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<byte> block = src.Slice(b * 144, 144);
            Span<float> y = dst.Slice(b * QK_K, QK_K);
            float d = ReadHalf(block, 0);
            float dmin = ReadHalf(block, 2);
            ReadOnlySpan<byte> scales = block.Slice(4, 12);
            ReadOnlySpan<byte> qs = block.Slice(16, 128);
            for (int e = 0; e < QK_K; e++)
            {
                int s = e / 32;
                var (sc, m) = ScaleMinK4(scales, s);
                int q = Nibble(qs[32 * (e / 64) + e % 32], high: s % 2 == 1);
                y[e] = d * sc * q - dmin * m;
            }
        }
    }

    // Q5_K, 176 bytes per 256 elements, in 8 sub-blocks of 32:
    //   [0, 2)     d       f16 super-scale of the sub-block scales
    //   [2, 4)     dmin    f16 super-scale of the sub-block mins
    //   [4, 16)    scales  packed 6-bit scales and mins, as in Q4_K
    //   [16, 48)   qh      bit s of byte i is bit 4 (value 16) of element 32s + i
    //   [48, 176)  qs      low 4 bits, laid out as Q4_K's qs
    //   x[e] = (d * sc[s]) * q[e] - (dmin * m[s]),  q in 0..31
    /// <summary>Q5_K row: 5-bit codes, 6-bit scale and min per 32 elements, f16 super-scales per 256.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q5_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q5_K, dst.Length, src.Length, nameof(dst), nameof(src));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<byte> block = src.Slice(b * 176, 176);
            Span<float> y = dst.Slice(b * QK_K, QK_K);
            float d = ReadHalf(block, 0);
            float dmin = ReadHalf(block, 2);
            ReadOnlySpan<byte> scales = block.Slice(4, 12);
            ReadOnlySpan<byte> qh = block.Slice(16, 32);
            ReadOnlySpan<byte> qs = block.Slice(48, 128);
            for (int e = 0; e < QK_K; e++)
            {
                int s = e / 32;
                var (sc, m) = ScaleMinK4(scales, s);
                int low = Nibble(qs[32 * (e / 64) + e % 32], high: s % 2 == 1);
                int q = low | ((qh[e % 32] >> s) & 1) << 4;
                y[e] = d * sc * q - dmin * m;
            }
        }
    }

    // Q6_K, 210 bytes per 256 elements, in 16 sub-blocks of 16 (sub-block e / 16), stored as two halves of 128:
    //   [0, 128)    ql      low 4 bits; half h uses ql[64h, 64h + 64)
    //   [128, 192)  qh      high 2 bits; half h uses qh[32h, 32h + 32)
    //   [192, 208)  scales  16 × int8 sub-block scales
    //   [208, 210)  d       f16 super-scale
    //   Within half h, element r = 32t + l (quarter t in 0..3, l in 0..31) has its low bits in
    //   ql[64h + 32 * (t % 2) + l] (low nibble for t < 2, high nibble for t >= 2) and its high bits in
    //   bits 2t, 2t + 1 of qh[32h + l].
    //   x[e] = (d * scales[e / 16]) * (q[e] - 32),  q in 0..63
    /// <summary>Q6_K row: 6-bit codes centred on 32, int8 scale per 16 elements, f16 super-scale per 256.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q6_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q6_K, dst.Length, src.Length, nameof(dst), nameof(src));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<byte> block = src.Slice(b * 210, 210);
            Span<float> y = dst.Slice(b * QK_K, QK_K);
            ReadOnlySpan<byte> ql = block.Slice(0, 128);
            ReadOnlySpan<byte> qh = block.Slice(128, 64);
            ReadOnlySpan<byte> scales = block.Slice(192, 16);
            float d = ReadHalf(block, 208);
            for (int e = 0; e < QK_K; e++)
            {
                int h = e / 128, t = e % 128 / 32, l = e % 32;
                int low = Nibble(ql[64 * h + 32 * (t % 2) + l], high: t >= 2);
                int high = (qh[32 * h + l] >> (2 * t)) & 3;
                int q = (low | high << 4) - 32;
                y[e] = d * (sbyte)scales[e / 16] * q;
            }
        }
    }

    // Q8_K, 292 bytes per 256 elements (activations only; see Quantize.Q8_K):
    //   [0, 4)      d      f32 scale
    //   [4, 260)    qs     256 × int8
    //   [260, 292)  bsums  16 × int16, bsums[i] = sum of qs[16i .. 16i + 15] (redundant; the K-quant dots use it)
    //   x[j] = d * qs[j]
    /// <summary>Q8_K row: 256 signed bytes and one f32 scale per block (the per-16 sums are not read).</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q8_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q8_K, dst.Length, src.Length, nameof(dst), nameof(src));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<byte> block = src.Slice(b * 292, 292);
            Span<float> y = dst.Slice(b * QK_K, QK_K);
            float d = BinaryPrimitives.ReadSingleLittleEndian(block);
            for (int j = 0; j < QK_K; j++)
            {
                y[j] = d * (sbyte)block[4 + j];
            }
        }
    }

    /// <summary>The 6-bit scale and 6-bit min of sub-block <paramref name="s"/> (0..7) from the 12 packed bytes of a
    /// Q4_K or Q5_K block (ggml's <c>get_scale_min_k4</c>).</summary>
    /// <remarks>
    /// Bytes 0–3: low 6 bits = sc[0..3], top 2 bits = bits 4–5 of sc[4..7].
    /// Bytes 4–7: low 6 bits = m[0..3],  top 2 bits = bits 4–5 of m[4..7].
    /// Bytes 8–11: low nibble = bits 0–3 of sc[4..7], high nibble = bits 0–3 of m[4..7].
    /// </remarks>
    internal static (int Scale, int Min) ScaleMinK4(ReadOnlySpan<byte> scales, int s)
    {
        if (s < 4)
        {
            return (scales[s] & 63, scales[s + 4] & 63);
        }
        int scale = (scales[s + 4] & 0xF) | (scales[s - 4] >> 6) << 4;
        int min = (scales[s + 4] >> 4) | (scales[s] >> 6) << 4;
        return (scale, min);
    }

    private static int Nibble(byte b, bool high) => high ? b >> 4 : b & 0xF;

    private static float ReadHalf(ReadOnlySpan<byte> block, int offset) =>
        HalfBits.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(offset, 2)));
}
