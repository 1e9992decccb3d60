// A tensor announced to a writer before any data is written: name, dtype and shape fix its place and size in the
// file, so the header can be written first and the data streamed after it. Used by SafeTensorWriter and its sharded form.

namespace Sirocco.Engine.Formats.SafeTensors;

/// <summary>A tensor to be written: its name, element type and shape (outermost dimension first; empty for a scalar).</summary>
public sealed record SafeTensorDeclaration(string Name, SafeTensorDtype Dtype, long[] Shape)
{
    /// <summary>Product of <see cref="Shape"/>; -1 when a dimension is negative or the product overflows.</summary>
    public long ElementCount => SafeTensorDtypes.ElementCount(Shape);

    /// <summary>Bytes of data: element count × element size; -1 when that is not a valid size.</summary>
    public long ByteCount => ElementCount is long count and >= 0 ? Dtype.ByteCount(count) : -1;
}
