// Element conversions between the three weight dtypes (F32, F16, BF16, all little-endian) and float. The readers use
// them to hand small tensors to tests and to the loader; the writers use them to store float values as a dtype. The
// byte layouts are ggml's F32/F16/BF16, so the kernels' reference conversions do the work.

using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Reference;

namespace Sirocco.Engine.Formats.SafeTensors;

/// <summary>Converts raw F32/F16/BF16 tensor bytes to and from <see cref="float"/>.</summary>
public static class FloatConversion
{
    /// <summary>
    /// Widens <paramref name="source"/> (little-endian elements of <paramref name="dtype"/>) into <paramref name="destination"/>.
    /// </summary>
    /// <exception cref="UnsupportedModelException"><paramref name="dtype"/> is not F32, F16 or BF16.</exception>
    /// <exception cref="ArgumentException">The lengths disagree: <paramref name="destination"/> must hold exactly the
    /// elements in <paramref name="source"/>.</exception>
    public static void ToSingle(ReadOnlySpan<byte> source, SafeTensorDtype dtype, Span<float> destination) =>
        Dequantize.Row(GgmlTypeOf(dtype), source, destination);

    /// <summary>Narrows <paramref name="source"/> into little-endian <paramref name="dtype"/> elements (F16 and BF16 round
    /// to nearest even; see <see cref="HalfBits"/> and <see cref="BFloat16Bits"/>).</summary>
    /// <exception cref="UnsupportedModelException"><paramref name="dtype"/> is not F32, F16 or BF16.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is not exactly the size of the converted values.</exception>
    public static void FromSingle(ReadOnlySpan<float> source, SafeTensorDtype dtype, Span<byte> destination) =>
        Quantize.Row(GgmlTypeOf(dtype), source, destination);

    /// <summary>The ggml type with the same element layout as a safetensors weight dtype.</summary>
    private static GgmlType GgmlTypeOf(SafeTensorDtype dtype) => dtype switch
    {
        SafeTensorDtype.F32 => GgmlType.F32,
        SafeTensorDtype.F16 => GgmlType.F16,
        SafeTensorDtype.BF16 => GgmlType.BF16,
        _ => throw new UnsupportedModelException($"{dtype} tensors cannot be converted to float; weights must be F32, F16 or BF16"),
    };
}
