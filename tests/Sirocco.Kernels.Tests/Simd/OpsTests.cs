// The fast float kernels (Simd/Ops.cs) against their scalar references (Reference/Ops.cs): every length 0 … 300 and
// Mistral's 4096, 14336, 32000 plus odd tails, on spans offset by one element, fixed seeds; edge cases for softmax,
// RMSNorm and the f16 conversions (all 65536 halves, ties, subnormals, overflow, NaN). CI reruns this file with AVX2
// and then all hardware intrinsics switched off, so the Vector256, Vector128 and scalar paths are each covered.

using System.Runtime.Intrinsics;
using Sirocco.Kernels.Quant;
using Fast = Sirocco.Kernels.Simd.Ops;
using Ref = Sirocco.Kernels.Reference.Ops;

namespace Sirocco.Kernels.Tests.Simd;

public class OpsTests
{
    /// <summary>One float rounding: the unit roundoff 2⁻²⁴.</summary>
    private const double U = 1.0 / (1 << 24);

    /// <summary>Lengths 0 … 300, then Mistral's model dim, hidden dim and vocabulary, and odd tails past them.</summary>
    public static IEnumerable<int> Lengths() =>
        Enumerable.Range(0, 301).Concat([4096, 4096 + 7, 14336, 14336 + 13, 32000, 32000 + 3]);

    // Reductions: each of the fast kernel's lanes (4 accumulators × 8 lanes, or × 4 lanes on the Vector128 path)
    // sums at most n/16 products with one rounding each (≤ U of the running sum of |terms|), then a tree of ≤ 5 adds
    // and the scalar tail's ≤ 7 multiply-adds; the reference rounds once. So |fast − reference| ≤ (n/16 + 16)·U·Σ|x·y|,
    // a worst-case bound that cannot fail by chance (typical errors are ~√(n/16)·U).
    private static double ReductionTolerance(int n) => (n / 16.0 + 16) * U;

    private static float[] Gaussian(TestRandom rng, int n, double sigma = 1) => rng.Gaussian(n + 1, sigma); // used from [1..]

    private static ushort[] RandomHalves(TestRandom rng, int n)
    {
        float[] values = rng.Gaussian(n + 1, 2);
        return [.. values.Select(HalfBits.FromSingle)];
    }

    [Fact]
    public void Dot_MatchesReference_AllLengths()
    {
        foreach (int n in Lengths())
        {
            var rng = new TestRandom((ulong)n + 1);
            ReadOnlySpan<float> x = Gaussian(rng, n).AsSpan(1), y = Gaussian(rng, n).AsSpan(1);
            double scale = 0;
            for (int i = 0; i < n; i++)
            {
                scale += Math.Abs((double)x[i] * y[i]);
            }
            AssertClose(Ref.Dot(x, y), Fast.Dot(x, y), ReductionTolerance(n) * scale, $"n={n}");
        }
    }

    [Fact]
    public void DotHalf_MatchesReference_AllLengths()
    {
        foreach (int n in Lengths())
        {
            var rng = new TestRandom((ulong)n + 2);
            ReadOnlySpan<float> x = Gaussian(rng, n).AsSpan(1);
            ReadOnlySpan<ushort> y = RandomHalves(rng, n).AsSpan(1);
            double scale = 0;
            for (int i = 0; i < n; i++)
            {
                scale += Math.Abs((double)x[i] * HalfBits.ToSingle(y[i]));
            }
            AssertClose(Ref.DotHalf(x, y), Fast.DotHalf(x, y), ReductionTolerance(n) * scale, $"n={n}");
        }
    }

    // y += a·x per element: the fast kernel rounds once (FMA) or twice (product, then sum), each ≤ U of
    // |a·x| + |y|; the reference rounds once. 4·U of |a·x| + |y| covers all three.
    private const double MultiplyAddTolerance = 4 * U;

    [Fact]
    public void MultiplyAdd_MatchesReference_AllLengths()
    {
        foreach (int n in Lengths())
        {
            var rng = new TestRandom((ulong)n + 3);
            float a = (float)rng.NextGaussian();
            float[] x = Gaussian(rng, n), y0 = Gaussian(rng, n);
            float[] expected = (float[])y0.Clone(), actual = (float[])y0.Clone();
            Ref.MultiplyAdd(a, x.AsSpan(1), expected.AsSpan(1));
            Fast.MultiplyAdd(a, x.AsSpan(1), actual.AsSpan(1));
            for (int i = 1; i <= n; i++)
            {
                double scale = Math.Abs((double)a * x[i]) + Math.Abs(y0[i]);
                AssertClose(expected[i], actual[i], MultiplyAddTolerance * scale, $"n={n} i={i}");
            }
            Assert.Equal(y0[0], actual[0]); // the element before the slice is untouched
        }
    }

    [Fact]
    public void MultiplyAddHalf_MatchesReference_AllLengths()
    {
        foreach (int n in Lengths())
        {
            var rng = new TestRandom((ulong)n + 4);
            float a = (float)rng.NextGaussian();
            ushort[] x = RandomHalves(rng, n);
            float[] y0 = Gaussian(rng, n);
            float[] expected = (float[])y0.Clone(), actual = (float[])y0.Clone();
            Ref.MultiplyAddHalf(a, x.AsSpan(1), expected.AsSpan(1));
            Fast.MultiplyAddHalf(a, x.AsSpan(1), actual.AsSpan(1));
            for (int i = 1; i <= n; i++)
            {
                double scale = Math.Abs((double)a * HalfBits.ToSingle(x[i])) + Math.Abs(y0[i]);
                AssertClose(expected[i], actual[i], MultiplyAddTolerance * scale, $"n={n} i={i}");
            }
        }
    }

    // RMSNorm: Σx² (positive terms) is off by at most the reduction bound; the scale 1/√(mean + eps) halves that
    // relative error and adds two roundings; each output then takes two more. Per element, relative to the exact
    // output: ReductionTolerance(n)/2 + 4·U, so ReductionTolerance(n) bounds it.
    [Fact]
    public void RmsNorm_MatchesReference_AllLengths_AndInPlace()
    {
        foreach (int n in Lengths())
        {
            var rng = new TestRandom((ulong)n + 5);
            float[] x = Gaussian(rng, n, 3), weight = Gaussian(rng, n);
            float[] expected = new float[n + 1], actual = new float[n + 1];
            Ref.RmsNorm(x.AsSpan(1), weight.AsSpan(1), 1e-5f, expected.AsSpan(1));
            Fast.RmsNorm(x.AsSpan(1), weight.AsSpan(1), 1e-5f, actual.AsSpan(1));
            for (int i = 1; i <= n; i++)
            {
                AssertClose(expected[i], actual[i], ReductionTolerance(n) * Math.Abs(expected[i]), $"n={n} i={i}");
            }
            // In place (y is x): the same results.
            float[] inPlace = (float[])x.Clone();
            Fast.RmsNorm(inPlace.AsSpan(1), weight.AsSpan(1), 1e-5f, inPlace.AsSpan(1));
            Assert.Equal(actual.AsSpan(1).ToArray(), inPlace.AsSpan(1).ToArray());
        }
    }

    [Fact]
    public void RmsNorm_OfZeros_IsZero()
    {
        float[] x = new float[4096], weight = Enumerable.Repeat(1.5f, 4096).ToArray(), y = new float[4096];
        y.AsSpan().Fill(7);
        Fast.RmsNorm(x, weight, 1e-5f, y);
        Assert.All(y, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void RmsNorm_UnitWeight_GivesUnitMeanSquare()
    {
        float[] x = new TestRandom(6).Gaussian(4096, 10), weight = Enumerable.Repeat(1f, 4096).ToArray(), y = new float[4096];
        Fast.RmsNorm(x, weight, 0, y);
        Assert.Equal(1.0, y.Sum(v => (double)v * v) / y.Length, 1e-5);
    }

    // Softmax: exp(x − max) takes the rounding of x − max (an error of ≤ U·|x − max| in the exponent, so relative
    // ≤ U·|x − max| ≤ 16·U for these inputs of spread < 16) and TensorPrimitives' exp (a few ulps); the sum of positive
    // terms is off by ≤ (n/16 + 16)·U relative as for the dot products, and the division rounds once. 32·U plus the
    // sum's bound, relative to each output, covers these.
    private static double SoftmaxTolerance(int n) => ReductionTolerance(n) + 32 * U;

    [Fact]
    public void Softmax_MatchesReference_AllLengths()
    {
        foreach (int n in Lengths())
        {
            var rng = new TestRandom((ulong)n + 7);
            float[] x = rng.Uniform(n + 1, 7.5);
            float[] expected = (float[])x.Clone(), actual = (float[])x.Clone();
            Ref.Softmax(expected.AsSpan(1));
            Fast.Softmax(actual.AsSpan(1));
            for (int i = 1; i <= n; i++)
            {
                AssertClose(expected[i], actual[i], SoftmaxTolerance(n) * expected[i], $"n={n} i={i}");
            }
            Assert.Equal(x[0], actual[0]);
            if (n > 0)
            {
                Assert.Equal(1.0, actual.AsSpan(1).ToArray().Sum(v => (double)v), 1e-4);
            }
        }
    }

    [Fact]
    public void Softmax_NegativeInfinityEntries_BecomeZero_RestSumToOne()
    {
        float[] x = [float.NegativeInfinity, 1, 2, float.NegativeInfinity, 3, float.NegativeInfinity, 0, -1, 5, 4];
        float[] expected = (float[])x.Clone();
        Ref.Softmax(expected);
        Fast.Softmax(x);
        Assert.Equal(0f, x[0]);
        Assert.Equal(0f, x[3]);
        Assert.Equal(0f, x[5]);
        Assert.Equal(1.0, x.Sum(v => (double)v), 1e-6);
        for (int i = 0; i < x.Length; i++)
        {
            AssertClose(expected[i], x[i], SoftmaxTolerance(x.Length) * expected[i], $"i={i}");
        }
    }

    [Fact]
    public void Softmax_SingleElement_IsOne()
    {
        foreach (float v in new[] { 0f, -1e30f, 88.7f, 1e30f })
        {
            float[] x = [v];
            Fast.Softmax(x);
            Assert.Equal(1f, x[0]);
        }
    }

    [Fact]
    public void Softmax_LargeValues_DoNotOverflow()
    {
        float[] x = [1000, 1000, 999];
        Fast.Softmax(x);
        Assert.Equal(0.42231882, x[0], 1e-6);
        Assert.Equal(x[0], x[1]);
        Assert.Equal(0.15536240, x[2], 1e-6);
    }

    [Fact]
    public void Softmax_AllNegativeInfinity_OrNaN_GivesNaN_AsReference()
    {
        foreach (float[] row in new[] { new[] { float.NegativeInfinity, float.NegativeInfinity }, [1f, float.NaN, 2f] })
        {
            float[] expected = (float[])row.Clone(), actual = (float[])row.Clone();
            Ref.Softmax(expected);
            Fast.Softmax(actual);
            Assert.All(expected, v => Assert.True(float.IsNaN(v)));
            Assert.All(actual, v => Assert.True(float.IsNaN(v)));
        }
    }

    // SiluMul: σ(g) = 1/(1 + exp(−g)) with TensorPrimitives' exp (a few ulps) and two roundings, then two products:
    // about 8 roundings, so 16·U relative to the exact |g·σ(g)·u| leaves margin.
    private const double SiluMulTolerance = 16 * U;

    [Fact]
    public void SiluMul_MatchesReference_AllLengths_AndAliased()
    {
        foreach (int n in Lengths())
        {
            var rng = new TestRandom((ulong)n + 8);
            float[] gate = Gaussian(rng, n, 4), up = Gaussian(rng, n);
            float[] expected = new float[n + 1], actual = new float[n + 1];
            Ref.SiluMul(gate.AsSpan(1), up.AsSpan(1), expected.AsSpan(1));
            Fast.SiluMul(gate.AsSpan(1), up.AsSpan(1), actual.AsSpan(1));
            for (int i = 1; i <= n; i++)
            {
                AssertClose(expected[i], actual[i], SiluMulTolerance * Math.Abs(expected[i]), $"n={n} i={i}");
            }
            // y is gate, then y is up: the same results as into a separate buffer.
            float[] intoGate = (float[])gate.Clone(), intoUp = (float[])up.Clone();
            Fast.SiluMul(intoGate.AsSpan(1), up.AsSpan(1), intoGate.AsSpan(1));
            Fast.SiluMul(gate.AsSpan(1), intoUp.AsSpan(1), intoUp.AsSpan(1));
            Assert.Equal(actual.AsSpan(1).ToArray(), intoGate.AsSpan(1).ToArray());
            Assert.Equal(actual.AsSpan(1).ToArray(), intoUp.AsSpan(1).ToArray());
        }
    }

    [Fact]
    public void SiluMul_ExtremeGates()
    {
        float[] gate = [-1000, -88, -20, 0, 20, 88, 1000, float.NegativeInfinity], up = [1, 1, 1, 1, 1, 1, 1, 1];
        float[] expected = new float[8], actual = new float[8];
        Ref.SiluMul(gate, up, expected);
        Fast.SiluMul(gate, up, actual);
        for (int i = 0; i < 7; i++)
        {
            AssertClose(expected[i], actual[i], SiluMulTolerance * Math.Abs(expected[i]), $"gate={gate[i]}");
        }
        Assert.Equal(1000f, actual[6]);
        Assert.Equal(0f, Math.Abs(actual[0]));
    }

    [Fact]
    public void Add_And_Scale_EqualReferenceExactly()
    {
        foreach (int n in Lengths())
        {
            var rng = new TestRandom((ulong)n + 9);
            float[] x = Gaussian(rng, n), y0 = Gaussian(rng, n);
            float[] expected = (float[])y0.Clone(), actual = (float[])y0.Clone();
            Ref.Add(expected.AsSpan(1), x.AsSpan(1));
            Fast.Add(actual.AsSpan(1), x.AsSpan(1));
            Assert.Equal(expected, actual);
            Ref.Scale(expected.AsSpan(1), 0.3f);
            Fast.Scale(actual.AsSpan(1), 0.3f);
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public void FromHalf_AllBitPatterns_EqualHalfConversion()
    {
        ushort[] all = new ushort[65536 + 1];
        for (int i = 0; i < 65536; i++)
        {
            all[i + 1] = (ushort)i;
        }
        float[] actual = new float[65536 + 1];
        Fast.FromHalf(all.AsSpan(1), actual.AsSpan(1));
        for (int i = 0; i < 65536; i++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)i);
            Assert.True(BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(actual[i + 1]),
                $"half 0x{i:X4}: expected 0x{BitConverter.SingleToUInt32Bits(expected):X8}, got 0x{BitConverter.SingleToUInt32Bits(actual[i + 1]):X8}");
        }
    }

    [Fact]
    public void HalfToSingleValue_AllBitPatterns_SameValueAsHalfConversion()
    {
        // The products' shorter conversion: bit-exact except that a NaN need only stay a NaN. Vector256 operations
        // also run (in software) where they are not accelerated, so this checks the arithmetic on every machine.
        ushort[] all = new ushort[65536];
        for (int i = 0; i < all.Length; i++)
        {
            all[i] = (ushort)i;
        }
        for (int i = 0; i < all.Length; i += 8)
        {
            Vector128<ushort> bits = Vector128.Create<ushort>(all.AsSpan(i, 8));
            Vector256<float> values = Fast.HalfToSingleValue(Vector256.WidenLower(bits.ToVector256()));
            for (int j = 0; j < 8; j++)
            {
                float expected = (float)BitConverter.UInt16BitsToHalf(all[i + j]), actual = values.GetElement(j);
                Assert.True(float.IsNaN(expected) ? float.IsNaN(actual) : BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(actual),
                    $"half 0x{i + j:X4}: expected {expected:R}, got {actual:R}");
            }
        }
    }

    [Fact]
    public void ToHalf_EveryHalf_AndTheMidpointsBetweenNeighbours_EqualHalfConversion()
    {
        // Every half value round-trips; the midpoints between consecutive halves (exact in float) are ties that must
        // round to the even neighbour; one float ulp either side of each midpoint must round down and up.
        var inputs = new List<float>();
        for (int bits = 0; bits < 0x7C00; bits++)
        {
            foreach (int sign in new[] { 0, 0x8000 })
            {
                float low = HalfBits.ToSingle((ushort)(bits | sign)), high = HalfBits.ToSingle((ushort)((bits + 1) | sign));
                float middle = (float)(((double)low + high) / 2);
                inputs.AddRange([low, middle, MathF.BitDecrement(middle), MathF.BitIncrement(middle)]);
            }
        }
        CheckToHalf([.. inputs]);
    }

    [Fact]
    public void ToHalf_EdgeAndRandomFloats_EqualHalfConversion()
    {
        var inputs = new List<float>
        {
            0f, -0f, float.Epsilon, -float.Epsilon, float.MaxValue, float.MinValue, float.PositiveInfinity,
            float.NegativeInfinity, float.NaN, BitConverter.UInt32BitsToSingle(0x7F800001), // signalling NaN
            BitConverter.UInt32BitsToSingle(0xFFC12345), 65504, 65519.99f, 65520, -65520, 1e5f, 6.1035156e-5f,
            5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, 1e-8f, 1e-20f, 1e-40f, 0.5f, 1, -1, 3.14159f,
        };
        var rng = new TestRandom(10);
        for (int i = 0; i < 200_000; i++)
        {
            // Random bit patterns (every exponent, NaNs included) and values in the half range.
            inputs.Add(BitConverter.UInt32BitsToSingle((uint)rng.NextUInt64()));
            inputs.Add((float)(rng.NextGaussian() * Math.Pow(2, rng.NextDouble() * 44 - 28)));
        }
        CheckToHalf([.. inputs]);
    }

    private static void CheckToHalf(float[] values)
    {
        // Run every prefix length up to 40 (all tail shapes), then the whole array offset by one element.
        for (int n = 0; n <= 40; n++)
        {
            CheckToHalf(values.AsSpan(0, Math.Min(n, values.Length)));
        }
        CheckToHalf(values.AsSpan(1));
    }

    private static void CheckToHalf(ReadOnlySpan<float> values)
    {
        ushort[] actual = new ushort[values.Length];
        Fast.ToHalf(values, actual);
        for (int i = 0; i < values.Length; i++)
        {
            ushort expected = BitConverter.HalfToUInt16Bits((Half)values[i]);
            Assert.True(expected == actual[i],
                $"float 0x{BitConverter.SingleToUInt32Bits(values[i]):X8} ({values[i]:R}): expected 0x{expected:X4}, got 0x{actual[i]:X4}");
        }
    }

    [Fact]
    public void LengthMismatch_Throws_NamingTheParameterAndBothLengths()
    {
        float[] three = new float[3], four = new float[4];
        ushort[] threeHalves = new ushort[3];
        AssertMismatch("y", () => Fast.Dot(four, three));
        AssertMismatch("yHalfBits", () => Fast.DotHalf(four, threeHalves));
        AssertMismatch("y", () => Fast.MultiplyAdd(1, four, three));
        AssertMismatch("y", () => Fast.MultiplyAddHalf(1, threeHalves, four));
        AssertMismatch("weight", () => Fast.RmsNorm(four, three, 1e-5f, four));
        AssertMismatch("y", () => Fast.RmsNorm(four, four, 1e-5f, three));
        AssertMismatch("up", () => Fast.SiluMul(four, three, four));
        AssertMismatch("y", () => Fast.SiluMul(four, four, three));
        AssertMismatch("x", () => Fast.Add(four, three));
        AssertMismatch("yHalfBits", () => Fast.ToHalf(four, threeHalves));
        AssertMismatch("y", () => Fast.FromHalf(threeHalves, four));
        AssertMismatch("y", () => Ref.Dot(four, three));
    }

    private static void AssertMismatch(string parameter, Action call)
    {
        var e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.Equal(parameter, e.ParamName);
        Assert.Contains("3", e.Message);
        Assert.Contains("4", e.Message);
    }

    internal static void AssertClose(double expected, double actual, double tolerance, string what)
    {
        // The smallest positive float as a floor: a zero tolerance (all-zero inputs) still allows an exact match only.
        Assert.True(Math.Abs(expected - actual) <= tolerance + float.Epsilon,
            $"{what}: expected {expected:R}, got {actual:R}, difference {Math.Abs(expected - actual):R} > tolerance {tolerance:R}");
    }
}
