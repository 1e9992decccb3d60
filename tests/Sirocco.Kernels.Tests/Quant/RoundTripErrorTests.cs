// Quantize → dequantize on seeded random rows (normal and uniform, four scales, lengths from one block to a Mistral
// FFN row): every element within a per-type error bound and every row's relative RMS error within a measured bound.
// The same bounds, with the reasoning, are in docs/QUANTIZATION.md.

using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Reference;

namespace Sirocco.Kernels.Tests.Quant;

public class RoundTripErrorTests
{
    // ---- Per-element bounds of the formats with a closed-form rounding rule --------------------------------------
    // With d the float scale computed by the quantizer and d16 the f16 value stored, an element decodes to q · d16
    // (+ m16), so its error is the rounding of x / d to q (at most d / 2, or d where a code range end clips it) plus
    // |q| · |d − d16| (plus |min − m16|). Rounding to f16 moves a value v by at most HalfError(v).

    /// <summary>Relative slack on every closed-form bound, for float rounding in x · (1 / d) and q · d16 (each
    /// ≤ 2⁻²⁴ relative; 1e−4 is ample and still far below the bounds' resolution).</summary>
    private const double FloatSlackRelative = 1e-4;

    // ---- Relative RMS bounds: measured worst over this file's cases (normal and uniform data; scales 1e−3, 0.02, 1,
    // 100; every length) plus margin. Short rows are noisier than long ones, so the worst case is a 32- or 256-element
    // row; the RMS on 4M N(0,1) values is given for comparison (docs/QUANTIZATION.md).

    /// <summary>Q8_0: measured worst 0.0061 (N(0,1), 4M values: 0.00535).</summary>
    private const double Q8_0RelativeRmsBound = 0.0075;

    /// <summary>Q4_0: measured worst 0.095 (N(0,1): 0.0859).</summary>
    private const double Q4_0RelativeRmsBound = 0.11;

    /// <summary>Q4_1: measured worst 0.099 (N(0,1): 0.0781).</summary>
    private const double Q4_1RelativeRmsBound = 0.115;

    /// <summary>Q5_0: measured worst 0.051 (N(0,1): 0.0427).</summary>
    private const double Q5_0RelativeRmsBound = 0.06;

    /// <summary>Q5_1: measured worst 0.043 (N(0,1): 0.0378).</summary>
    private const double Q5_1RelativeRmsBound = 0.053;

    /// <summary>Q4_K: measured worst 0.073 (N(0,1): 0.0713).</summary>
    private const double Q4_KRelativeRmsBound = 0.085;

    /// <summary>Q5_K: measured worst 0.037 (N(0,1): 0.0358).</summary>
    private const double Q5_KRelativeRmsBound = 0.043;

    /// <summary>Q6_K: measured worst 0.0182 (N(0,1): 0.0174).</summary>
    private const double Q6_KRelativeRmsBound = 0.022;

    /// <summary>F16: every element is within 2⁻¹¹ relative (round to nearest with 11 significant bits), so the row is.</summary>
    private const double F16RelativeRmsBound = 1.0 / 2048;

    /// <summary>BF16: every element is within 2⁻⁸ relative (8 significant bits), so the row is.</summary>
    private const double BF16RelativeRmsBound = 1.0 / 256;

    // ---- K-quant per-element bounds, as a fraction of the super-block's largest magnitude. Half a step is about
    // absmax / nmax (1/15, 1/31, 1/32); the search may clip the extremes of a sub-block by up to about one step to
    // shrink the scale, and the 6-bit (8-bit for Q6_K) sub-block scales add their own rounding. Measured worst:
    // 0.112 (Q4_K), 0.056 (Q5_K), 0.052 (Q6_K) here, and 0.106, 0.083, 0.052 on other seeds; ggml's reference
    // has the same maxima on the fixture rows.

    private const double Q4_KMaxErrorPerAbsMax = 0.13;
    private const double Q5_KMaxErrorPerAbsMax = 0.10;
    private const double Q6_KMaxErrorPerAbsMax = 0.065;

    private static readonly int[] s_lengths = [32, 64, 96, 256, 512, 4096, 14336];
    private static readonly double[] s_scales = [1e-3, 0.02, 1, 100];

    public static TheoryData<GgmlType, string> Cases()
    {
        var data = new TheoryData<GgmlType, string>();
        foreach (var type in GgmlFixtures.Types)
        {
            data.Add(type, "normal");
            data.Add(type, "uniform");
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RoundTrip_ErrorIsWithinDocumentedBounds(GgmlType type, string distribution)
    {
        var info = GgmlTypes.Get(type);
        foreach (int length in s_lengths.Where(n => n % info.BlockSize == 0))
        {
            foreach (double scale in s_scales)
            {
                var rng = new TestRandom((ulong)(length * 1000 + Array.IndexOf(s_scales, scale)) + (uint)type * 7919);
                float[] x = distribution == "normal" ? rng.Gaussian(length, scale) : rng.Uniform(length, scale);
                var bytes = new byte[info.RowBytes(length)];
                Quantize.Row(type, x, bytes);
                var y = new float[length];
                Dequantize.Row(type, bytes, y);

                string where = $"{type} {distribution} scale {scale} length {length}";
                double relativeRms = ErrorStats.Rms(x, y) / ErrorStats.Rms(x);
                Assert.True(relativeRms <= RelativeRmsBound(type), $"{where}: relative RMS error {relativeRms:F5}");
                AssertElementBounds(type, x, y, where);
            }
        }
    }

    private static double RelativeRmsBound(GgmlType type) => type switch
    {
        GgmlType.Q8_0 => Q8_0RelativeRmsBound,
        GgmlType.Q4_0 => Q4_0RelativeRmsBound,
        GgmlType.Q4_1 => Q4_1RelativeRmsBound,
        GgmlType.Q5_0 => Q5_0RelativeRmsBound,
        GgmlType.Q5_1 => Q5_1RelativeRmsBound,
        GgmlType.Q4_K => Q4_KRelativeRmsBound,
        GgmlType.Q5_K => Q5_KRelativeRmsBound,
        GgmlType.Q6_K => Q6_KRelativeRmsBound,
        GgmlType.F16 => F16RelativeRmsBound,
        GgmlType.BF16 => BF16RelativeRmsBound,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    private static void AssertElementBounds(GgmlType type, float[] x, float[] y, string where)
    {
        int blockSize = type is GgmlType.F16 or GgmlType.BF16 ? 1 : GgmlTypes.Get(type).BlockSize;
        for (int start = 0; start < x.Length; start += blockSize)
        {
            var block = x.AsSpan(start, blockSize);
            for (int i = 0; i < blockSize; i++)
            {
                double error = Math.Abs((double)x[start + i] - y[start + i]);
                double bound = ElementBound(type, block, block[i]);
                Assert.True(error <= bound,
                    $"{where}: element {start + i} = {x[start + i]:R} decoded as {y[start + i]:R}, error {error:E3} > bound {bound:E3}");
            }
        }
    }

    /// <summary>The largest error element <paramref name="v"/> of <paramref name="block"/> may have.</summary>
    private static double ElementBound(GgmlType type, ReadOnlySpan<float> block, float v)
    {
        double amax = ErrorStats.AbsMax(block);
        double min = double.MaxValue, max = double.MinValue;
        foreach (float e in block)
        {
            min = Math.Min(min, e);
            max = Math.Max(max, e);
        }
        double bound = type switch
        {
            // d = amax / 127, |q| ≤ 127.
            GgmlType.Q8_0 => amax / 127 / 2 + 127 * HalfError(amax / 127),
            // d = amax / 8 (the extreme maps to code 0); the other side ends at 7d, so elements beyond 7.5d clip by
            // up to d. |q − 8| ≤ 8.
            GgmlType.Q4_0 => (Math.Abs(v) <= 7.5 * amax / 8 ? amax / 8 / 2 : amax / 8) + 8 * HalfError(amax / 8),
            GgmlType.Q5_0 => (Math.Abs(v) <= 15.5 * amax / 16 ? amax / 16 / 2 : amax / 16) + 16 * HalfError(amax / 16),
            // d = (max − min) / levels, q ≤ levels, plus the f16 rounding of the stored min.
            GgmlType.Q4_1 => (max - min) / 15 / 2 + 15 * HalfError((max - min) / 15) + HalfError(min),
            GgmlType.Q5_1 => (max - min) / 31 / 2 + 31 * HalfError((max - min) / 31) + HalfError(min),
            GgmlType.Q4_K => Q4_KMaxErrorPerAbsMax * amax,
            GgmlType.Q5_K => Q5_KMaxErrorPerAbsMax * amax,
            GgmlType.Q6_K => Q6_KMaxErrorPerAbsMax * amax,
            GgmlType.F16 => HalfError(v),
            // bfloat16 has float's exponent range: 8 significant bits down to float's own subnormals.
            GgmlType.BF16 => Math.Max(Math.Abs(v) / 256, Math.Pow(2, -134)),
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
        return bound * (1 + FloatSlackRelative) + amax * Math.Pow(2, -22);
    }

    /// <summary>Bound on |f16(v) − v|: half a unit in the last place, i.e. 2⁻¹¹ relative for normal halves
    /// (|v| ≥ 2⁻¹⁴) and 2⁻²⁵ absolute among subnormals.</summary>
    private static double HalfError(double v) => Math.Max(Math.Abs(v) / 2048, Math.Pow(2, -25));
}
