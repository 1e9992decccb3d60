// IEEE 754 binary16 (ggml's F16, and the scale type of every quantized block) as raw 16-bit patterns.
// Used by the reference quantizers and dequantizers, and by anything reading or writing F16 tensors.

namespace Sirocco.Kernels.Quant;

/// <summary>Conversions between <see cref="float"/> and the bit pattern of an IEEE half-precision value.</summary>
public static class HalfBits
{
    /// <summary>The exact float value of the half whose bits are <paramref name="bits"/> (every half is a float).</summary>
    public static float ToSingle(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>The bits of the half nearest to <paramref name="value"/>: round to nearest, ties to even, with
    /// subnormal results, overflow to ±infinity and NaN kept NaN (as ggml's <c>GGML_FP32_TO_FP16</c>).</summary>
    public static ushort FromSingle(float value) => BitConverter.HalfToUInt16Bits((Half)value);
}
