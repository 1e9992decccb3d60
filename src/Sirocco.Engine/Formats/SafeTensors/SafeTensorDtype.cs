// The element types a safetensors header may name, with their sizes. The header parser (SafeTensorHeader) maps dtype
// strings onto this enum; the writer and the float conversions use the sizes and the weight-type check.

namespace Sirocco.Engine.Formats.SafeTensors;

/// <summary>Element type of a safetensors tensor, spelled as in the header's <c>"dtype"</c> field.</summary>
public enum SafeTensorDtype
{
    BOOL,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    F8_E8M0,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
    C64,

    /// <summary>Two 4-bit floats (E2M1) per byte.</summary>
    F4,
    F6_E2M3,
    F6_E3M2,
}

/// <summary>Sizes, names and weight support of <see cref="SafeTensorDtype"/> values.</summary>
public static class SafeTensorDtypes
{
    private static readonly Dictionary<string, SafeTensorDtype> s_byName =
        Enum.GetValues<SafeTensorDtype>().ToDictionary(d => d.ToString(), StringComparer.Ordinal);

    /// <summary>Bits per element: 8 for U8, 16 for BF16, 4 for F4, 6 for the F6 types.</summary>
    public static int BitSize(this SafeTensorDtype dtype) => dtype switch
    {
        SafeTensorDtype.F4 => 4,
        SafeTensorDtype.F6_E2M3 or SafeTensorDtype.F6_E3M2 => 6,
        SafeTensorDtype.BOOL or SafeTensorDtype.U8 or SafeTensorDtype.I8 or SafeTensorDtype.F8_E5M2
            or SafeTensorDtype.F8_E4M3 or SafeTensorDtype.F8_E8M0 => 8,
        SafeTensorDtype.I16 or SafeTensorDtype.U16 or SafeTensorDtype.F16 or SafeTensorDtype.BF16 => 16,
        SafeTensorDtype.I32 or SafeTensorDtype.U32 or SafeTensorDtype.F32 => 32,
        SafeTensorDtype.F64 or SafeTensorDtype.I64 or SafeTensorDtype.U64 or SafeTensorDtype.C64 => 64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a safetensors dtype"),
    };

    /// <summary>True for the types Sirocco loads as weights: F32, F16 and BF16.</summary>
    public static bool IsSupportedWeight(this SafeTensorDtype dtype) =>
        dtype is SafeTensorDtype.F32 or SafeTensorDtype.F16 or SafeTensorDtype.BF16;

    /// <summary>Parses a header dtype string (case-sensitive, as the format spells it).</summary>
    public static bool TryParse(string name, out SafeTensorDtype dtype) => s_byName.TryGetValue(name, out dtype);

    /// <summary>
    /// Bytes taken by <paramref name="elementCount"/> elements, or -1 when that overflows a long or does not fill
    /// whole bytes (an odd number of F4 values, for instance).
    /// </summary>
    public static long ByteCount(this SafeTensorDtype dtype, long elementCount)
    {
        if (elementCount < 0)
        {
            return -1;
        }
        int bits = dtype.BitSize();
        if (elementCount > long.MaxValue / bits)
        {
            return -1;
        }
        long totalBits = elementCount * bits;
        return totalBits % 8 == 0 ? totalBits / 8 : -1;
    }

    /// <summary>Product of <paramref name="shape"/>, 1 for a scalar; -1 when a dimension is negative or the product overflows.</summary>
    public static long ElementCount(ReadOnlySpan<long> shape)
    {
        long count = 1;
        bool hasZero = false;
        foreach (long dim in shape)
        {
            if (dim < 0)
            {
                return -1;
            }
            if (dim == 0)
            {
                hasZero = true;
            }
            else if (count > long.MaxValue / dim)
            {
                // Rejected even when a later dimension is zero: [2^40, 2^40, 0] is garbage, not an empty tensor.
                return -1;
            }
            else
            {
                count *= dim;
            }
        }
        return hasZero ? 0 : count;
    }
}
