// Rotary position embedding (RoFormer, Su et al. 2021): the angle table for one position and its application to the
// query and key heads of one token. Called by the engine's attention once per token and layer (the table once per
// position). Specification: Reference/Ops.cs (RopeAngles, Rope); tests: Simd/RopeTests.cs.

using System.Runtime.Intrinsics;
using Sirocco.Kernels.Reference;

namespace Sirocco.Kernels.Simd;

/// <summary>Which elements of a head RoPE rotates together.</summary>
public enum RopeStyle
{
    /// <summary>Pairs (2i, 2i + 1): the GGUF / llama.cpp layout (whose converter permutes Hugging Face's Q and K rows
    /// into it).</summary>
    Interleaved,

    /// <summary>Pairs (i, i + ropeDim/2): the Hugging Face / GPT-NeoX layout ("rotate_half").</summary>
    HalfRotated,
}

/// <summary>Rotary position embedding kernels.</summary>
public static unsafe class Rope
{
    /// <summary>Largest ropeDim whose interleaved cos/sin expansion goes on the stack (2 × 2 KiB).</summary>
    private const int StackRopeDim = 512;

    /// <summary>cos[i], sin[i] of position·θ_i with θ_i = theta^(−2i/ropeDim), i in [0, ropeDim/2), computed in double
    /// and rounded to float (so large positions keep their accuracy).</summary>
    /// <exception cref="ArgumentException">ropeDim is not positive and even, or cos/sin do not hold ropeDim/2.</exception>
    public static void Angles(int position, float theta, int ropeDim, Span<float> cos, Span<float> sin) =>
        // Not hot (ropeDim/2 sines and cosines per position, shared by every layer and head), so the reference is it.
        Reference.Ops.RopeAngles(position, theta, ropeDim, cos, sin);

    /// <summary>Rotates pair i of the first <paramref name="ropeDim"/> elements of each head by the angle of cos[i],
    /// sin[i]: (a, b) → (a·cos − b·sin, a·sin + b·cos), pairs chosen by <paramref name="style"/>. Elements ropeDim …
    /// headDim − 1 of each head are left alone.</summary>
    /// <param name="x">headCount heads of headDim elements, head h at [h·headDim, (h + 1)·headDim).</param>
    /// <exception cref="ArgumentException">x is not headCount·headDim long, ropeDim is not even and in (0, headDim],
    /// or cos/sin do not hold ropeDim/2.</exception>
    public static void Apply(Span<float> x, int headCount, int headDim, int ropeDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, RopeStyle style)
    {
        OpsChecks.RopeApply(x.Length, headCount, headDim, ropeDim, cos.Length, sin.Length);
        if (!Vector128.IsHardwareAccelerated)
        {
            Reference.Ops.Rope(x, headCount, headDim, ropeDim, cos, sin, style);
            return;
        }
        fixed (float* px = x, pc = cos, ps = sin)
        {
            if (style == RopeStyle.HalfRotated)
            {
                for (int h = 0; h < headCount; h++)
                {
                    HalfRotated(px + h * headDim, ropeDim / 2, pc, ps);
                }
                return;
            }
            // Interleaved: expand the table once for all heads to one entry per element, cos as (c0, c0, c1, c1, …)
            // and sin with the sign of its term as (−s0, +s0, −s1, +s1, …), so each vector of pairs is one
            // multiply and one multiply-add with no shuffling of the table inside the head loop.
            Span<float> expanded = ropeDim <= StackRopeDim ? stackalloc float[2 * ropeDim] : new float[2 * ropeDim];
            for (int i = 0; i < ropeDim / 2; i++)
            {
                expanded[2 * i] = expanded[2 * i + 1] = cos[i];
                expanded[ropeDim + 2 * i] = -sin[i];
                expanded[ropeDim + 2 * i + 1] = sin[i];
            }
            fixed (float* table = expanded)
            {
                for (int h = 0; h < headCount; h++)
                {
                    Interleaved(px + h * headDim, ropeDim, table, table + ropeDim);
                }
            }
        }
    }

    /// <summary>One head, pairs (i, i + half): with a = x[i … i + 7] and b = x[half + i …], lane-wise
    /// a' = a·c − b·s and b' = a·s + b·c. Scalar tail for half mod 8 (mod 4) pairs.</summary>
    private static void HalfRotated(float* head, int half, float* cos, float* sin)
    {
        float* second = head + half;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 8 <= half; i += 8)
            {
                Vector256<float> a = Vector256.Load(head + i), b = Vector256.Load(second + i);
                Vector256<float> c = Vector256.Load(cos + i), s = Vector256.Load(sin + i);
                (a * c - b * s).Store(head + i);
                (a * s + b * c).Store(second + i);
            }
        }
        for (; i + 4 <= half; i += 4)
        {
            Vector128<float> a = Vector128.Load(head + i), b = Vector128.Load(second + i);
            Vector128<float> c = Vector128.Load(cos + i), s = Vector128.Load(sin + i);
            (a * c - b * s).Store(head + i);
            (a * s + b * c).Store(second + i);
        }
        for (; i < half; i++)
        {
            float a = head[i], b = second[i];
            head[i] = a * cos[i] - b * sin[i];
            second[i] = a * sin[i] + b * cos[i];
        }
    }

    /// <summary>One head, pairs (2i, 2i + 1): lane-wise x' = x·cosPairs + swap(x)·signedSinPairs, where swap exchanges
    /// the two lanes of each pair, so lane 2i gets a·c − b·s and lane 2i + 1 gets b·c + a·s. Scalar tail for the last
    /// ropeDim mod 8 (mod 4) elements, always whole pairs since ropeDim is even.</summary>
    private static void Interleaved(float* head, int ropeDim, float* cosPairs, float* signedSinPairs)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 8 <= ropeDim; i += 8)
            {
                Vector256<float> v = Vector256.Load(head + i);
                Vector256<float> swapped = Vector256.Shuffle(v, Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6));
                (v * Vector256.Load(cosPairs + i) + swapped * Vector256.Load(signedSinPairs + i)).Store(head + i);
            }
        }
        for (; i + 4 <= ropeDim; i += 4)
        {
            Vector128<float> v = Vector128.Load(head + i);
            Vector128<float> swapped = Vector128.Shuffle(v, Vector128.Create(1, 0, 3, 2));
            (v * Vector128.Load(cosPairs + i) + swapped * Vector128.Load(signedSinPairs + i)).Store(head + i);
        }
        for (; i < ropeDim; i += 2)
        {
            float a = head[i], b = head[i + 1];
            head[i] = a * cosPairs[i] + b * signedSinPairs[i];
            head[i + 1] = b * cosPairs[i + 1] + a * signedSinPairs[i + 1];
        }
    }
}
