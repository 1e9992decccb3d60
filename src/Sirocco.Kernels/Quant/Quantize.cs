// Quantizers from float rows to ggml block bytes: the float formats and the 32-element legacy blocks here, the
// K-quants in Quantize.KQuants.cs. Used to write GGUF files (`sirocco quantize`, synthetic test models); the layouts
// are documented once, next to the matching loop in Reference/Dequantize.cs.

using System.Buffers.Binary;

namespace Sirocco.Kernels.Quant;

/// <summary>Deterministic quantizers from <see cref="float"/> rows to ggml block formats.</summary>
/// <remarks>
/// Every method takes one row: <c>src.Length</c> elements, a whole number of blocks, written to exactly
/// <see cref="GgmlTypeInfo.RowBytes"/> bytes of <c>dst</c>; every byte of <c>dst</c> is written. Inputs must be finite:
/// what a NaN or infinity turns into is unspecified (as in ggml). Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 produce the same
/// bytes as ggml's <c>quantize_row_*_ref</c>; the K-quants use their own scale search (see Quantize.KQuants.cs).
/// No method allocates.
/// </remarks>
public static partial class Quantize
{
    private const int QK = 32; // elements per block of the legacy formats (Q4_0 … Q8_0)

    /// <summary>Quantizes one row of <paramref name="src"/> into <paramref name="type"/> blocks.</summary>
    /// <exception cref="ArgumentException"><c>src.Length</c> is not a whole number of blocks, or <c>dst.Length</c>
    /// is not exactly the bytes of those blocks.</exception>
    /// <exception cref="NotSupportedException"><paramref name="type"/> has no quantizer.</exception>
    public static void Row(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
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
            default: throw new NotSupportedException($"There is no quantizer for ggml type {type}.");
        }
    }

    /// <summary>Whether <see cref="Row"/> accepts <paramref name="type"/>.</summary>
    public static bool IsSupported(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16
        or GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1
        or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K or GgmlType.Q8_K;

    /// <summary>F32 row: little-endian singles, unchanged.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void F32(ReadOnlySpan<float> src, Span<byte> dst)
    {
        BlockRows.Check(GgmlType.F32, src.Length, dst.Length, nameof(src), nameof(dst));
        for (int i = 0; i < src.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(dst.Slice(4 * i, 4), src[i]);
        }
    }

    /// <summary>F16 row: each value rounded to the nearest half (ties to even), little-endian.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void F16(ReadOnlySpan<float> src, Span<byte> dst)
    {
        BlockRows.Check(GgmlType.F16, src.Length, dst.Length, nameof(src), nameof(dst));
        for (int i = 0; i < src.Length; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(dst.Slice(2 * i, 2), HalfBits.FromSingle(src[i]));
        }
    }

    /// <summary>BF16 row: each value rounded to the nearest bfloat16 (ties to even, NaN kept), little-endian.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void BF16(ReadOnlySpan<float> src, Span<byte> dst)
    {
        BlockRows.Check(GgmlType.BF16, src.Length, dst.Length, nameof(src), nameof(dst));
        for (int i = 0; i < src.Length; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(dst.Slice(2 * i, 2), BFloat16Bits.FromSingle(src[i]));
        }
    }

    /// <summary>Q8_0 row, as ggml's <c>quantize_row_q8_0_ref</c>: d = absmax / 127 and
    /// q = round(x / d) with halves away from zero, so every |q| ≤ 127.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q8_0(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q8_0, src.Length, dst.Length, nameof(src), nameof(dst));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * QK, QK);
            Span<byte> block = dst.Slice(b * 34, 34);
            float amax = 0f;
            for (int j = 0; j < QK; j++)
            {
                amax = MathF.Max(amax, MathF.Abs(x[j]));
            }
            // ggml scales by the reciprocal of the unrounded float d, not of the f16 value it stores; so do we.
            float d = amax / 127f;
            float id = d != 0f ? 1f / d : 0f;
            WriteHalf(block, 0, d);
            for (int j = 0; j < QK; j++)
            {
                block[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
            }
        }
    }

    /// <summary>Q4_0 row, as ggml's <c>quantize_row_q4_0_ref</c>: with <c>max</c> the value of largest magnitude
    /// (sign kept, first one on ties), d = max / −8, so <c>max</c> maps to code 0 exactly and the other side gets
    /// codes up to 15; q = min(15, trunc(x / d + 8.5)).</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q4_0(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q4_0, src.Length, dst.Length, nameof(src), nameof(dst));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * QK, QK);
            Span<byte> block = dst.Slice(b * 18, 18);
            float max = SignedAbsMax(x);
            float d = max / -8f;
            float id = d != 0f ? 1f / d : 0f;
            WriteHalf(block, 0, d);
            for (int j = 0; j < QK / 2; j++)
            {
                // x * id + 8.5 lies in [0.5, 16.5]; truncation is rounding to nearest of x * id + 8.
                int q0 = Math.Min(15, (int)(x[j] * id + 8.5f));
                int q1 = Math.Min(15, (int)(x[j + QK / 2] * id + 8.5f));
                block[2 + j] = (byte)(q0 | q1 << 4);
            }
        }
    }

    /// <summary>Q4_1 row, as ggml's <c>quantize_row_q4_1_ref</c>: m = block minimum, d = (max − min) / 15,
    /// q = min(15, trunc((x − m) / d + 0.5)).</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q4_1(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q4_1, src.Length, dst.Length, nameof(src), nameof(dst));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * QK, QK);
            Span<byte> block = dst.Slice(b * 20, 20);
            var (min, max) = MinMax(x);
            float d = (max - min) / 15f;
            float id = d != 0f ? 1f / d : 0f;
            WriteHalf(block, 0, d);
            WriteHalf(block, 2, min);
            for (int j = 0; j < QK / 2; j++)
            {
                int q0 = Math.Min(15, (int)((x[j] - min) * id + 0.5f));
                int q1 = Math.Min(15, (int)((x[j + QK / 2] - min) * id + 0.5f));
                block[4 + j] = (byte)(q0 | q1 << 4);
            }
        }
    }

    /// <summary>Q5_0 row, as ggml's <c>quantize_row_q5_0_ref</c>: d = max / −16 (max as in <see cref="Q4_0"/>),
    /// q = min(31, trunc(x / d + 16.5)).</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q5_0(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q5_0, src.Length, dst.Length, nameof(src), nameof(dst));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * QK, QK);
            Span<byte> block = dst.Slice(b * 22, 22);
            float max = SignedAbsMax(x);
            float d = max / -16f;
            float id = d != 0f ? 1f / d : 0f;
            WriteHalf(block, 0, d);
            uint qh = 0;
            for (int j = 0; j < QK / 2; j++)
            {
                int q0 = Math.Min(31, (int)(x[j] * id + 16.5f));
                int q1 = Math.Min(31, (int)(x[j + QK / 2] * id + 16.5f));
                block[6 + j] = (byte)((q0 & 0xF) | (q1 & 0xF) << 4);
                qh |= (uint)(q0 >> 4) << j | (uint)(q1 >> 4) << (j + QK / 2);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(block.Slice(2, 4), qh);
        }
    }

    /// <summary>Q5_1 row, as ggml's <c>quantize_row_q5_1_ref</c>: m = block minimum, d = (max − min) / 31,
    /// q = trunc((x − m) / d + 0.5), which cannot exceed 31.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q5_1(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q5_1, src.Length, dst.Length, nameof(src), nameof(dst));
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * QK, QK);
            Span<byte> block = dst.Slice(b * 24, 24);
            var (min, max) = MinMax(x);
            float d = (max - min) / 31f;
            float id = d != 0f ? 1f / d : 0f;
            WriteHalf(block, 0, d);
            WriteHalf(block, 2, min);
            uint qh = 0;
            for (int j = 0; j < QK / 2; j++)
            {
                // (x − min) * id ≤ 31 · (1 + 3ε) in float, so + 0.5 truncates to at most 31; the Min only documents it.
                int q0 = Math.Min(31, (int)((x[j] - min) * id + 0.5f));
                int q1 = Math.Min(31, (int)((x[j + QK / 2] - min) * id + 0.5f));
                block[8 + j] = (byte)((q0 & 0xF) | (q1 & 0xF) << 4);
                qh |= (uint)(q0 >> 4) << j | (uint)(q1 >> 4) << (j + QK / 2);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(block.Slice(4, 4), qh);
        }
    }

    /// <summary>The element of largest magnitude, with its sign; the first one wins a tie; 0 for an all-zero block.</summary>
    private static float SignedAbsMax(ReadOnlySpan<float> x)
    {
        float amax = 0f, max = 0f;
        foreach (float v in x)
        {
            if (MathF.Abs(v) > amax)
            {
                amax = MathF.Abs(v);
                max = v;
            }
        }
        return max;
    }

    /// <summary>Smallest and largest element. Plain comparisons, not MathF.Min/Max: on a tie between 0 and −0 the
    /// first one seen wins, as in ggml, which decides whether the stored f16 minimum is +0 or −0.</summary>
    private static (float Min, float Max) MinMax(ReadOnlySpan<float> x)
    {
        float min = float.MaxValue, max = float.MinValue;
        foreach (float v in x)
        {
            if (v < min)
            {
                min = v;
            }
            if (v > max)
            {
                max = v;
            }
        }
        return (min, max);
    }

    /// <summary>Writes <paramref name="value"/> rounded to f16 at <paramref name="offset"/>; returns the value stored.</summary>
    private static float WriteHalf(Span<byte> block, int offset, float value)
    {
        ushort bits = HalfBits.FromSingle(value);
        BinaryPrimitives.WriteUInt16LittleEndian(block.Slice(offset, 2), bits);
        return HalfBits.ToSingle(bits);
    }
}
