// bfloat16 (ggml's BF16: the top 16 bits of a float) as raw 16-bit patterns.
// Used by the reference quantizers and dequantizers, and by anything reading or writing BF16 tensors.

namespace Sirocco.Kernels.Quant;

/// <summary>Conversions between <see cref="float"/> and the bit pattern of a bfloat16 value.</summary>
public static class BFloat16Bits
{
    /// <summary>The exact float value of the bfloat16 <paramref name="bits"/>: they become the float's top 16 bits.</summary>
    public static float ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>The bfloat16 nearest to <paramref name="value"/>, rounding to nearest with ties to even. A NaN stays a
    /// NaN: its top 16 bits with the quiet bit set, so that truncation cannot turn it into an infinity (as ggml's
    /// <c>ggml_compute_fp32_to_bf16</c>).</summary>
    public static ushort FromSingle(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u)
        {
            return (ushort)((bits >> 16) | 0x40);
        }
        // Adding 0x7FFF plus the lowest kept bit rounds half-way cases toward an even result.
        uint roundingBias = 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)((bits + roundingBias) >> 16);
    }
}
