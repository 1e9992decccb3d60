// F32/F16/BF16 ⇄ float conversions: bfloat16 rounding, exhaustive round trips over all 16-bit patterns, and
// misaligned spans (mapped tensors need not be aligned to their element size).

using System.Buffers.Binary;
using Sirocco.Engine.Formats;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Kernels.Quant;

namespace Sirocco.Engine.Tests.Formats.SafeTensors;

public sealed class FloatConversionTests
{
    [Theory]
    [InlineData(0x00000000u, (ushort)0x0000)] // 0
    [InlineData(0x80000000u, (ushort)0x8000)] // -0
    [InlineData(0x3F800000u, (ushort)0x3F80)] // 1
    [InlineData(0x7F800000u, (ushort)0x7F80)] // +infinity
    [InlineData(0x7F7FFFFFu, (ushort)0x7F80)] // float.MaxValue rounds past the largest bfloat16
    [InlineData(0x3F808000u, (ushort)0x3F80)] // 1 + 2^-8: exactly half-way, ties to even (down)
    [InlineData(0x3F818000u, (ushort)0x3F82)] // 1 + 3·2^-8: half-way, ties to even (up)
    [InlineData(0x3F808001u, (ushort)0x3F81)] // just above half-way rounds up
    [InlineData(0x3F807FFFu, (ushort)0x3F80)] // just below half-way rounds down
    public void BFloat16_RoundsToNearestEven(uint floatBits, ushort expected) =>
        Assert.Equal(expected, BFloat16Bits.FromSingle(BitConverter.UInt32BitsToSingle(floatBits)));

    [Fact]
    public void BFloat16_NaNStaysNaN()
    {
        Assert.True(float.IsNaN(BFloat16Bits.ToSingle(BFloat16Bits.FromSingle(float.NaN))));
        Assert.True(float.IsNaN(BFloat16Bits.ToSingle(BFloat16Bits.FromSingle(BitConverter.UInt32BitsToSingle(0x7F800001)))));
    }

    [Fact]
    public void EveryBFloat16_SurvivesARoundTrip()
    {
        for (int bits = 0; bits <= ushort.MaxValue; bits++)
        {
            float value = BFloat16Bits.ToSingle((ushort)bits);
            Assert.Equal(BitConverter.UInt32BitsToSingle((uint)bits << 16), value);
            if (!float.IsNaN(value))
            {
                Assert.Equal((ushort)bits, BFloat16Bits.FromSingle(value));
            }
        }
    }

    [Fact]
    public void EveryHalf_WidensLikeTheRuntime_FromAMisalignedSpan()
    {
        // One leading byte puts every element at an odd address.
        var bytes = new byte[1 + 65536 * 2];
        for (int bits = 0; bits <= ushort.MaxValue; bits++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(1 + bits * 2), (ushort)bits);
        }
        var values = new float[65536];
        FloatConversion.ToSingle(bytes.AsSpan(1), SafeTensorDtype.F16, values);
        for (int bits = 0; bits <= ushort.MaxValue; bits++)
        {
            Assert.Equal((float)BitConverter.UInt16BitsToHalf((ushort)bits), values[bits]);
        }

        var back = new byte[1 + 65536 * 2];
        FloatConversion.FromSingle(values, SafeTensorDtype.F16, back.AsSpan(1));
        for (int bits = 0; bits <= ushort.MaxValue; bits++)
        {
            Half expected = BitConverter.UInt16BitsToHalf((ushort)bits);
            Half actual = BinaryPrimitives.ReadHalfLittleEndian(back.AsSpan(1 + bits * 2));
            Assert.True(Half.IsNaN(expected) ? Half.IsNaN(actual) : expected.Equals(actual), $"bits 0x{bits:X4}");
        }
    }

    [Fact]
    public void MisalignedF32AndBf16_Convert()
    {
        float[] values = [1.5f, -2f, 3.25f];
        var f32 = new byte[1 + 12];
        FloatConversion.FromSingle(values, SafeTensorDtype.F32, f32.AsSpan(1));
        var bf16 = new byte[1 + 6];
        FloatConversion.FromSingle(values, SafeTensorDtype.BF16, bf16.AsSpan(1));
        var read = new float[3];
        FloatConversion.ToSingle(f32.AsSpan(1), SafeTensorDtype.F32, read);
        Assert.Equal(values, read);
        FloatConversion.ToSingle(bf16.AsSpan(1), SafeTensorDtype.BF16, read);
        Assert.Equal(values, read); // all three are exact in bfloat16
    }

    [Fact]
    public void LengthMismatchAndUnsupportedDtype_Throw()
    {
        Assert.Throws<ArgumentException>(() => FloatConversion.ToSingle(new byte[6], SafeTensorDtype.F32, new float[2]));
        Assert.Throws<ArgumentException>(() => FloatConversion.FromSingle(new float[2], SafeTensorDtype.BF16, new byte[5]));
        Assert.Throws<UnsupportedModelException>(() => FloatConversion.ToSingle(new byte[8], SafeTensorDtype.I64, new float[1]));
    }
}
