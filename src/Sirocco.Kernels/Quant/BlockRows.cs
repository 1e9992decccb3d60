// Length checks shared by everything that converts a row of elements to or from whole ggml blocks.
// Called once per row by the reference quantizers and dequantizers (and later by the SIMD kernels).

namespace Sirocco.Kernels.Quant;

/// <summary>Validates that a row of elements and a row of block bytes describe the same whole number of blocks.</summary>
internal static class BlockRows
{
    /// <summary>Checks that <paramref name="elementCount"/> is a whole number of <paramref name="type"/> blocks and that
    /// <paramref name="byteCount"/> is exactly the bytes of those blocks; returns the block count.</summary>
    /// <exception cref="ArgumentException">Either length is wrong; the message names both lengths.</exception>
    public static int Check(GgmlType type, int elementCount, int byteCount, string elementsParam, string bytesParam)
    {
        var info = GgmlTypes.Get(type);
        if (elementCount % info.BlockSize != 0)
        {
            throw new ArgumentException(
                $"{info.Name} rows are whole blocks of {info.BlockSize} elements; got {elementCount} elements.", elementsParam);
        }
        long expectedBytes = info.RowBytes(elementCount);
        if (byteCount != expectedBytes)
        {
            throw new ArgumentException(
                $"A {info.Name} row of {elementCount} elements takes {expectedBytes} bytes; got {byteCount}.", bytesParam);
        }
        return elementCount / info.BlockSize;
    }
}
