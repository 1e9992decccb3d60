// Rotary position embedding (Simd/Rope.cs) against the reference (Reference/Ops.cs RopeAngles, Rope) and against
// its mathematical properties: identity at position 0, pair norms preserved, the two layouts agree under the
// element permutation that relates them, and the angle table is accurate at large positions.

using Sirocco.Kernels.Simd;
using Ref = Sirocco.Kernels.Reference.Ops;

namespace Sirocco.Kernels.Tests.Simd;

public class RopeTests
{
    private const double U = 1.0 / (1 << 24);

    // Each rotated element is a·c ∓ b·s in float: two products and a sum, three roundings of at most U·(|a·c| + |b·s|)
    // ≤ U·‖(a, b)‖·√2 each; the reference computes in double and rounds once. 6·U of the pair's norm covers it.
    private const double PairTolerance = 6 * U;

    /// <summary>(headCount, headDim, ropeDim): Mistral's 32 × 128 and 8 × 128, partial rotation, and odd pair counts
    /// that leave vector tails.</summary>
    public static TheoryData<int, int, int> Shapes() => new()
    {
        { 32, 128, 128 }, { 8, 128, 128 }, { 1, 2, 2 }, { 3, 6, 6 }, { 2, 10, 10 }, { 5, 30, 18 }, { 4, 64, 32 },
        { 2, 34, 34 }, { 3, 50, 46 }, { 1, 256, 256 }, { 2, 1100, 1026 }, { 0, 16, 16 },
    };

    public static TheoryData<int, int, int, RopeStyle> ShapesAndStyles()
    {
        var data = new TheoryData<int, int, int, RopeStyle>();
        foreach (var row in Shapes())
        {
            foreach (var style in Enum.GetValues<RopeStyle>())
            {
                data.Add((int)row[0], (int)row[1], (int)row[2], style);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(ShapesAndStyles))]
    public void Apply_MatchesReference_AndLeavesTheUnrotatedTailAlone(int headCount, int headDim, int ropeDim, RopeStyle style)
    {
        var rng = new TestRandom((ulong)(headCount * 1000 + ropeDim));
        foreach (int position in new[] { 0, 1, 17, 4095, 32767 })
        {
            (float[] cos, float[] sin) = Angles(position, 1_000_000f, ropeDim);
            float[] x = rng.Gaussian(headCount * headDim + 1, 2);
            float[] expected = (float[])x.Clone(), actual = (float[])x.Clone();
            Ref.Rope(expected.AsSpan(1), headCount, headDim, ropeDim, cos, sin, style);
            Rope.Apply(actual.AsSpan(1), headCount, headDim, ropeDim, cos, sin, style);
            Assert.Equal(x[0], actual[0]);
            for (int h = 0; h < headCount; h++)
            {
                int head = 1 + h * headDim;
                for (int i = 0; i < ropeDim / 2; i++)
                {
                    (int first, int second) = Pair(style, i, ropeDim);
                    double norm = Math.Sqrt((double)x[head + first] * x[head + first] + (double)x[head + second] * x[head + second]);
                    OpsTests.AssertClose(expected[head + first], actual[head + first], PairTolerance * norm, $"pos={position} h={h} i={i} first");
                    OpsTests.AssertClose(expected[head + second], actual[head + second], PairTolerance * norm, $"pos={position} h={h} i={i} second");
                }
                for (int j = ropeDim; j < headDim; j++)
                {
                    Assert.Equal(x[head + j], actual[head + j]);
                }
            }
        }
    }

    [Theory]
    [InlineData(RopeStyle.Interleaved)]
    [InlineData(RopeStyle.HalfRotated)]
    public void Apply_AtPositionZero_IsIdentity(RopeStyle style)
    {
        (float[] cos, float[] sin) = Angles(0, 10_000f, 128);
        float[] x = new TestRandom(1).Gaussian(32 * 128, 1), y = (float[])x.Clone();
        Rope.Apply(y, 32, 128, 128, cos, sin, style);
        Assert.Equal(x, y);
    }

    [Theory]
    [InlineData(RopeStyle.Interleaved)]
    [InlineData(RopeStyle.HalfRotated)]
    public void Apply_PreservesEachPairsNorm(RopeStyle style)
    {
        (float[] cos, float[] sin) = Angles(1234, 10_000f, 128);
        float[] x = new TestRandom(2).Gaussian(8 * 128, 1), y = (float[])x.Clone();
        Rope.Apply(y, 8, 128, 128, cos, sin, style);
        for (int h = 0; h < 8; h++)
        {
            for (int i = 0; i < 64; i++)
            {
                (int a, int b) = Pair(style, i, 128);
                a += h * 128;
                b += h * 128;
                double before = Math.Sqrt((double)x[a] * x[a] + (double)x[b] * x[b]);
                double after = Math.Sqrt((double)y[a] * y[a] + (double)y[b] * y[b]);
                // cos² + sin² of the float table is 1 within ~2U; the rotation's own roundings add ≤ 6U (above).
                OpsTests.AssertClose(before, after, 8 * U * before, $"h={h} pair {i}");
            }
        }
    }

    [Fact]
    public void Styles_AgreeAfterPermutingEachHead()
    {
        // Interleaved index 2i ↔ HalfRotated index i, and 2i + 1 ↔ i + ropeDim/2; the tail past ropeDim stays put.
        const int headCount = 4, headDim = 40, ropeDim = 34;
        (float[] cos, float[] sin) = Angles(999, 10_000f, ropeDim);
        float[] interleaved = new TestRandom(3).Gaussian(headCount * headDim, 1);
        float[] halfRotated = new float[interleaved.Length];
        Permute(interleaved, halfRotated);
        Rope.Apply(interleaved, headCount, headDim, ropeDim, cos, sin, RopeStyle.Interleaved);
        Rope.Apply(halfRotated, headCount, headDim, ropeDim, cos, sin, RopeStyle.HalfRotated);
        float[] permuted = new float[interleaved.Length];
        Permute(interleaved, permuted);
        Assert.Equal(permuted, halfRotated);

        static void Permute(float[] from, float[] to)
        {
            for (int h = 0; h < headCount; h++)
            {
                int b = h * headDim;
                for (int i = 0; i < ropeDim / 2; i++)
                {
                    to[b + i] = from[b + 2 * i];
                    to[b + i + ropeDim / 2] = from[b + 2 * i + 1];
                }
                for (int j = ropeDim; j < headDim; j++)
                {
                    to[b + j] = from[b + j];
                }
            }
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(32767)]
    public void Angles_MatchDoubleComputation(int position)
    {
        foreach (float theta in new[] { 10_000f, 1_000_000f })
        {
            (float[] cos, float[] sin) = Angles(position, theta, 128);
            for (int i = 0; i < 64; i++)
            {
                double angle = position * Math.Pow(theta, -2.0 * i / 128);
                // One rounding to float: half an ulp of a value ≤ 1, so ≤ U absolute.
                OpsTests.AssertClose(Math.Cos(angle), cos[i], U, $"cos θ={theta} i={i}");
                OpsTests.AssertClose(Math.Sin(angle), sin[i], U, $"sin θ={theta} i={i}");
            }
        }
    }

    [Fact]
    public void BadArguments_Throw()
    {
        float[] cos = new float[4], sin = new float[4], x = new float[16];
        Assert.Equal("ropeDim", Assert.ThrowsAny<ArgumentException>(() => Rope.Angles(0, 1e4f, 7, new float[3], new float[3])).ParamName);
        Assert.Equal("cos", Assert.ThrowsAny<ArgumentException>(() => Rope.Angles(0, 1e4f, 8, new float[3], sin)).ParamName);
        Assert.Equal("sin", Assert.ThrowsAny<ArgumentException>(() => Rope.Angles(0, 1e4f, 8, cos, new float[5])).ParamName);
        Assert.Equal("x", Assert.ThrowsAny<ArgumentException>(() => Rope.Apply(x, 3, 8, 8, cos, sin, RopeStyle.Interleaved)).ParamName);
        Assert.Equal("ropeDim", Assert.ThrowsAny<ArgumentException>(() => Rope.Apply(x, 1, 16, 18, cos, sin, RopeStyle.Interleaved)).ParamName);
        Assert.Equal("cos", Assert.ThrowsAny<ArgumentException>(() => Rope.Apply(x, 2, 8, 8, new float[3], sin, RopeStyle.HalfRotated)).ParamName);
    }

    private static (int First, int Second) Pair(RopeStyle style, int i, int ropeDim) =>
        style == RopeStyle.Interleaved ? (2 * i, 2 * i + 1) : (i, i + ropeDim / 2);

    private static (float[] Cos, float[] Sin) Angles(int position, float theta, int ropeDim)
    {
        float[] cos = new float[ropeDim / 2], sin = new float[ropeDim / 2];
        Rope.Angles(position, theta, ropeDim, cos, sin);
        return (cos, sin);
    }
}
