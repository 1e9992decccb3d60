// Streams one .safetensors file: tensors are declared up front so the header is written first, then each tensor's
// bytes follow in declaration order, in any number of chunks, so a 14 GB checkpoint takes constant memory.
// Used by converters, the synthetic-model builder and ShardedSafeTensorWriter.

using System.Buffers;
using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Sirocco.Engine.Formats.SafeTensors;

/// <summary>
/// Streams tensors into a .safetensors file. Data goes to a temporary file next to the target, which is renamed over
/// it by <see cref="Complete"/>; disposing without completing deletes the temporary file and leaves the target as it was.
/// </summary>
/// <remarks>
/// Tensors are laid out in declaration order with no padding between them (the format allows none), so a tensor is
/// aligned to its element size only if the bytes before it are a multiple of it. Declare larger element types first
/// (as the reference writer does by sorting) when alignment matters; readers here do not require it.
/// </remarks>
public sealed class SafeTensorWriter : IDisposable
{
    /// <summary>The metadata transformers writes, and expects when it loads a checkpoint: <c>format</c> = <c>pt</c>.</summary>
    public static IReadOnlyDictionary<string, string> DefaultMetadata { get; } = new Dictionary<string, string> { ["format"] = "pt" };

    private const int FileBufferBytes = 1 << 20;
    private const int ConversionChunk = 1 << 16;

    private readonly SafeTensorDeclaration[] _tensors;
    private readonly long[] _byteCounts;
    private readonly Dictionary<string, int> _indexByName;
    private readonly string _temporaryPath;
    private FileStream? _stream;
    private int _current;
    private long _writtenInCurrent;
    private bool _completed;

    private SafeTensorWriter(string path, string temporaryPath, FileStream stream, SafeTensorDeclaration[] tensors, long[] byteCounts, long totalBytes)
    {
        FilePath = path;
        _temporaryPath = temporaryPath;
        _stream = stream;
        _tensors = tensors;
        _byteCounts = byteCounts;
        _indexByName = new Dictionary<string, int>(tensors.Length, StringComparer.Ordinal);
        for (int i = 0; i < tensors.Length; i++)
        {
            _indexByName.Add(tensors[i].Name, i);
        }
        FileBytes = totalBytes;
        SkipCompleteTensors();
    }

    /// <summary>The file that exists once <see cref="Complete"/> has returned.</summary>
    public string FilePath { get; }

    /// <summary>Size of the finished file: 8 + header + data.</summary>
    public long FileBytes { get; }

    /// <summary>The tensors, in the order their data must be written.</summary>
    public IReadOnlyList<SafeTensorDeclaration> Tensors => _tensors;

    /// <summary>Name of the tensor whose bytes are expected next, or null when all have been written.</summary>
    public string? NextTensor => _current < _tensors.Length ? _tensors[_current].Name : null;

    /// <summary>
    /// Starts writing <paramref name="path"/> and writes its header. <paramref name="metadata"/> null stands for
    /// <see cref="DefaultMetadata"/>; pass an empty dictionary for a header without <c>__metadata__</c>.
    /// </summary>
    /// <exception cref="ArgumentException">A name is empty, repeated or <c>__metadata__</c>; a shape has a negative
    /// dimension or a size that overflows; or an F4/F6 tensor does not fill whole bytes.</exception>
    public static SafeTensorWriter Create(string path, IEnumerable<SafeTensorDeclaration> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        SafeTensorDeclaration[] declared = [.. tensors];
        long[] byteCounts = Validate(declared);
        byte[] header = BuildHeader(declared, byteCounts, metadata ?? DefaultMetadata);
        long dataBytes = 0;
        foreach (long count in byteCounts)
        {
            dataBytes = checked(dataBytes + count);
        }

        string fullPath = Path.GetFullPath(path);
        string temporaryPath = $"{fullPath}.{Guid.NewGuid():N}.tmp";
        var stream = new FileStream(temporaryPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, FileBufferBytes);
        try
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            return new SafeTensorWriter(fullPath, temporaryPath, stream, declared, byteCounts, checked(8 + header.Length + dataBytes));
        }
        catch
        {
            stream.Dispose();
            File.Delete(temporaryPath);
            throw;
        }
    }

    /// <summary>
    /// Appends <paramref name="data"/> (little-endian elements) to tensor <paramref name="name"/>, which must be the
    /// first tensor not yet complete. Several calls may fill one tensor; zero-length tensors need no call.
    /// </summary>
    /// <exception cref="InvalidOperationException"><paramref name="name"/> is not the tensor due next, or the data
    /// would run past its declared size.</exception>
    public void WriteTensor(string name, ReadOnlySpan<byte> data)
    {
        FileStream stream = CheckWritable(name, data.Length);
        stream.Write(data);
        Advance(data.Length);
    }

    /// <summary>
    /// Appends <paramref name="values"/> to tensor <paramref name="name"/>, converted to its dtype (F32, F16 or BF16;
    /// narrowing rounds to nearest even). Same ordering rules as <see cref="WriteTensor(string, ReadOnlySpan{byte})"/>.
    /// </summary>
    /// <exception cref="UnsupportedModelException">The tensor's dtype is not F32, F16 or BF16.</exception>
    /// <exception cref="InvalidOperationException">Out of order, or past the tensor's declared size.</exception>
    public void WriteTensorFloats(string name, ReadOnlySpan<float> values)
    {
        SafeTensorDtype dtype = _indexByName.TryGetValue(name, out int index) ? _tensors[index].Dtype : SafeTensorDtype.F32;
        if (!dtype.IsSupportedWeight())
        {
            throw new UnsupportedModelException($"tensor {name} is {dtype}; only F32, F16 and BF16 tensors can be written from floats");
        }
        int elementBytes = dtype.BitSize() / 8;
        FileStream stream = CheckWritable(name, (long)values.Length * elementBytes);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ConversionChunk * elementBytes);
        try
        {
            while (!values.IsEmpty)
            {
                int count = Math.Min(values.Length, ConversionChunk);
                Span<byte> bytes = buffer.AsSpan(0, count * elementBytes);
                FloatConversion.FromSingle(values[..count], dtype, bytes);
                stream.Write(bytes);
                Advance(bytes.Length);
                values = values[count..];
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Checks that every tensor was written in full, flushes to disk and renames the file into place.</summary>
    /// <exception cref="InvalidOperationException">A tensor is missing data.</exception>
    public void Complete()
    {
        ObjectDisposedException.ThrowIf(_stream is null, this);
        if (_current < _tensors.Length)
        {
            throw new InvalidOperationException(
                $"{Path.GetFileName(FilePath)}: tensor {_tensors[_current].Name} has {_writtenInCurrent} of {_byteCounts[_current]} bytes; " +
                $"{_tensors.Length - _current} tensor(s) incomplete");
        }
        if (_stream.Position != FileBytes)
        {
            throw new System.Diagnostics.UnreachableException($"wrote {_stream.Position} bytes, expected {FileBytes}");
        }
        _stream.Flush(flushToDisk: true);
        _stream.Dispose();
        _stream = null;
        File.Move(_temporaryPath, FilePath, overwrite: true);
        _completed = true;
    }

    /// <summary>Closes the file; when <see cref="Complete"/> was not called, deletes the partial temporary file.</summary>
    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
        if (!_completed)
        {
            try
            {
                File.Delete(_temporaryPath);
            }
            catch (IOException)
            {
                // Best effort: the partial file has a .tmp name and is never mistaken for a checkpoint.
            }
            catch (UnauthorizedAccessException)
            {
                // As above.
            }
        }
    }

    /// <summary>
    /// The header JSON for <paramref name="tensors"/> laid out back to back in order, padded with spaces so that the
    /// data starts at a multiple of 8 bytes (8 + header length ≡ 0 mod 8), as the reference writer pads it.
    /// </summary>
    internal static byte[] BuildHeader(SafeTensorDeclaration[] tensors, long[] byteCounts, IReadOnlyDictionary<string, string> metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps non-ASCII names as UTF-8 rather than \u escapes; quotes and control characters are
        // still escaped, and the header is never embedded in HTML.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata.Count > 0)
            {
                json.WriteStartObject(SafeTensorHeader.MetadataKey);
                foreach (var (key, value) in metadata)
                {
                    json.WriteString(key, value);
                }
                json.WriteEndObject();
            }
            long offset = 0;
            for (int i = 0; i < tensors.Length; i++)
            {
                json.WriteStartObject(tensors[i].Name);
                json.WriteString("dtype", tensors[i].Dtype.ToString());
                json.WriteStartArray("shape");
                foreach (long dim in tensors[i].Shape)
                {
                    json.WriteNumberValue(dim);
                }
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + byteCounts[i]);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += byteCounts[i];
            }
            json.WriteEndObject();
        }
        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        byte[] header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    /// <summary>Checks the declarations and returns each one's byte count.</summary>
    internal static long[] Validate(SafeTensorDeclaration[] tensors)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var byteCounts = new long[tensors.Length];
        for (int i = 0; i < tensors.Length; i++)
        {
            SafeTensorDeclaration t = tensors[i] ?? throw new ArgumentException($"declaration {i} is null", nameof(tensors));
            if (string.IsNullOrEmpty(t.Name) || t.Name == SafeTensorHeader.MetadataKey)
            {
                throw new ArgumentException($"declaration {i}: tensor name \"{t.Name}\" is empty or reserved", nameof(tensors));
            }
            if (!names.Add(t.Name))
            {
                throw new ArgumentException($"tensor {t.Name} is declared twice", nameof(tensors));
            }
            if (t.Shape is null || !Enum.IsDefined(t.Dtype))
            {
                throw new ArgumentException($"tensor {t.Name}: missing shape or unknown dtype {t.Dtype}", nameof(tensors));
            }
            byteCounts[i] = t.ByteCount;
            if (byteCounts[i] < 0)
            {
                throw new ArgumentException(
                    $"tensor {t.Name}: shape [{string.Join(", ", t.Shape)}] of {t.Dtype} has a negative dimension, overflows, or does not fill whole bytes",
                    nameof(tensors));
            }
        }
        return byteCounts;
    }

    private FileStream CheckWritable(string name, long byteCount)
    {
        ObjectDisposedException.ThrowIf(_stream is null, this);
        if (_current >= _tensors.Length || _tensors[_current].Name != name)
        {
            if (byteCount == 0 && _indexByName.ContainsKey(name))
            {
                return _stream; // An empty write changes nothing, whatever tensor it names.
            }
            string due = _current < _tensors.Length ? $"tensor {_tensors[_current].Name} is due next" : "all tensors are complete";
            string known = _indexByName.ContainsKey(name) ? "" : " (it was never declared)";
            throw new InvalidOperationException($"{Path.GetFileName(FilePath)}: cannot write tensor {name}{known}: {due}");
        }
        long remaining = _byteCounts[_current] - _writtenInCurrent;
        if (byteCount > remaining)
        {
            throw new InvalidOperationException(
                $"{Path.GetFileName(FilePath)}: tensor {name} is {_byteCounts[_current]} bytes; {_writtenInCurrent} written, {byteCount} more would overrun it");
        }
        return _stream;
    }

    private void Advance(long byteCount)
    {
        _writtenInCurrent += byteCount;
        SkipCompleteTensors();
    }

    /// <summary>Moves past the current tensor once it is full, and past any zero-length tensors after it.</summary>
    private void SkipCompleteTensors()
    {
        while (_current < _tensors.Length && _writtenInCurrent == _byteCounts[_current])
        {
            _current++;
            _writtenInCurrent = 0;
        }
    }
}
