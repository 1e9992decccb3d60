// One tensor's entry in a safetensors header, validated: name, dtype, shape and where its bytes lie in the file.
// SafeTensorHeader creates them; SafeTensorFile and SafeTensorCheckpoint hand them to the model loader.

namespace Sirocco.Engine.Formats.SafeTensors;

/// <summary>A tensor described by a safetensors header. Shapes are row-major, outermost dimension first (as PyTorch).</summary>
public sealed class SafeTensorInfo
{
    internal SafeTensorInfo(string filePath, string name, SafeTensorDtype dtype, long[] shape, long elementCount, long dataOffset, long byteCount)
    {
        FilePath = filePath;
        Name = name;
        Dtype = dtype;
        Shape = shape;
        ElementCount = elementCount;
        DataOffset = dataOffset;
        ByteCount = byteCount;
    }

    /// <summary>The .safetensors file holding the data.</summary>
    public string FilePath { get; }

    /// <summary>Tensor name, e.g. <c>model.layers.0.self_attn.q_proj.weight</c>.</summary>
    public string Name { get; }

    public SafeTensorDtype Dtype { get; }

    /// <summary>Dimensions, outermost first; empty for a scalar. Do not modify.</summary>
    public long[] Shape { get; }

    /// <summary>Product of <see cref="Shape"/> (1 for a scalar, 0 when any dimension is 0).</summary>
    public long ElementCount { get; }

    /// <summary>Absolute byte offset of the first element in the file (header included).</summary>
    public long DataOffset { get; }

    /// <summary>Length of the data in bytes.</summary>
    public long ByteCount { get; }

    /// <summary>Shape and dtype as in error messages: <c>BF16 [4096×1024]</c>.</summary>
    public string Describe() => $"{Dtype} [{string.Join('×', Shape)}]";

    public override string ToString() => $"{Name}: {Describe()} at {DataOffset}";
}
