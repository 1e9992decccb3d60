// Quantize's contract apart from accuracy: length checks, unsupported types, Row dispatching to the per-type methods,
// every output byte written, determinism, and zero rows decoding to exact zeros.

using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Reference;

namespace Sirocco.Kernels.Tests.Quant;

public class QuantizeTests
{
    public static TheoryData<GgmlType> SupportedTypes => new(GgmlFixtures.Types.Prepend(GgmlType.F32));

    [Theory]
    [MemberData(nameof(SupportedTypes))]
    public void Row_RejectsWrongLengths(GgmlType type)
    {
        var info = GgmlTypes.Get(type);
        int n = 2 * Math.Max(info.BlockSize, 32);
        int bytes = (int)info.RowBytes(n);
        Assert.True(Quantize.IsSupported(type));
        Quantize.Row(type, new float[n], new byte[bytes]);
        Quantize.Row(type, [], []);
        Assert.Throws<ArgumentException>("dst", () => Quantize.Row(type, new float[n], new byte[bytes - 1]));
        Assert.Throws<ArgumentException>("dst", () => Quantize.Row(type, new float[n], new byte[bytes + 1]));
        if (info.BlockSize > 1)
        {
            var e = Assert.Throws<ArgumentException>("src", () => Quantize.Row(type, new float[n + 1], new byte[bytes]));
            Assert.Contains(info.BlockSize.ToString(), e.Message);
        }
    }

    [Theory]
    [InlineData(GgmlType.Q8_1)]
    [InlineData(GgmlType.Q3_K)]
    [InlineData(GgmlType.IQ2_XXS)]
    [InlineData(GgmlType.MXFP4)]
    public void Row_UnsupportedType_ThrowsNotSupportedNamingIt(GgmlType type)
    {
        Assert.False(Quantize.IsSupported(type));
        var e = Assert.Throws<NotSupportedException>(() => Quantize.Row(type, new float[256], new byte[1024]));
        Assert.Contains(type.ToString(), e.Message);
    }

    [Theory]
    [MemberData(nameof(SupportedTypes))]
    public void Row_WritesEveryByte_IsDeterministic_AndEqualsTheTypedMethod(GgmlType type)
    {
        var info = GgmlTypes.Get(type);
        float[] x = new TestRandom(7).Gaussian(512, 1);
        var intoZeros = new byte[info.RowBytes(x.Length)];
        var intoOnes = new byte[intoZeros.Length];
        intoOnes.AsSpan().Fill(0xFF);
        Quantize.Row(type, x, intoZeros);
        Quantize.Row(type, x, intoOnes);
        Assert.Equal(intoZeros, intoOnes);

        var typed = new byte[intoZeros.Length];
        Action<float[], byte[]> method = type switch
        {
            GgmlType.F32 => (s, d) => Quantize.F32(s, d),
            GgmlType.F16 => (s, d) => Quantize.F16(s, d),
            GgmlType.BF16 => (s, d) => Quantize.BF16(s, d),
            GgmlType.Q8_0 => (s, d) => Quantize.Q8_0(s, d),
            GgmlType.Q4_0 => (s, d) => Quantize.Q4_0(s, d),
            GgmlType.Q4_1 => (s, d) => Quantize.Q4_1(s, d),
            GgmlType.Q5_0 => (s, d) => Quantize.Q5_0(s, d),
            GgmlType.Q5_1 => (s, d) => Quantize.Q5_1(s, d),
            GgmlType.Q4_K => (s, d) => Quantize.Q4_K(s, d),
            GgmlType.Q5_K => (s, d) => Quantize.Q5_K(s, d),
            GgmlType.Q6_K => (s, d) => Quantize.Q6_K(s, d),
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
        method(x, typed);
        Assert.Equal(intoZeros, typed);
    }

    [Theory]
    [MemberData(nameof(SupportedTypes))]
    public void ZeroRow_DecodesToExactZeros(GgmlType type)
    {
        var info = GgmlTypes.Get(type);
        var bytes = new byte[info.RowBytes(512)];
        Quantize.Row(type, new float[512], bytes);
        var y = new float[512];
        y.AsSpan().Fill(float.NaN);
        Dequantize.Row(type, bytes, y);
        Assert.All(y, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void F32_RoundTripsBitExactly()
    {
        float[] x = [1.5f, -0f, float.Epsilon, float.MaxValue, float.NegativeInfinity, float.NaN];
        var bytes = new byte[4 * x.Length];
        Quantize.F32(x, bytes);
        var y = new float[x.Length];
        Dequantize.F32(bytes, y);
        Assert.Equal(x.Select(BitConverter.SingleToInt32Bits), y.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void Q4_0_LargestMagnitudeIsExact_AndItsSignChoosesTheFullSide()
    {
        // max = −4 → d = 0.5: codes reach −8·0.5 = −4 exactly, and the positive side stops at 7·0.5 = 3.5.
        float[] x = new float[32];
        x[0] = -4f;
        x[1] = 4f;   // the same magnitude, but the first one seen sets the sign; this one clips to 3.5
        x[2] = 1.25f; // rounds half up, to 1.5 (trunc(2.5 + 8.5) = 11 → 3 · 0.5)
        var bytes = new byte[18];
        Quantize.Q4_0(x, bytes);
        var y = new float[32];
        Dequantize.Q4_0(bytes, y);
        Assert.Equal([-4f, 3.5f, 1.5f, 0f], y[..4]);
    }

    [Fact]
    public void Q8_0_RoundsHalvesAwayFromZero()
    {
        // amax = 127 → d = 1, so x is its own code: ±2.5 must become ±3, not the even ±2.
        float[] x = new float[32];
        x[0] = 127f;
        x[1] = 2.5f;
        x[2] = -2.5f;
        var bytes = new byte[34];
        Quantize.Q8_0(x, bytes);
        Assert.Equal([127, 3, unchecked((byte)-3)], bytes[2..5]);
    }
}
