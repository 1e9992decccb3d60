// IEEE 754 binary16 (ggml's F16, and the scale type of every quantized block) as raw 16-bit patterns.
// Used by the reference quantizers and dequantizers, and by anything reading or writing F16 tensors.

namespace Sirocco.Kernels.Quant;

/// <summary>Conversions between <see cref="float"/> and the bit pattern of an IEEE half-precision value.</summary>
public static class HalfBits
{
    /// <summary>The exact float value of the half whose bits are <paramref name="bits"/> (every half is a float).</summary>
    public static float ToSingle(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>The same value as <see cref="ToSingle"/>, by bit arithmetic for the hot loops of the quantized kernels
    /// (the <see cref="Half"/> conversion is a software routine, several times slower per block scale).</summary>
    /// <remarks>The 15 magnitude bits shifted left by 13 land in a float's exponent and mantissa fields as a value
    /// 2¹¹² times too small (exponent bias 127 versus 15); multiplying by 2¹¹² is exact for every finite half, subnormals
    /// included (they become float subnormals, then normal after the multiply). Infinity and NaN take the slow path.
    /// </remarks>
    internal static float ToSingleFast(ushort bits)
    {
        const float TwoPow112 = 5.192296858534828E+33f; // 2^112 exactly (the nearest float to this decimal)
        uint magnitude = bits & 0x7FFFu;
        if (magnitude >= 0x7C00u)
        {
            return ToSingle(bits);
        }
        float value = BitConverter.UInt32BitsToSingle(magnitude << 13) * TwoPow112;
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(value) | (uint)(bits & 0x8000) << 16);
    }

    /// <summary>The bits of the half nearest to <paramref name="value"/>: round to nearest, ties to even, with
    /// subnormal results, overflow to ±infinity and NaN kept NaN (as ggml's <c>GGML_FP32_TO_FP16</c>).</summary>
    public static ushort FromSingle(float value) => BitConverter.HalfToUInt16Bits((Half)value);
}
