// Element conversions between the three weight dtypes (F32, F16, BF16, all little-endian) and float. The readers use
// them to hand small tensors to tests and to the loader; the writers use them to store float values as a dtype.

using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Sirocco.Engine.Formats.SafeTensors;

/// <summary>Converts raw F32/F16/BF16 tensor bytes to and from <see cref="float"/>.</summary>
public static class FloatConversion
{
    /// <summary>bfloat16 → float: a bfloat16 is the upper 16 bits of an IEEE float32, so widening is a shift.</summary>
    public static float BFloat16ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>
    /// float → bfloat16 with round-to-nearest-even on the 16 dropped bits (as PyTorch rounds). NaN stays a quiet NaN
    /// with its sign; values that round past the largest bfloat16 become infinity.
    /// </summary>
    public static ushort SingleToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x0040);
        }
        // Adding 0x7FFF plus the lowest kept bit rounds half-way cases to the even neighbour.
        uint rounding = 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    /// <summary>
    /// Widens <paramref name="source"/> (little-endian elements of <paramref name="dtype"/>) into <paramref name="destination"/>.
    /// </summary>
    /// <exception cref="UnsupportedModelException"><paramref name="dtype"/> is not F32, F16 or BF16.</exception>
    /// <exception cref="ArgumentException">The lengths disagree: <paramref name="destination"/> must hold exactly the
    /// elements in <paramref name="source"/>.</exception>
    public static void ToSingle(ReadOnlySpan<byte> source, SafeTensorDtype dtype, Span<float> destination)
    {
        int elementBytes = WeightElementBytes(dtype);
        if (source.Length != (long)destination.Length * elementBytes)
        {
            throw new ArgumentException(
                $"{source.Length} bytes of {dtype} hold {source.Length / elementBytes} values; destination has {destination.Length}",
                nameof(destination));
        }
        // Reinterpreting the bytes is correct because safetensors data is little-endian, as is every supported host;
        // mapped tensors need not be 2-byte aligned, and x64 and Arm64 load misaligned halves correctly.
        Debug.Assert(BitConverter.IsLittleEndian, "safetensors data is little-endian");
        switch (dtype)
        {
            case SafeTensorDtype.F32:
                source.CopyTo(MemoryMarshal.AsBytes(destination));
                break;
            case SafeTensorDtype.F16:
                ReadOnlySpan<Half> halves = MemoryMarshal.Cast<byte, Half>(source);
                for (int i = 0; i < halves.Length; i++)
                {
                    destination[i] = (float)halves[i];
                }
                break;
            default:
                ReadOnlySpan<ushort> bfloat16s = MemoryMarshal.Cast<byte, ushort>(source);
                for (int i = 0; i < bfloat16s.Length; i++)
                {
                    destination[i] = BFloat16ToSingle(bfloat16s[i]);
                }
                break;
        }
    }

    /// <summary>Narrows <paramref name="source"/> into little-endian <paramref name="dtype"/> elements (F16 and BF16 round to nearest even).</summary>
    /// <exception cref="UnsupportedModelException"><paramref name="dtype"/> is not F32, F16 or BF16.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is not exactly the size of the converted values.</exception>
    public static void FromSingle(ReadOnlySpan<float> source, SafeTensorDtype dtype, Span<byte> destination)
    {
        int elementBytes = WeightElementBytes(dtype);
        if (destination.Length != (long)source.Length * elementBytes)
        {
            throw new ArgumentException(
                $"{source.Length} values of {dtype} take {(long)source.Length * elementBytes} bytes; destination has {destination.Length}",
                nameof(destination));
        }
        Debug.Assert(BitConverter.IsLittleEndian, "safetensors data is little-endian");
        switch (dtype)
        {
            case SafeTensorDtype.F32:
                MemoryMarshal.AsBytes(source).CopyTo(destination);
                break;
            case SafeTensorDtype.F16:
                Span<Half> halves = MemoryMarshal.Cast<byte, Half>(destination);
                for (int i = 0; i < source.Length; i++)
                {
                    halves[i] = (Half)source[i];
                }
                break;
            default:
                Span<ushort> bfloat16s = MemoryMarshal.Cast<byte, ushort>(destination);
                for (int i = 0; i < source.Length; i++)
                {
                    bfloat16s[i] = SingleToBFloat16(source[i]);
                }
                break;
        }
    }

    private static int WeightElementBytes(SafeTensorDtype dtype) => dtype switch
    {
        SafeTensorDtype.F32 => 4,
        SafeTensorDtype.F16 or SafeTensorDtype.BF16 => 2,
        _ => throw new UnsupportedModelException($"{dtype} tensors cannot be converted to float; weights must be F32, F16 or BF16"),
    };
}
