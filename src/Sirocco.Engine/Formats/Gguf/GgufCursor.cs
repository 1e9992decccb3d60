// Bounds-checked little-endian reads over a mapped GGUF file. Every read names the field it is reading, so a truncated
// or garbled header turns into a ModelFormatException that says which field, where, and what was wrong.

using System.Buffers.Binary;
using System.Text;

namespace Sirocco.Engine.Formats.Gguf;

internal sealed class GgufCursor
{
    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private readonly MappedFile _file;

    public GgufCursor(MappedFile file) => _file = file;

    /// <summary>Offset of the next byte to read.</summary>
    public long Position { get; set; }

    public long Remaining => _file.Length - Position;

    public string FilePath => _file.FilePath;

    public ModelFormatException Error(string field, long offset, string expected, string found) =>
        new(_file.FilePath, field, offset, expected, found);

    private ReadOnlySpan<byte> Take(int count, string field)
    {
        if (Remaining < count)
        {
            throw Error(field, Position, $"{count} more bytes", $"end of file after {Remaining}");
        }
        var span = _file.Span(Position, count);
        Position += count;
        return span;
    }

    /// <summary>The next <paramref name="count"/> bytes, as a span into the map.</summary>
    public ReadOnlySpan<byte> Bytes(int count, string field) => Take(count, field);

    public byte U8(string field) => Take(1, field)[0];

    public ushort U16(string field) => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, field));

    public uint U32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, field));

    public ulong U64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, field));

    public float F32(string field) => BinaryPrimitives.ReadSingleLittleEndian(Take(4, field));

    public double F64(string field) => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, field));

    /// <summary>A count that must fit the rest of the file when each element takes at least <paramref name="minElementBytes"/>.
    /// This is what keeps a hostile count from causing an allocation larger than the file.</summary>
    public int Count(string field, long minElementBytes)
    {
        long at = Position;
        ulong raw = U64(field);
        long limit = minElementBytes <= 0 ? int.MaxValue : Math.Min(int.MaxValue, Remaining / minElementBytes);
        if (raw > (ulong)limit)
        {
            throw Error(field, at, $"a count that fits the remaining {Remaining} bytes (at most {limit})", raw.ToString());
        }
        return (int)raw;
    }

    /// <summary>A gguf_string: u64 byte length, then that many bytes of UTF-8 (no terminator).</summary>
    public string String(string field)
    {
        long at = Position;
        ulong length = U64(field + " length");
        if (length > (ulong)Remaining)
        {
            throw Error(field + " length", at, $"a length within the remaining {Remaining} bytes", length.ToString());
        }
        if (length > int.MaxValue)
        {
            throw Error(field + " length", at, "a string shorter than 2 GiB", length.ToString());
        }
        long start = Position;
        var bytes = Take((int)length, field);
        try
        {
            return s_strictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Error(field, start, "valid UTF-8", "invalid UTF-8 bytes");
        }
    }
}
