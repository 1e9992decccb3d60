// One .safetensors file, memory-mapped: the validated header plus spans into the mapped data. The model loader reaches
// it through SafeTensorCheckpoint (which also handles sharded checkpoints); tests and tools may open files directly.

using System.Buffers.Binary;

namespace Sirocco.Engine.Formats.SafeTensors;

/// <summary>
/// A memory-mapped .safetensors file. Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON describing
/// each tensor, then the tensor data. <see cref="Data(string)"/> returns spans into the mapping (never copies),
/// valid until <see cref="Dispose"/>. Immutable once opened, so concurrent reads are safe.
/// </summary>
public sealed class SafeTensorFile : IDisposable
{
    /// <summary>Largest header accepted, as in the reference implementation: parsing a bigger JSON is a denial of service.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly Dictionary<string, SafeTensorInfo> _byName;

    private SafeTensorFile(MappedFile mapped, long headerBytes, SafeTensorHeader header)
    {
        Mapped = mapped;
        HeaderBytes = headerBytes;
        Tensors = header.Tensors;
        Metadata = header.Metadata;
        _byName = header.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The path the file was opened from.</summary>
    public string FilePath => Mapped.FilePath;

    /// <summary>The mapping, for code that must address tensors over 2 GiB through <see cref="MappedFile.PointerAt"/>.</summary>
    public MappedFile Mapped { get; }

    /// <summary>N, the JSON header length in bytes (padding included).</summary>
    public long HeaderBytes { get; }

    /// <summary>File offset of the data region: 8 + <see cref="HeaderBytes"/>.</summary>
    public long DataStart => 8 + HeaderBytes;

    /// <summary>All tensors, in header order.</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c> strings (e.g. <c>format</c> = <c>pt</c>); empty when absent.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Maps and validates <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="ModelFormatException">The file is not a well-formed safetensors file; the message names the
    /// file, the tensor or field, the offset, and what was expected versus found.</exception>
    public static SafeTensorFile Open(string path)
    {
        MappedFile mapped = MappedFile.Open(path);
        try
        {
            long length = mapped.Length;
            if (length < 8)
            {
                throw new ModelFormatException(path, "header length", 0, "an 8-byte little-endian header length", $"a file of {length} bytes");
            }
            ulong declared = BinaryPrimitives.ReadUInt64LittleEndian(mapped.Span(0, 8));
            if (declared > MaxHeaderBytes)
            {
                throw new ModelFormatException(path, "header length", 0, $"at most {MaxHeaderBytes} bytes", $"{declared}");
            }
            if (declared > (ulong)(length - 8))
            {
                throw new ModelFormatException(path, "header length", 0,
                    $"at most {length - 8} bytes (the rest of the file)", $"{declared}: the file is truncated or not safetensors");
            }
            if (declared < 2)
            {
                throw new ModelFormatException(path, "header length", 0, "at least 2 bytes for a JSON object", $"{declared}");
            }
            long headerBytes = (long)declared;
            ReadOnlySpan<byte> json = mapped.Span(8, (int)headerBytes);
            var header = SafeTensorHeader.Parse(path, json, 8 + headerBytes, length - 8 - headerBytes);
            return new SafeTensorFile(mapped, headerBytes, header);
        }
        catch
        {
            mapped.Dispose();
            throw;
        }
    }

    /// <summary>True when the file holds a tensor named <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Looks up a tensor by name.</summary>
    public bool TryGetTensor(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SafeTensorInfo? tensor) =>
        _byName.TryGetValue(name, out tensor);

    /// <summary>The tensor named <paramref name="name"/>, of any dtype.</summary>
    /// <exception cref="ModelFormatException">The file has no such tensor.</exception>
    public SafeTensorInfo GetTensor(string name) =>
        _byName.TryGetValue(name, out SafeTensorInfo? tensor)
            ? tensor
            : throw new ModelFormatException(FilePath, $"tensor {name}", -1, "a tensor of that name", "none");

    /// <summary>The tensor named <paramref name="name"/>, checked to be loadable as weights (F32, F16 or BF16).</summary>
    /// <exception cref="ModelFormatException">The file has no such tensor.</exception>
    /// <exception cref="UnsupportedModelException">The tensor has another dtype (I64, F8_E4M3, …).</exception>
    public SafeTensorInfo GetWeight(string name) => RequireWeight(GetTensor(name));

    /// <summary>The raw little-endian bytes of tensor <paramref name="name"/>, as a span into the mapped file.</summary>
    /// <exception cref="ModelFormatException">The file has no such tensor.</exception>
    /// <exception cref="UnsupportedModelException">The tensor is 2 GiB or more (use <see cref="Mapped"/> instead).</exception>
    public ReadOnlySpan<byte> Data(string name) => Data(GetTensor(name));

    /// <summary>The raw bytes of <paramref name="tensor"/>, which must come from this file.</summary>
    /// <exception cref="ArgumentException"><paramref name="tensor"/> belongs to another file.</exception>
    /// <exception cref="UnsupportedModelException">The tensor is 2 GiB or more (use <see cref="Mapped"/> instead).</exception>
    public ReadOnlySpan<byte> Data(SafeTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!_byName.TryGetValue(tensor.Name, out SafeTensorInfo? own) || !ReferenceEquals(own, tensor))
        {
            throw new ArgumentException($"tensor {tensor.Name} comes from {tensor.FilePath}, not {FilePath}", nameof(tensor));
        }
        if (tensor.ByteCount > int.MaxValue)
        {
            throw new UnsupportedModelException(
                $"{Path.GetFileName(FilePath)}: tensor {tensor.Name} is {tensor.Describe()}, {tensor.ByteCount} bytes; a span holds at most {int.MaxValue}");
        }
        return Mapped.Span(tensor.DataOffset, (int)tensor.ByteCount);
    }

    /// <summary>Tensor <paramref name="name"/> widened to floats in a new array (for small tensors and tests).</summary>
    /// <exception cref="ModelFormatException">The file has no such tensor.</exception>
    /// <exception cref="UnsupportedModelException">The dtype is not F32, F16 or BF16, or the tensor is too large for an array.</exception>
    public float[] ReadFloats(string name)
    {
        SafeTensorInfo tensor = GetWeight(name);
        if (tensor.ElementCount > Array.MaxLength)
        {
            throw new UnsupportedModelException(
                $"{Path.GetFileName(FilePath)}: tensor {name} has {tensor.ElementCount} elements, more than an array holds");
        }
        var values = new float[tensor.ElementCount];
        FloatConversion.ToSingle(Data(tensor), tensor.Dtype, values);
        return values;
    }

    /// <summary>Tensor <paramref name="name"/> widened to floats into <paramref name="destination"/>, which must hold exactly its elements.</summary>
    /// <exception cref="ModelFormatException">The file has no such tensor.</exception>
    /// <exception cref="UnsupportedModelException">The dtype is not F32, F16 or BF16.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> has the wrong length.</exception>
    public void ReadFloats(string name, Span<float> destination)
    {
        SafeTensorInfo tensor = GetWeight(name);
        if (destination.Length != tensor.ElementCount)
        {
            throw new ArgumentException($"tensor {name} has {tensor.ElementCount} elements; destination has {destination.Length}", nameof(destination));
        }
        FloatConversion.ToSingle(Data(tensor), tensor.Dtype, destination);
    }

    /// <summary>Unmaps the file; spans handed out before must no longer be used.</summary>
    public void Dispose() => Mapped.Dispose();

    internal static SafeTensorInfo RequireWeight(SafeTensorInfo tensor) =>
        tensor.Dtype.IsSupportedWeight()
            ? tensor
            : throw new UnsupportedModelException(
                $"{Path.GetFileName(tensor.FilePath)}: tensor {tensor.Name} is {tensor.Describe()}; weights must be F32, F16 or BF16");
}
