// Reads a GGUF model file (versions 2 and 3): header, metadata, tensor infos, and the tensor data as spans into a
// memory map. Every count, length and offset is checked against the file before use; a bad file raises one
// ModelFormatException naming the field, the offset and what was expected. Spec: ggml's docs/gguf.md.

using System.Buffers.Binary;
using System.Text;
using Sirocco.Kernels.Quant;

namespace Sirocco.Engine.Formats.Gguf;

/// <summary>An open GGUF file. Tensor data stays in the memory map; dispose to unmap.</summary>
public sealed class GgufFile : IDisposable
{
    /// <summary>"GGUF" read as a little-endian u32.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>Alignment of the data section and of every tensor when <c>general.alignment</c> is absent.</summary>
    public const int DefaultAlignment = 32;

    /// <summary>ggml's GGML_MAX_DIMS: a tensor has at most four dimensions.</summary>
    public const int MaxDimensions = 4;

    /// <summary>Deepest nesting of arrays accepted; real files nest at most once, a hostile one could nest millions deep.</summary>
    private const int MaxArrayDepth = 8;

    private readonly MappedFile _file;
    private readonly Dictionary<string, GgufValue> _metadata;
    private readonly Dictionary<string, GgufTensorInfo> _tensorsByName;

    private GgufFile(MappedFile file, int version, List<KeyValuePair<string, GgufValue>> metadata,
        List<GgufTensorInfo> tensors, int alignment, long dataOffset)
    {
        _file = file;
        Version = version;
        MetadataInOrder = metadata;
        _metadata = metadata.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        Tensors = tensors;
        _tensorsByName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        Alignment = alignment;
        DataOffset = dataOffset;
    }

    public string FilePath => _file.FilePath;

    /// <summary>File length in bytes.</summary>
    public long Length => _file.Length;

    /// <summary>GGUF version (2 or 3).</summary>
    public int Version { get; }

    /// <summary>Metadata in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> MetadataInOrder { get; }

    /// <summary>Metadata by key.</summary>
    public IReadOnlyDictionary<string, GgufValue> Metadata => _metadata;

    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>Alignment of the data section and of each tensor's offset.</summary>
    public int Alignment { get; }

    /// <summary>Absolute file offset where tensor data begins.</summary>
    public long DataOffset { get; }

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    /// <exception cref="ModelFormatException">The file is not a well-formed GGUF file.</exception>
    /// <exception cref="UnsupportedModelException">The file is well-formed but uses a version, byte order or tensor type
    /// that Sirocco does not support.</exception>
    public static GgufFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            return Parse(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The info of tensor <paramref name="name"/>, or null.</summary>
    public GgufTensorInfo? FindTensor(string name) => _tensorsByName.GetValueOrDefault(name);

    /// <summary>The info of tensor <paramref name="name"/>.</summary>
    /// <exception cref="ModelFormatException">No such tensor.</exception>
    public GgufTensorInfo GetTensor(string name) =>
        FindTensor(name) ?? throw new ModelFormatException(FilePath, $"tensor {name}", -1, "the tensor to be present", "no such tensor");

    /// <summary>The data of <paramref name="tensor"/> as a span into the memory map (no copy).</summary>
    public ReadOnlySpan<byte> TensorData(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.ByteCount > int.MaxValue)
        {
            throw new NotSupportedException($"{FilePath}: tensor {tensor.Name} is {tensor.ByteCount} bytes; spans stop at 2 GiB, use TensorRows");
        }
        return _file.Span(DataOffset + tensor.Offset, (int)tensor.ByteCount);
    }

    /// <summary>Rows [<paramref name="firstRow"/>, +<paramref name="rowCount"/>) of <paramref name="tensor"/> as a span.</summary>
    public ReadOnlySpan<byte> TensorRows(GgufTensorInfo tensor, long firstRow, int rowCount)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        long rowBytes = GgmlTypes.Get(tensor.Type).RowBytes(tensor.RowLength);
        if (firstRow < 0 || rowCount < 0 || firstRow + rowCount > tensor.RowCount)
        {
            throw new ArgumentOutOfRangeException(nameof(firstRow), $"rows [{firstRow}, {firstRow + rowCount}) outside {tensor.Name}'s {tensor.RowCount}");
        }
        return _file.Span(DataOffset + tensor.Offset + firstRow * rowBytes, checked((int)(rowCount * rowBytes)));
    }

    /// <summary>The raw mapped file (for kernels that read weights in place).</summary>
    public MappedFile Mapped => _file;

    public void Dispose() => _file.Dispose();

    // ---- typed metadata accessors: a missing key or a wrong type is a format error naming the key ----

    /// <summary>True when <paramref name="key"/> is present.</summary>
    public bool Has(string key) => _metadata.ContainsKey(key);

    /// <summary>A string value.</summary>
    public string GetString(string key) => Get(key).Value as string ?? throw WrongType(key, "a string");

    /// <summary>A string value, or null when absent.</summary>
    public string? FindString(string key) => Has(key) ? GetString(key) : null;

    /// <summary>An integer of any GGUF integer type, range-checked into an int.</summary>
    public int GetInt(string key)
    {
        long? v = Get(key).AsInteger();
        if (v is null || v < int.MinValue || v > int.MaxValue)
        {
            throw WrongType(key, "an integer that fits 32 bits");
        }
        return (int)v.Value;
    }

    /// <summary>An integer, or <paramref name="fallback"/> when absent.</summary>
    public int GetInt(string key, int fallback) => Has(key) ? GetInt(key) : fallback;

    /// <summary>A float (Float32 or Float64).</summary>
    public float GetFloat(string key) => (float)(Get(key).AsFloat() ?? throw WrongType(key, "a float"));

    /// <summary>A float, or <paramref name="fallback"/> when absent.</summary>
    public float GetFloat(string key, float fallback) => Has(key) ? GetFloat(key) : fallback;

    /// <summary>A bool, or <paramref name="fallback"/> when absent.</summary>
    public bool GetBool(string key, bool fallback) =>
        !Has(key) ? fallback : Get(key).Value is bool b ? b : throw WrongType(key, "a bool");

    /// <summary>An array whose elements have CLR type <typeparamref name="T"/>.</summary>
    public T[] GetArray<T>(string key)
    {
        var v = Get(key);
        return v.Type == GgufValueType.Array && v.Value is T[] a ? a : throw WrongType(key, $"an array of {GgufValue.ElementTypeOf(typeof(T))}");
    }

    private GgufValue Get(string key) =>
        _metadata.TryGetValue(key, out var v) ? v
        : throw new ModelFormatException(FilePath, $"metadata key {key}", -1, "the key to be present", "no such key");

    private ModelFormatException WrongType(string key, string expected)
    {
        var v = _metadata[key];
        string found = v.Type == GgufValueType.Array ? $"an array of {v.ElementType} ({v})" : $"{v.Type} {v}";
        return new ModelFormatException(FilePath, $"metadata key {key}", -1, expected, found);
    }

    // ---- parsing ----

    private static GgufFile Parse(MappedFile file)
    {
        var c = new GgufCursor(file);
        uint magic = c.U32("magic");
        if (magic != Magic)
        {
            throw c.Error("magic", 0, "\"GGUF\" (47 47 55 46)", Describe(file.Span(0, 4)));
        }
        uint version = c.U32("version");
        if (version is 1)
        {
            throw new UnsupportedModelException($"{file.FilePath}: GGUF version 1 (32-bit counts) is not supported; convert with a current llama.cpp (version 2 or 3)");
        }
        if (version is not (2 or 3))
        {
            // A byte-swapped small version means a big-endian file, which is a valid GGUF variant we do not read.
            if (BinaryPrimitives.ReverseEndianness(version) is 2 or 3)
            {
                throw new UnsupportedModelException($"{file.FilePath}: big-endian GGUF is not supported; use a little-endian file");
            }
            throw c.Error("version", 4, "2 or 3", version.ToString());
        }

        // Each tensor info needs at least: name length (8) + n_dims (4) + type (4) + offset (8).
        // Each metadata pair needs at least: key length (8) + value type (4) + smallest value (1).
        long tensorCountAt = c.Position;
        ulong rawTensorCount = c.U64("tensor_count");
        int metadataCount = c.Count("metadata_kv_count", 8 + 4 + 1);
        if (rawTensorCount > (ulong)(c.Remaining / 24))
        {
            throw c.Error("tensor_count", tensorCountAt, $"a count that fits the remaining {c.Remaining} bytes", rawTensorCount.ToString());
        }
        int tensorCount = (int)rawTensorCount;

        var metadata = new List<KeyValuePair<string, GgufValue>>(metadataCount);
        var seenKeys = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < metadataCount; i++)
        {
            long keyAt = c.Position;
            string key = c.String($"metadata[{i}] key");
            if (key.Length == 0)
            {
                throw c.Error($"metadata[{i}] key", keyAt, "a non-empty key", "an empty string");
            }
            if (!seenKeys.Add(key))
            {
                throw c.Error($"metadata key {key}", keyAt, "unique keys", "a duplicate of an earlier key");
            }
            long typeAt = c.Position;
            uint type = c.U32($"metadata key {key} value type");
            var value = ReadValue(c, key, type, typeAt, depth: 0);
            metadata.Add(new(key, value));
        }

        int alignment = DefaultAlignment;
        var alignmentValue = metadata.FirstOrDefault(kv => kv.Key == "general.alignment").Value;
        if (alignmentValue is not null)
        {
            if (alignmentValue.Value is not uint a || a == 0 || (a & (a - 1)) != 0 || a > 1 << 20)
            {
                throw new ModelFormatException(file.FilePath, "metadata key general.alignment", -1,
                    "a u32 power of two up to 1 MiB", $"{alignmentValue.Type} {alignmentValue}");
            }
            alignment = (int)a;
        }

        var tensors = new List<GgufTensorInfo>(tensorCount);
        var seenNames = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < tensorCount; i++)
        {
            tensors.Add(ReadTensorInfo(c, i, seenNames));
        }

        long dataOffset = AlignUp(c.Position, alignment);
        if (tensorCount > 0 && dataOffset > file.Length)
        {
            throw c.Error("tensor data", c.Position, $"the data section at offset {dataOffset}", $"end of file at {file.Length}");
        }
        CheckTensorExtents(file, tensors, alignment, dataOffset);
        return new GgufFile(file, (int)version, metadata, tensors, alignment, dataOffset);
    }

    private static GgufTensorInfo ReadTensorInfo(GgufCursor c, int index, HashSet<string> seenNames)
    {
        long nameAt = c.Position;
        string name = c.String($"tensor[{index}] name");
        if (name.Length == 0)
        {
            throw c.Error($"tensor[{index}] name", nameAt, "a non-empty name", "an empty string");
        }
        if (!seenNames.Add(name))
        {
            throw c.Error($"tensor {name}", nameAt, "unique tensor names", "a duplicate of an earlier tensor");
        }
        long dimsAt = c.Position;
        uint dimCount = c.U32($"tensor {name} n_dims");
        if (dimCount is 0 or > MaxDimensions)
        {
            throw c.Error($"tensor {name} n_dims", dimsAt, $"1 to {MaxDimensions}", dimCount.ToString());
        }
        var dims = new long[dimCount];
        long elements = 1;
        for (int d = 0; d < dimCount; d++)
        {
            long at = c.Position;
            ulong dim = c.U64($"tensor {name} dimension {d}");
            // ggml stores ne as int64; anything past 2^40 per dimension is certainly garbage.
            if (dim > 1UL << 40)
            {
                throw c.Error($"tensor {name} dimension {d}", at, "a dimension below 2^40", dim.ToString());
            }
            dims[d] = (long)dim;
            if (dims[d] != 0 && elements > long.MaxValue / dims[d] / 8)
            {
                throw c.Error($"tensor {name} dimensions", dimsAt, "an element count that fits 64 bits", string.Join("×", dims[..(d + 1)]));
            }
            elements *= dims[d];
        }
        long typeAt = c.Position;
        uint typeId = c.U32($"tensor {name} type");
        if (!GgmlTypes.TryGet(typeId, out var info))
        {
            throw new UnsupportedModelException($"{c.FilePath}: tensor {name} has ggml type id {typeId} (at offset {typeAt}), which Sirocco does not know; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K and the other ggml block types");
        }
        if (dims[0] % info.BlockSize != 0)
        {
            throw c.Error($"tensor {name} dimension 0", dimsAt + 4, $"a multiple of {info.Name}'s block size {info.BlockSize}", dims[0].ToString());
        }
        long offsetAt = c.Position;
        ulong offset = c.U64($"tensor {name} offset");
        if (offset > (ulong)long.MaxValue / 2)
        {
            throw c.Error($"tensor {name} offset", offsetAt, "an offset within the file", offset.ToString());
        }
        long bytes = GgufTensorInfo.ComputeByteCount(info.Type, dims);
        return new GgufTensorInfo(name, dims, info.Type, (long)offset, bytes);
    }

    /// <summary>Every tensor must start aligned, end inside the file, and not overlap another.</summary>
    private static void CheckTensorExtents(MappedFile file, List<GgufTensorInfo> tensors, int alignment, long dataOffset)
    {
        long dataBytes = file.Length - dataOffset;
        foreach (var t in tensors)
        {
            if (t.Offset % alignment != 0)
            {
                throw new ModelFormatException(file.FilePath, $"tensor {t.Name} offset", dataOffset + t.Offset,
                    $"a multiple of the alignment {alignment}", t.Offset.ToString());
            }
            if (t.Offset > dataBytes || t.ByteCount > dataBytes - t.Offset)
            {
                throw new ModelFormatException(file.FilePath, $"tensor {t.Name} data", dataOffset + t.Offset,
                    $"{t.ByteCount} bytes ({t.Type} {t.ShapeText}) inside the file", $"the file ends at {file.Length}");
            }
        }
        var sorted = tensors.Where(t => t.ByteCount > 0).OrderBy(t => t.Offset).ToList();
        for (int i = 1; i < sorted.Count; i++)
        {
            var prev = sorted[i - 1];
            var cur = sorted[i];
            if (cur.Offset < prev.Offset + prev.ByteCount)
            {
                throw new ModelFormatException(file.FilePath, $"tensor {cur.Name} data", dataOffset + cur.Offset,
                    $"data after the end of tensor {prev.Name} (offset {prev.Offset + prev.ByteCount})", $"overlap from offset {cur.Offset}");
            }
        }
    }

    private static GgufValue ReadValue(GgufCursor c, string key, uint type, long typeAt, int depth)
    {
        string field = $"metadata key {key}";
        switch ((GgufValueType)type)
        {
            case GgufValueType.UInt8: return GgufValue.Of(c.U8(field));
            case GgufValueType.Int8: return GgufValue.Of((sbyte)c.U8(field));
            case GgufValueType.UInt16: return GgufValue.Of(c.U16(field));
            case GgufValueType.Int16: return GgufValue.Of((short)c.U16(field));
            case GgufValueType.UInt32: return GgufValue.Of(c.U32(field));
            case GgufValueType.Int32: return GgufValue.Of((int)c.U32(field));
            case GgufValueType.Float32: return GgufValue.Of(c.F32(field));
            case GgufValueType.UInt64: return GgufValue.Of(c.U64(field));
            case GgufValueType.Int64: return GgufValue.Of((long)c.U64(field));
            case GgufValueType.Float64: return GgufValue.Of(c.F64(field));
            case GgufValueType.Bool:
                long boolAt = c.Position;
                byte b = c.U8(field);
                return b <= 1 ? GgufValue.Of(b == 1) : throw c.Error(field, boolAt, "a bool (0 or 1)", b.ToString());
            case GgufValueType.String: return GgufValue.Of(c.String(field));
            case GgufValueType.Array: return ReadArray(c, key, depth);
            default:
                throw c.Error($"{field} value type", typeAt, "a GGUF value type 0..12", type.ToString());
        }
    }

    private static GgufValue ReadArray(GgufCursor c, string key, int depth)
    {
        string field = $"metadata key {key}";
        if (depth >= MaxArrayDepth)
        {
            throw c.Error(field, c.Position, $"arrays nested at most {MaxArrayDepth} deep", "deeper nesting");
        }
        long typeAt = c.Position;
        uint elementType = c.U32($"{field} array element type");
        int minBytes = (GgufValueType)elementType switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
            GgufValueType.Array => 12,
            _ => throw c.Error($"{field} array element type", typeAt, "a GGUF value type 0..12", elementType.ToString()),
        };
        int count = c.Count($"{field} array length", minBytes);
        switch ((GgufValueType)elementType)
        {
            case GgufValueType.UInt8: return GgufValue.Array(ReadPrimitives(c, count, field, s => s[0]));
            case GgufValueType.Int8: return GgufValue.Array(ReadPrimitives(c, count, field, s => (sbyte)s[0]));
            case GgufValueType.Bool:
                var bools = new bool[count];
                for (int i = 0; i < count; i++)
                {
                    long at = c.Position;
                    byte b = c.U8(field);
                    bools[i] = b <= 1 ? b == 1 : throw c.Error($"{field}[{i}]", at, "a bool (0 or 1)", b.ToString());
                }
                return GgufValue.Array(bools);
            case GgufValueType.UInt16: return GgufValue.Array(ReadPrimitives(c, count, field, BinaryPrimitives.ReadUInt16LittleEndian));
            case GgufValueType.Int16: return GgufValue.Array(ReadPrimitives(c, count, field, BinaryPrimitives.ReadInt16LittleEndian));
            case GgufValueType.UInt32: return GgufValue.Array(ReadPrimitives(c, count, field, BinaryPrimitives.ReadUInt32LittleEndian));
            case GgufValueType.Int32: return GgufValue.Array(ReadPrimitives(c, count, field, BinaryPrimitives.ReadInt32LittleEndian));
            case GgufValueType.Float32: return GgufValue.Array(ReadPrimitives(c, count, field, BinaryPrimitives.ReadSingleLittleEndian));
            case GgufValueType.UInt64: return GgufValue.Array(ReadPrimitives(c, count, field, BinaryPrimitives.ReadUInt64LittleEndian));
            case GgufValueType.Int64: return GgufValue.Array(ReadPrimitives(c, count, field, BinaryPrimitives.ReadInt64LittleEndian));
            case GgufValueType.Float64: return GgufValue.Array(ReadPrimitives(c, count, field, BinaryPrimitives.ReadDoubleLittleEndian));
            case GgufValueType.String:
                var strings = new string[count];
                for (int i = 0; i < count; i++)
                {
                    strings[i] = c.String($"{field}[{i}]");
                }
                return GgufValue.Array(strings);
            default:
                // Each element of an array of arrays is itself (element type u32, length u64, elements), with no
                // extra type tag in front: the outer element type already says "array".
                var inner = new GgufValue[count];
                for (int i = 0; i < count; i++)
                {
                    inner[i] = ReadArray(c, $"{key}[{i}]", depth + 1);
                }
                return GgufValue.ArrayOfArrays(inner);
        }
    }

    private delegate T SpanReader<out T>(ReadOnlySpan<byte> bytes);

    /// <summary>Reads <paramref name="count"/> fixed-size little-endian elements in one bounds-checked take.</summary>
    private static T[] ReadPrimitives<T>(GgufCursor c, int count, string field, SpanReader<T> read)
        where T : unmanaged
    {
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        var bytes = c.Bytes(checked(count * size), field);
        var result = new T[count];
        for (int i = 0; i < count; i++)
        {
            result[i] = read(bytes.Slice(i * size, size));
        }
        return result;
    }

    internal static long AlignUp(long offset, int alignment) => (offset + alignment - 1) / alignment * alignment;

    private static string Describe(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder();
        foreach (byte b in bytes)
        {
            sb.Append(b.ToString("x2")).Append(' ');
        }
        return sb.ToString().TrimEnd();
    }
}
