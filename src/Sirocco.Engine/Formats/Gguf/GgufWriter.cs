// Writes GGUF files (version 3 by default): metadata and tensor infos are declared first, so the layout (every tensor's
// offset and the final file size) is known before any data is written; then tensor data streams to disk in declaration
// order. Used by `sirocco synth` (a 7B model never sits in memory) and by tests. Output goes to a temporary file that is
// renamed into place only when every tensor is complete.

using System.Text;
using Sirocco.Kernels.Quant;

namespace Sirocco.Engine.Formats.Gguf;

/// <summary>Builds the header of a GGUF file and then streams its tensor data.</summary>
public sealed class GgufWriter
{
    private readonly List<KeyValuePair<string, GgufValue>> _metadata = [];
    private readonly List<GgufTensorInfo> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private long _nextOffset;
    private byte[]? _header; // serialized header, cached until the next Add or AddTensor

    /// <param name="version">GGUF version to write: 2 or 3 (identical layouts for little-endian files).</param>
    public GgufWriter(int version = 3)
    {
        if (version is not (2 or 3))
        {
            throw new ArgumentOutOfRangeException(nameof(version), version, "GGUF version must be 2 or 3");
        }
        Version = version;
    }

    public int Version { get; }

    /// <summary>Alignment of the data section and of each tensor: <c>general.alignment</c> if set, else 32.</summary>
    public int Alignment { get; private set; } = GgufFile.DefaultAlignment;

    /// <summary>Declared tensors with their planned offsets.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors => _tensors;

    /// <summary>Declared metadata in order.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata => _metadata;

    /// <summary>Adds a metadata pair. Keys must be unique; <c>general.alignment</c> must be declared before any tensor.</summary>
    public GgufWriter Add(string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        if (_metadata.Any(kv => kv.Key == key))
        {
            throw new ArgumentException($"metadata key {key} is already set", nameof(key));
        }
        if (key == "general.alignment")
        {
            if (value.Value is not uint a || a == 0 || (a & (a - 1)) != 0)
            {
                throw new ArgumentException("general.alignment must be a u32 power of two", nameof(value));
            }
            if (_tensors.Count > 0)
            {
                throw new InvalidOperationException("general.alignment must be set before tensors are declared");
            }
            Alignment = (int)a;
        }
        _metadata.Add(new(key, value));
        _header = null;
        return this;
    }

    public GgufWriter Add(string key, string value) => Add(key, GgufValue.Of(value));

    public GgufWriter Add(string key, uint value) => Add(key, GgufValue.Of(value));

    public GgufWriter Add(string key, float value) => Add(key, GgufValue.Of(value));

    public GgufWriter Add(string key, bool value) => Add(key, GgufValue.Of(value));

    /// <summary>Declares a tensor. <paramref name="dimensions"/> are in ggml order (row length first).</summary>
    public GgufTensorInfo AddTensor(string name, GgmlType type, params long[] dimensions)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(dimensions);
        if (dimensions.Length is 0 or > GgufFile.MaxDimensions)
        {
            throw new ArgumentException($"tensor {name}: 1 to {GgufFile.MaxDimensions} dimensions, got {dimensions.Length}", nameof(dimensions));
        }
        if (dimensions.Any(d => d < 0))
        {
            throw new ArgumentException($"tensor {name}: negative dimension", nameof(dimensions));
        }
        var info = GgmlTypes.Get(type);
        if (dimensions[0] % info.BlockSize != 0)
        {
            throw new ArgumentException($"tensor {name}: row length {dimensions[0]} is not a multiple of {type}'s block size {info.BlockSize}", nameof(dimensions));
        }
        if (!_names.Add(name))
        {
            throw new ArgumentException($"tensor {name} is already declared", nameof(name));
        }
        long bytes = GgufTensorInfo.ComputeByteCount(type, dimensions);
        var tensor = new GgufTensorInfo(name, (long[])dimensions.Clone(), type, _nextOffset, bytes);
        _tensors.Add(tensor);
        _header = null;
        _nextOffset = GgufFile.AlignUp(_nextOffset + bytes, Alignment);
        return tensor;
    }

    /// <summary>Bytes of header, metadata and tensor infos, before the padding that aligns the data section.</summary>
    public long HeaderBytes => Header.Length;

    /// <summary>Absolute offset of the data section.</summary>
    public long DataOffset => GgufFile.AlignUp(HeaderBytes, Alignment);

    /// <summary>Size of the finished file: data section start plus every tensor, each padded to the alignment.</summary>
    public long FileBytes => DataOffset + _nextOffset;

    /// <summary>Creates the file's temporary twin, writes the header, and returns the writer for the tensor data.</summary>
    public GgufDataWriter Begin(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] header = Header;
        return new GgufDataWriter(path, header, GgufFile.AlignUp(header.Length, Alignment), _tensors, Alignment);
    }

    /// <summary>Writes a whole file whose tensor data is in memory (tests and small models).</summary>
    public void WriteFile(string path, IReadOnlyDictionary<string, byte[]> data)
    {
        ArgumentNullException.ThrowIfNull(data);
        using var writer = Begin(path);
        foreach (var t in _tensors)
        {
            writer.Write(data[t.Name]);
        }
        writer.Complete();
    }

    private byte[] Header => _header ??= SerializeHeader();

    private byte[] SerializeHeader()
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true);
        w.Write(GgufFile.Magic);
        w.Write((uint)Version);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value);
        }
        foreach (var t in _tensors)
        {
            WriteString(w, t.Name);
            w.Write((uint)t.Dimensions.Length);
            foreach (long d in t.Dimensions)
            {
                w.Write((ulong)d);
            }
            w.Write((uint)t.Type);
            w.Write((ulong)t.Offset);
        }
        w.Flush();
        return ms.ToArray();
    }

    // BinaryWriter is little-endian on every platform, matching GGUF.
    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValue value)
    {
        if (value.Type == GgufValueType.Array)
        {
            WriteArrayBody(w, value);
            return;
        }
        switch (value.Value)
        {
            case byte v: w.Write(v); break;
            case sbyte v: w.Write(v); break;
            case ushort v: w.Write(v); break;
            case short v: w.Write(v); break;
            case uint v: w.Write(v); break;
            case int v: w.Write(v); break;
            case float v: w.Write(v); break;
            case bool v: w.Write((byte)(v ? 1 : 0)); break;
            case string v: WriteString(w, v); break;
            case ulong v: w.Write(v); break;
            case long v: w.Write(v); break;
            case double v: w.Write(v); break;
            default: throw new InvalidOperationException($"unexpected GGUF value {value.Value.GetType().Name}");
        }
    }

    /// <summary>Element type u32, length u64, then the elements with no per-element tags.</summary>
    private static void WriteArrayBody(BinaryWriter w, GgufValue array)
    {
        w.Write((uint)array.ElementType);
        var items = (Array)array.Value;
        w.Write((ulong)items.Length);
        switch (items)
        {
            case GgufValue[] nested:
                foreach (var inner in nested)
                {
                    WriteArrayBody(w, inner);
                }
                break;
            case string[] strings:
                foreach (string s in strings)
                {
                    WriteString(w, s);
                }
                break;
            case bool[] bools:
                foreach (bool b in bools)
                {
                    w.Write((byte)(b ? 1 : 0));
                }
                break;
            default:
                foreach (object item in items)
                {
                    WriteValue(w, ScalarOf(item));
                }
                break;
        }
    }

    private static GgufValue ScalarOf(object item) => item switch
    {
        byte v => GgufValue.Of(v),
        sbyte v => GgufValue.Of(v),
        ushort v => GgufValue.Of(v),
        short v => GgufValue.Of(v),
        uint v => GgufValue.Of(v),
        int v => GgufValue.Of(v),
        float v => GgufValue.Of(v),
        ulong v => GgufValue.Of(v),
        long v => GgufValue.Of(v),
        double v => GgufValue.Of(v),
        _ => throw new InvalidOperationException($"unexpected GGUF array element {item.GetType().Name}"),
    };
}

/// <summary>Streams tensor data into a GGUF file in declaration order. Each <see cref="Write"/> appends to the current
/// tensor; when a tensor is full the writer pads to the alignment and moves to the next. <see cref="Complete"/> checks
/// that every byte arrived, flushes to disk and renames the temporary file into place; disposing without completing
/// deletes the temporary file, so a half-written model never appears under its final name.</summary>
public sealed class GgufDataWriter : IDisposable
{
    private readonly string _path;
    private readonly string _tempPath;
    private readonly FileStream _stream;
    private readonly IReadOnlyList<GgufTensorInfo> _tensors;
    private readonly int _alignment;
    private int _current;
    private long _writtenInCurrent;
    private bool _completed;

    internal GgufDataWriter(string path, byte[] header, long dataOffset, IReadOnlyList<GgufTensorInfo> tensors, int alignment)
    {
        _path = Path.GetFullPath(path);
        _tempPath = _path + ".partial-" + Environment.ProcessId;
        _tensors = tensors;
        _alignment = alignment;
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
        _stream = new FileStream(_tempPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        _stream.Write(header);
        WritePadding(dataOffset - header.Length);
        SkipEmptyTensors();
    }

    /// <summary>The tensor the next bytes belong to, or null when all are written.</summary>
    public GgufTensorInfo? CurrentTensor => _current < _tensors.Count ? _tensors[_current] : null;

    /// <summary>Appends <paramref name="bytes"/> to the current tensor (and on into the following ones).</summary>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        while (!bytes.IsEmpty)
        {
            var tensor = CurrentTensor ?? throw new InvalidOperationException($"{_path}: {bytes.Length} bytes written past the last tensor");
            int take = (int)Math.Min(bytes.Length, tensor.ByteCount - _writtenInCurrent);
            _stream.Write(bytes[..take]);
            bytes = bytes[take..];
            _writtenInCurrent += take;
            if (_writtenInCurrent == tensor.ByteCount)
            {
                WritePadding(GgufFile.AlignUp(tensor.ByteCount, _alignment) - tensor.ByteCount);
                _current++;
                _writtenInCurrent = 0;
                SkipEmptyTensors();
            }
        }
    }

    /// <summary>Checks every tensor is complete, fsyncs, and renames the file into place.</summary>
    public void Complete()
    {
        if (CurrentTensor is { } missing)
        {
            throw new InvalidOperationException($"{_path}: tensor {missing.Name} has {_writtenInCurrent} of {missing.ByteCount} bytes; {_tensors.Count - _current} tensors incomplete");
        }
        _stream.Flush(flushToDisk: true);
        _stream.Dispose();
        File.Move(_tempPath, _path, overwrite: true);
        _completed = true;
    }

    public void Dispose()
    {
        if (!_completed)
        {
            _stream.Dispose();
            File.Delete(_tempPath);
            _completed = true;
        }
    }

    private void SkipEmptyTensors()
    {
        while (CurrentTensor is { ByteCount: 0 })
        {
            _current++;
        }
    }

    private void WritePadding(long count)
    {
        Span<byte> zeros = stackalloc byte[64];
        zeros.Clear();
        while (count > 0)
        {
            int n = (int)Math.Min(count, zeros.Length);
            _stream.Write(zeros[..n]);
            count -= n;
        }
    }
}
