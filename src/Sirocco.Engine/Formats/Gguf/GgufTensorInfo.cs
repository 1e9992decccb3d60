// One tensor's entry in a GGUF file's tensor-info table: name, shape, element type and where its data lies.

using Sirocco.Kernels.Quant;

namespace Sirocco.Engine.Formats.Gguf;

/// <summary>A tensor described by a GGUF header.</summary>
/// <param name="Name">Tensor name, e.g. <c>blk.0.attn_q.weight</c>.</param>
/// <param name="Dimensions">ggml order: <c>Dimensions[0]</c> is the innermost (row length). A PyTorch weight [out, in]
/// is stored as [in, out].</param>
/// <param name="Type">Element type.</param>
/// <param name="Offset">Start of the data relative to the file's data section (a multiple of the alignment).</param>
/// <param name="ByteCount">Bytes of data.</param>
public sealed record GgufTensorInfo(string Name, long[] Dimensions, GgmlType Type, long Offset, long ByteCount)
{
    /// <summary>Total elements (product of the dimensions).</summary>
    public long ElementCount => Dimensions.Aggregate(1L, (a, b) => a * b);

    /// <summary>Elements per row (<c>Dimensions[0]</c>), or 1 for a scalar.</summary>
    public long RowLength => Dimensions.Length == 0 ? 1 : Dimensions[0];

    /// <summary>Number of rows (every dimension but the first).</summary>
    public long RowCount => Dimensions.Length <= 1 ? 1 : ElementCount / Dimensions[0];

    /// <summary>Shape in the order PyTorch and error messages use (outermost first), e.g. "[32000×4096]".</summary>
    public string ShapeText => "[" + string.Join("×", Dimensions.Reverse()) + "]";

    /// <summary>Bytes taken by <paramref name="dimensions"/> elements of <paramref name="type"/>; the row length must be a
    /// whole number of blocks.</summary>
    public static long ComputeByteCount(GgmlType type, IReadOnlyList<long> dimensions)
    {
        var info = GgmlTypes.Get(type);
        long rowLength = dimensions.Count == 0 ? 1 : dimensions[0];
        long rows = 1;
        for (int i = 1; i < dimensions.Count; i++)
        {
            rows = checked(rows * dimensions[i]);
        }
        return checked(rowLength / info.BlockSize * info.BlockBytes * rows);
    }
}
