// HalfBits and BFloat16Bits: exact widening, round-to-nearest-even narrowing, subnormals, overflow and NaN.

using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels.Tests.Quant;

public class FloatBitsTests
{
    [Theory]
    [InlineData(1f, 0x3C00)]
    [InlineData(-2f, 0xC000)]
    [InlineData(65504f, 0x7BFF)]
    [InlineData(65520f, 0x7C00)]             // halfway to the next binade of 65504 rounds to even: +inf
    [InlineData(5.9604645e-8f, 0x0001)]      // 2⁻²⁴, the smallest subnormal
    [InlineData(2.9802322e-8f, 0x0000)]      // 2⁻²⁵, exactly half of it: ties to even (0)
    [InlineData(8.940697e-8f, 0x0002)]       // 1.5 · 2⁻²⁴: ties to even (2)
    [InlineData(1.00048828125f, 0x3C00)]     // 1 + 2⁻¹¹, halfway between 1 and 1 + 2⁻¹⁰: to even
    [InlineData(1.00146484375f, 0x3C02)]     // 1 + 3 · 2⁻¹¹, halfway: to even (up)
    [InlineData(-0f, 0x8000)]
    public void HalfBits_FromSingle_RoundsToNearestEven(float value, int bits)
    {
        Assert.Equal((ushort)bits, HalfBits.FromSingle(value));
    }

    [Fact]
    public void HalfBits_WidenThenNarrow_IsIdentityForEveryNonNaNHalf()
    {
        for (int bits = 0; bits < 0x10000; bits++)
        {
            float f = HalfBits.ToSingle((ushort)bits);
            if (!float.IsNaN(f))
            {
                Assert.Equal(bits, HalfBits.FromSingle(f));
            }
        }
        Assert.True(float.IsNaN(HalfBits.ToSingle(HalfBits.FromSingle(float.NaN))));
    }

    [Fact]
    public void HalfBits_ToSingleFast_EqualsToSingleBitForBitForEveryHalf()
    {
        for (int bits = 0; bits < 0x10000; bits++)
        {
            Assert.Equal(BitConverter.SingleToUInt32Bits(HalfBits.ToSingle((ushort)bits)),
                BitConverter.SingleToUInt32Bits(HalfBits.ToSingleFast((ushort)bits)));
        }
    }

    [Theory]
    [InlineData(0x3F80_0000u, 0x3F80)]  // 1
    [InlineData(0x3F80_8000u, 0x3F80)]  // halfway, lower is even: down
    [InlineData(0x3F81_8000u, 0x3F82)]  // halfway, lower is odd: up
    [InlineData(0x3F80_8001u, 0x3F81)]  // above halfway: up
    [InlineData(0x7F7F_FFFFu, 0x7F80)]  // float.MaxValue rounds to +inf
    [InlineData(0x8000_0001u, 0x8000)]  // tiny negative subnormal: −0
    [InlineData(0x7F80_0000u, 0x7F80)]  // +inf stays inf
    [InlineData(0x7F80_0001u, 0x7FC0)]  // signalling NaN with only low payload bits: quieted, still NaN
    [InlineData(0xFFC1_2345u, 0xFFC1)]  // quiet NaN keeps sign and top payload
    public void BFloat16Bits_FromSingle_RoundsToNearestEven_KeepsNaN(uint floatBits, int bits)
    {
        Assert.Equal((ushort)bits, BFloat16Bits.FromSingle(BitConverter.UInt32BitsToSingle(floatBits)));
    }

    [Fact]
    public void BFloat16Bits_ToSingle_IsTheTopHalf()
    {
        Assert.Equal(-5f, BFloat16Bits.ToSingle(0xC0A0));
        Assert.Equal(0x1234_0000u, BitConverter.SingleToUInt32Bits(BFloat16Bits.ToSingle(0x1234)));
    }
}
