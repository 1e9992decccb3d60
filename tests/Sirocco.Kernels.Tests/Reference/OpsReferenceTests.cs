// The scalar float references (Reference/Ops.cs) against hand-computed values and the defining formulas, so that the
// specification the SIMD kernels are tested against is itself checked.

using Sirocco.Kernels.Simd;
using Ref = Sirocco.Kernels.Reference.Ops;

namespace Sirocco.Kernels.Tests.Reference;

public class OpsReferenceTests
{
    [Fact]
    public void Dot_SmallIntegers_IsExact()
    {
        Assert.Equal(1 * 4 + 2 * -5 + 3 * 6f, Ref.Dot([1, 2, 3], [4, -5, 6]));
        Assert.Equal(0f, Ref.Dot([], []));
    }

    [Fact]
    public void Dot_AccumulatesInDouble()
    {
        // 2²⁴ + 1 − 2²⁴: a float running sum would lose the 1.
        Assert.Equal(1f, Ref.Dot([16777216f, 1f, -16777216f], [1, 1, 1]));
    }

    [Fact]
    public void DotHalf_And_MultiplyAddHalf_ReadHalfBits()
    {
        ushort one = 0x3C00, minusTwo = 0xC000, half = 0x3800, smallestSubnormal = 0x0001; // 1, −2, 0.5, 2⁻²⁴
        Assert.Equal(3 * 1 + 5 * -2 + 7 * 0.5f, Ref.DotHalf([3, 5, 7], [one, minusTwo, half]));
        Assert.Equal(MathF.Pow(2, -24), Ref.DotHalf([1], [smallestSubnormal]));
        float[] y = [1, 1];
        Ref.MultiplyAddHalf(2, [one, minusTwo], y);
        Assert.Equal([3f, -3f], y);
    }

    [Fact]
    public void MultiplyAdd_Add_Scale()
    {
        float[] y = [1, 2, 3];
        Ref.MultiplyAdd(2, [1, 1, -1], y);
        Assert.Equal([3f, 4f, 1f], y);
        Ref.Add(y, [1, 1, 1]);
        Assert.Equal([4f, 5f, 2f], y);
        Ref.Scale(y, 0.5f);
        Assert.Equal([2f, 2.5f, 1f], y);
    }

    [Fact]
    public void RmsNorm_HandComputed()
    {
        // x = (3, 4): mean(x²) = 12.5, so y = x/√12.5 · w.
        float[] y = new float[2];
        Ref.RmsNorm([3, 4], [1, 2], 0, y);
        Assert.Equal(3 / Math.Sqrt(12.5), y[0], 1e-6); // one float rounding
        Assert.Equal(2 * 4 / Math.Sqrt(12.5), y[1], 1e-6);
        // eps keeps a zero row at zero instead of 0/0.
        Ref.RmsNorm([0, 0], [1, 1], 1e-6f, y);
        Assert.Equal([0f, 0f], y);
    }

    [Fact]
    public void Softmax_HandComputed()
    {
        float[] x = [0, MathF.Log(3), float.NegativeInfinity];
        Ref.Softmax(x);
        Assert.Equal(0.25, x[0], 1e-7);
        Assert.Equal(0.75, x[1], 1e-7);
        Assert.Equal(0f, x[2]);
    }

    [Fact]
    public void SiluMul_HandComputed()
    {
        float[] y = new float[4];
        Ref.SiluMul([0, 1, -1, 30], [5, 2, 2, 1], y);
        Assert.Equal(0f, y[0]);
        Assert.Equal(2 / (1 + Math.Exp(-1)), y[1], 1e-7);
        Assert.Equal(2 * -1 / (1 + Math.Exp(1)), y[2], 1e-7);
        Assert.Equal(30f, y[3], 1e-5); // σ(30) = 1 − 9e-14
    }

    [Fact]
    public void HalfConversions_KnownPatterns()
    {
        (float Value, ushort Bits)[] known =
        [
            (1f, 0x3C00), (-2f, 0xC000), (65504f, 0x7BFF), (MathF.Pow(2, -14), 0x0400), (MathF.Pow(2, -24), 0x0001),
            (0f, 0x0000), (-0f, 0x8000), (float.PositiveInfinity, 0x7C00), (float.NegativeInfinity, 0xFC00),
        ];
        foreach (var (value, bits) in known)
        {
            ushort[] h = new ushort[1];
            float[] f = new float[1];
            Ref.ToHalf([value], h);
            Ref.FromHalf([bits], f);
            Assert.Equal(bits, h[0]);
            Assert.Equal(BitConverter.SingleToUInt32Bits(value), BitConverter.SingleToUInt32Bits(f[0]));
        }
        // Ties to even: 1 + 2⁻¹¹ is half-way between 1 (even mantissa) and 1 + 2⁻¹⁰; 65520 rounds up to ∞.
        ushort[] r = new ushort[3];
        Ref.ToHalf([1 + MathF.Pow(2, -11), 1 + 3 * MathF.Pow(2, -11), 65520], r);
        Assert.Equal([(ushort)0x3C00, (ushort)0x3C02, (ushort)0x7C00], r);
    }

    [Fact]
    public void RopeAngles_FirstPairRotatesByThePosition_LastBySmallestFrequency()
    {
        float[] cos = new float[64], sin = new float[64];
        Ref.RopeAngles(3, 10_000f, 128, cos, sin);
        Assert.Equal((float)Math.Cos(3), cos[0]);
        Assert.Equal((float)Math.Sin(3), sin[0]);
        Assert.Equal((float)Math.Sin(3 * Math.Pow(10_000, -126.0 / 128)), sin[63]);
    }

    [Theory]
    [InlineData(RopeStyle.Interleaved, 0, 1)]
    [InlineData(RopeStyle.HalfRotated, 0, 2)]
    public void Rope_QuarterTurn_MapsFirstAxisOntoSecond(RopeStyle style, int first, int second)
    {
        // ropeDim 4, two pairs: pair 0 turns by 90°, pair 1 by 0°. A unit vector on pair 0's first axis goes to its
        // second axis.
        float[] x = new float[4];
        x[first] = 1;
        Ref.Rope(x, 1, 4, 4, [0, 1], [1, 0], style);
        float[] expected = new float[4];
        expected[second] = 1;
        Assert.Equal(expected, x);
    }
}
