// Vectorized activation quantizers for the matrix products (Simd/MatMul): Q8_K rows, and Q8_0 codes in the planar
// layout MatMul uses against Q8_0/Q4_0 weights. They run once per activation row per matmul; their codes and scales
// are bit-identical to the reference quantizers (Quantize.Q8_K, Quantize.Q8_0), which tests/…/Quant check.

using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Sirocco.Kernels.Quant;

/// <summary>Fast activation quantizers, each equal bit for bit to its reference in <see cref="Quantize"/>.</summary>
/// <remarks>Portable <see cref="Vector128"/> code (the work is small next to the matrix product it feeds); without
/// hardware acceleration the same arithmetic runs one element at a time.</remarks>
internal static class ActivationQuantizer
{
    private const int Q8_KBlock = 256;
    private const int Q8_KBytes = 292;

    /// <summary>As <see cref="Quantize.Q8_K"/>: same bytes, bsums included.</summary>
    /// <exception cref="ArgumentException">Lengths disagree.</exception>
    public static void Q8_K(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q8_K, src.Length, dst.Length, nameof(src), nameof(dst));
        if (!Vector128.IsHardwareAccelerated)
        {
            Quantize.Q8_K(src, dst);
            return;
        }
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * Q8_KBlock, Q8_KBlock);
            Span<byte> block = dst.Slice(b * Q8_KBytes, Q8_KBytes);
            float max = SignedAbsMax(x);
            if (max == 0f)
            {
                block.Clear();
                continue;
            }
            // Same float operations as the reference: iscale·x rounded half to even (Vector128.Round, like
            // MathF.Round), clamped at 127 (the element of largest magnitude maps to −127, the rest lie within).
            float iscale = -127f / max;
            Vector128<float> scale = Vector128.Create(iscale);
            Span<sbyte> codes = MemoryMarshal.Cast<byte, sbyte>(block.Slice(4, Q8_KBlock));
            for (int g = 0; g < Q8_KBlock / 16; g++)
            {
                Vector128<sbyte> q = Codes16(x.Slice(16 * g), scale, out int sum);
                q.CopyTo(codes.Slice(16 * g));
                BinaryPrimitives.WriteInt16LittleEndian(block.Slice(260 + 2 * g, 2), (short)sum);
            }
            BinaryPrimitives.WriteSingleLittleEndian(block, 1f / iscale);
        }
    }

    /// <summary>Q8_0's rule (<see cref="Quantize.Q8_0"/>: d = absmax / 127, codes round(x / d) with halves away from
    /// zero, d stored as f16) written as planes for MatMul: <c>codes</c> (32 per block), <c>scales</c> (the stored f16
    /// scale d16 as a float) and <c>scaledSums</c> (d16 · Σ codes of the block, exact: 11 + 12 significant bits).</summary>
    public static void Q8_0Planar(ReadOnlySpan<float> src, Span<sbyte> codes, Span<float> scales, Span<float> scaledSums)
    {
        int blockCount = src.Length / 32;
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<float> x = src.Slice(32 * b, 32);
            Span<sbyte> q = codes.Slice(32 * b, 32);
            float amax = 0f;
            if (Vector128.IsHardwareAccelerated)
            {
                Vector128<float> m = Vector128.Abs(Vector128.Create(x));
                for (int i = 4; i < 32; i += 4)
                {
                    m = Vector128.Max(m, Vector128.Abs(Vector128.Create(x.Slice(i))));
                }
                amax = MathF.Max(MathF.Max(m[0], m[1]), MathF.Max(m[2], m[3]));
            }
            else
            {
                foreach (float v in x)
                {
                    amax = MathF.Max(amax, MathF.Abs(v));
                }
            }
            // As the reference: codes use the reciprocal of the unrounded d, the block keeps d rounded to f16.
            float d = amax / 127f;
            float id = d != 0f ? 1f / d : 0f;
            float d16 = HalfBits.ToSingle(HalfBits.FromSingle(d));
            int sum = 0;
            if (Vector128.IsHardwareAccelerated)
            {
                Vector128<float> scale = Vector128.Create(id);
                for (int i = 0; i < 32; i += 16)
                {
                    RoundAway16(x.Slice(i), scale, out int partial).CopyTo(q.Slice(i));
                    sum += partial;
                }
            }
            else
            {
                for (int j = 0; j < 32; j++)
                {
                    q[j] = (sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
                    sum += q[j];
                }
            }
            scales[b] = d16;
            scaledSums[b] = d16 * sum;
        }
    }

    /// <summary>The element of largest magnitude with its sign, the first one on ties (as the reference).</summary>
    private static float SignedAbsMax(ReadOnlySpan<float> x)
    {
        Vector128<float> m = Vector128<float>.Zero;
        for (int i = 0; i < x.Length; i += 4)
        {
            m = Vector128.Max(m, Vector128.Abs(Vector128.Create(x.Slice(i))));
        }
        float amax = MathF.Max(MathF.Max(m[0], m[1]), MathF.Max(m[2], m[3]));
        if (amax == 0f)
        {
            return 0f;
        }
        // First element whose magnitude equals the maximum (only NaN could make this miss: then as for an all-zero block).
        Vector128<float> target = Vector128.Create(amax);
        for (int i = 0; i < x.Length; i += 4)
        {
            uint hits = Vector128.Equals(Vector128.Abs(Vector128.Create(x.Slice(i))), target).ExtractMostSignificantBits();
            if (hits != 0)
            {
                return x[i + System.Numerics.BitOperations.TrailingZeroCount(hits)];
            }
        }
        return 0f;
    }

    /// <summary>16 Q8_K codes: min(127, round-half-even(scale·x)); <paramref name="sum"/> is their sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<sbyte> Codes16(ReadOnlySpan<float> x, Vector128<float> scale, out int sum)
    {
        Vector128<int> max = Vector128.Create(127);
        Vector128<int> q0 = Vector128.Min(max, Vector128.ConvertToInt32(Vector128.Round(Vector128.Create(x) * scale)));
        Vector128<int> q1 = Vector128.Min(max, Vector128.ConvertToInt32(Vector128.Round(Vector128.Create(x.Slice(4)) * scale)));
        Vector128<int> q2 = Vector128.Min(max, Vector128.ConvertToInt32(Vector128.Round(Vector128.Create(x.Slice(8)) * scale)));
        Vector128<int> q3 = Vector128.Min(max, Vector128.ConvertToInt32(Vector128.Round(Vector128.Create(x.Slice(12)) * scale)));
        sum = Vector128.Sum(q0 + q1 + q2 + q3);
        // Every code lies in −127 … 127, so narrowing (which wraps) keeps it.
        return Vector128.Narrow(Vector128.Narrow(q0, q1), Vector128.Narrow(q2, q3));
    }

    /// <summary>16 Q8_0 codes: scale·x rounded to nearest, halves away from zero; <paramref name="sum"/> is their sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<sbyte> RoundAway16(ReadOnlySpan<float> x, Vector128<float> scale, out int sum)
    {
        Vector128<int> q0 = RoundAway(Vector128.Create(x) * scale), q1 = RoundAway(Vector128.Create(x.Slice(4)) * scale);
        Vector128<int> q2 = RoundAway(Vector128.Create(x.Slice(8)) * scale), q3 = RoundAway(Vector128.Create(x.Slice(12)) * scale);
        sum = Vector128.Sum(q0 + q1 + q2 + q3);
        // |scale·x| ≤ 127·(1 + 2⁻²³) rounds to at most 127, so narrowing keeps every code.
        return Vector128.Narrow(Vector128.Narrow(q0, q1), Vector128.Narrow(q2, q3));
    }

    /// <summary>Round half away from zero, exactly: v − trunc(v) is exact for |v| &lt; 2²³, so comparing its magnitude
    /// with 0.5 decides the rounding without the double rounding of trunc(v ± 0.5).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> RoundAway(Vector128<float> v)
    {
        Vector128<float> whole = Vector128.Truncate(v);
        Vector128<float> up = Vector128.GreaterThanOrEqual(Vector128.Abs(v - whole), Vector128.Create(0.5f));
        // Add ±1 (the sign of v) where the fraction is at least one half.
        Vector128<float> step = Vector128.CopySign(Vector128.Create(1f), v) & up;
        return Vector128.ConvertToInt32(whole + step);
    }
}
