// Scalar references for the float kernels of the forward pass (Simd/Ops.cs, Simd/Rope.cs): plain loops that read like
// the formulas, accumulating in double where a sum is involved. They are the specification the fast kernels are tested
// against (tests/Sirocco.Kernels.Tests/Simd/OpsTests.cs, RopeTests.cs), and the fallback where no SIMD is available.

using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Simd;

namespace Sirocco.Kernels.Reference;

/// <summary>Reference float kernels: same names, arguments, exceptions and aliasing rules as
/// <see cref="Simd.Ops"/> and <see cref="Simd.Rope"/>.</summary>
/// <remarks>Sums are accumulated in double and rounded to float once, so these results are at least as accurate as
/// the fast kernels'. Element-wise operations without a sum (<see cref="Add"/>, <see cref="Scale"/>, the f16
/// conversions) round exactly as the fast kernels do, so those agree bit for bit.</remarks>
public static class Ops
{
    /// <summary>Σ x[i]·y[i].</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        OpsChecks.SameLength(x.Length, y.Length, nameof(y));
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            sum += (double)x[i] * y[i];
        }
        return (float)sum;
    }

    /// <summary>Σ x[i]·half(y[i]), where <paramref name="yHalfBits"/> holds IEEE binary16 bit patterns.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static float DotHalf(ReadOnlySpan<float> x, ReadOnlySpan<ushort> yHalfBits)
    {
        OpsChecks.SameLength(x.Length, yHalfBits.Length, nameof(yHalfBits));
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            sum += (double)x[i] * HalfBits.ToSingle(yHalfBits[i]);
        }
        return (float)sum;
    }

    /// <summary>y[i] += a·x[i], the product and sum taken in double and rounded once.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void MultiplyAdd(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        OpsChecks.SameLength(x.Length, y.Length, nameof(y));
        for (int i = 0; i < x.Length; i++)
        {
            y[i] = (float)(y[i] + (double)a * x[i]);
        }
    }

    /// <summary>y[i] += a·half(x[i]), where <paramref name="xHalfBits"/> holds IEEE binary16 bit patterns.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void MultiplyAddHalf(float a, ReadOnlySpan<ushort> xHalfBits, Span<float> y)
    {
        OpsChecks.SameLength(xHalfBits.Length, y.Length, nameof(y));
        for (int i = 0; i < y.Length; i++)
        {
            y[i] = (float)(y[i] + (double)a * HalfBits.ToSingle(xHalfBits[i]));
        }
    }

    /// <summary>y = x / √(mean(x²) + eps) · weight (RMSNorm, Zhang &amp; Sennrich 2019, eq. 4). <paramref name="y"/> may
    /// be the same memory as <paramref name="x"/>. An empty row is left empty.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        OpsChecks.SameLength(x.Length, weight.Length, nameof(weight));
        OpsChecks.SameLength(x.Length, y.Length, nameof(y));
        if (x.Length == 0)
        {
            return;
        }
        double sumOfSquares = 0;
        for (int i = 0; i < x.Length; i++)
        {
            sumOfSquares += (double)x[i] * x[i];
        }
        double scale = 1 / Math.Sqrt(sumOfSquares / x.Length + eps);
        for (int i = 0; i < x.Length; i++)
        {
            y[i] = (float)(x[i] * scale * weight[i]);
        }
    }

    /// <summary>x[i] = exp(x[i] − max) / Σ_j exp(x[j] − max), in place. Entries of −∞ become 0; a row whose entries
    /// are all −∞ (or that holds a NaN) becomes all NaN. An empty row is left empty.</summary>
    public static void Softmax(Span<float> x)
    {
        if (x.Length == 0)
        {
            return;
        }
        float max = float.NegativeInfinity;
        foreach (float v in x)
        {
            max = Math.Max(max, v); // NaN if either is NaN
        }
        var e = new double[x.Length];
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            e[i] = Math.Exp((double)x[i] - max);
            sum += e[i];
        }
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)(e[i] / sum);
        }
    }

    /// <summary>y[i] = silu(gate[i])·up[i] = gate[i]·σ(gate[i])·up[i] (the SwiGLU feed-forward's gate, Shazeer 2020).
    /// <paramref name="y"/> may be the same memory as <paramref name="gate"/> or <paramref name="up"/>.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void SiluMul(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y)
    {
        OpsChecks.SameLength(gate.Length, up.Length, nameof(up));
        OpsChecks.SameLength(gate.Length, y.Length, nameof(y));
        for (int i = 0; i < y.Length; i++)
        {
            double g = gate[i];
            y[i] = (float)(g / (1 + Math.Exp(-g)) * up[i]);
        }
    }

    /// <summary>y[i] += x[i] (one float rounding each).</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void Add(Span<float> y, ReadOnlySpan<float> x)
    {
        OpsChecks.SameLength(y.Length, x.Length, nameof(x));
        for (int i = 0; i < y.Length; i++)
        {
            y[i] += x[i];
        }
    }

    /// <summary>x[i] *= factor (one float rounding each).</summary>
    public static void Scale(Span<float> x, float factor)
    {
        for (int i = 0; i < x.Length; i++)
        {
            x[i] *= factor;
        }
    }

    /// <summary>The binary16 bits of (Half)x[i]: round to nearest, ties to even; overflow to ±∞; NaN stays NaN.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void ToHalf(ReadOnlySpan<float> x, Span<ushort> yHalfBits)
    {
        OpsChecks.SameLength(x.Length, yHalfBits.Length, nameof(yHalfBits));
        for (int i = 0; i < x.Length; i++)
        {
            yHalfBits[i] = BitConverter.HalfToUInt16Bits((Half)x[i]);
        }
    }

    /// <summary>The exact float value of each binary16 bit pattern (a NaN comes back quiet, as (float)Half does).</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void FromHalf(ReadOnlySpan<ushort> xHalfBits, Span<float> y)
    {
        OpsChecks.SameLength(xHalfBits.Length, y.Length, nameof(y));
        for (int i = 0; i < y.Length; i++)
        {
            y[i] = (float)BitConverter.UInt16BitsToHalf(xHalfBits[i]);
        }
    }

    /// <summary>cos and sin of position·θ_i, θ_i = theta^(−2i/ropeDim) for i in [0, ropeDim/2) (RoFormer, Su et al.
    /// 2021, eq. 15), computed in double and rounded to float.</summary>
    /// <exception cref="ArgumentException">ropeDim is not positive and even, or cos/sin do not hold ropeDim/2.</exception>
    public static void RopeAngles(int position, float theta, int ropeDim, Span<float> cos, Span<float> sin)
    {
        OpsChecks.RopeAngles(ropeDim, cos.Length, sin.Length);
        for (int i = 0; i < ropeDim / 2; i++)
        {
            double frequency = Math.Pow(theta, -2.0 * i / ropeDim);
            double angle = position * frequency;
            cos[i] = (float)Math.Cos(angle);
            sin[i] = (float)Math.Sin(angle);
        }
    }

    /// <summary>Rotates pair i of the first <paramref name="ropeDim"/> elements of each head by the angle whose cosine
    /// and sine are cos[i], sin[i]: (a, b) → (a·cos − b·sin, a·sin + b·cos). Pair i is elements (2i, 2i + 1) for
    /// <see cref="RopeStyle.Interleaved"/> and (i, i + ropeDim/2) for <see cref="RopeStyle.HalfRotated"/>; elements
    /// from ropeDim to headDim are left alone.</summary>
    /// <param name="x">headCount heads of headDim elements, head h at [h·headDim, (h + 1)·headDim).</param>
    /// <exception cref="ArgumentException">x is not headCount·headDim long, ropeDim is not even and in (0, headDim],
    /// or cos/sin do not hold ropeDim/2.</exception>
    public static void Rope(Span<float> x, int headCount, int headDim, int ropeDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, RopeStyle style)
    {
        OpsChecks.RopeApply(x.Length, headCount, headDim, ropeDim, cos.Length, sin.Length);
        int half = ropeDim / 2;
        for (int h = 0; h < headCount; h++)
        {
            Span<float> head = x.Slice(h * headDim, headDim);
            for (int i = 0; i < half; i++)
            {
                (int first, int second) = style == RopeStyle.Interleaved ? (2 * i, 2 * i + 1) : (i, i + half);
                double a = head[first], b = head[second];
                head[first] = (float)(a * cos[i] - b * sin[i]);
                head[second] = (float)(a * sin[i] + b * cos[i]);
            }
        }
    }
}

/// <summary>Argument checks shared by the reference and fast float kernels, so both throw the same exceptions.</summary>
internal static class OpsChecks
{
    /// <summary>Throws unless <paramref name="length"/> equals <paramref name="expected"/>; the message names both.</summary>
    public static void SameLength(int expected, int length, string parameter)
    {
        if (length != expected)
        {
            ThrowLength(expected, length, parameter);
        }
    }

    public static void RopeAngles(int ropeDim, int cosLength, int sinLength)
    {
        if (ropeDim <= 0 || ropeDim % 2 != 0)
        {
            throw new ArgumentException($"ropeDim must be positive and even; got {ropeDim}.", nameof(ropeDim));
        }
        SameLength(ropeDim / 2, cosLength, "cos");
        SameLength(ropeDim / 2, sinLength, "sin");
    }

    public static void RopeApply(int xLength, int headCount, int headDim, int ropeDim, int cosLength, int sinLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(headCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(headDim);
        if (ropeDim > headDim)
        {
            throw new ArgumentException($"ropeDim {ropeDim} exceeds headDim {headDim}.", nameof(ropeDim));
        }
        RopeAngles(ropeDim, cosLength, sinLength);
        if ((long)headCount * headDim != xLength)
        {
            throw Invalid($"x must hold headCount·headDim = {headCount}·{headDim} = {(long)headCount * headDim} elements; got {xLength}.", "x");
        }
    }

    private static void ThrowLength(int expected, int length, string parameter) =>
        throw Invalid($"{parameter} has {length} elements; expected {expected} to match the first argument.", parameter);

    /// <summary>An exception for <paramref name="parameter"/> of the public method that called the check.</summary>
    private static ArgumentException Invalid(string message, string parameter) => new(message, parameter);
}
