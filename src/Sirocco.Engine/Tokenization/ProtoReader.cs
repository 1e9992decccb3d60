// A bounds-checked reader for the protobuf wire format (varints, fixed32/64, length-delimited fields), just enough
// to walk SentencePiece's ModelProto. SentencePieceModelReader drives it; every malformed byte becomes a
// ModelFormatException that names the file, the field and the absolute offset, never an IndexOutOfRange or a hang.

using System.Diagnostics;
using System.Runtime.CompilerServices;
using Sirocco.Engine.Formats;

namespace Sirocco.Engine.Tokenization;

/// <summary>Protobuf wire types (the low three bits of a field tag).</summary>
internal enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    StartGroup = 3,
    EndGroup = 4,
    Fixed32 = 5,
}

/// <summary>Reads one protobuf message from a span. Offsets in errors are absolute: <c>baseOffset</c> + position.</summary>
internal ref struct ProtoReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly long _baseOffset;
    private readonly string _path;
    private readonly string _message;
    private int _position;
    private long _tagOffset;

    /// <param name="data">The message bytes.</param>
    /// <param name="baseOffset">Offset of <paramref name="data"/> in the file, for error messages.</param>
    /// <param name="path">File name for error messages.</param>
    /// <param name="message">Message name (e.g. "ModelProto.pieces[12]") used as the prefix of field names in errors.</param>
    public ProtoReader(ReadOnlySpan<byte> data, long baseOffset, string path, string message)
    {
        _data = data;
        _baseOffset = baseOffset;
        _path = path;
        _message = message;
        _position = 0;
    }

    /// <summary>Absolute file offset of the next unread byte.</summary>
    public readonly long Offset => _baseOffset + _position;

    /// <summary>Reads the next field tag; false at the end of the message.</summary>
    /// <exception cref="ModelFormatException">The tag is truncated, names field 0, or uses a group wire type.</exception>
    public bool TryReadTag(out int fieldNumber, out WireType wireType)
    {
        if (_position >= _data.Length)
        {
            fieldNumber = 0;
            wireType = default;
            return false;
        }
        long tagOffset = Offset;
        _tagOffset = tagOffset;
        ulong tag = ReadVarint("tag");
        ulong number = tag >> 3;
        wireType = (WireType)(int)(tag & 7);
        // Field numbers are at most 2^29 - 1; zero is reserved and never valid on the wire.
        if (number == 0 || number > 0x1FFF_FFFF)
        {
            throw Error("tag", tagOffset, "a field number in 1..536870911", number.ToString());
        }
        fieldNumber = (int)number;
        if (wireType is WireType.StartGroup or WireType.EndGroup || (int)wireType > 5)
        {
            // Groups are deprecated and SentencePiece never writes them; 6 and 7 are not wire types at all.
            throw Error($"field {fieldNumber}", tagOffset, "wire type 0, 1, 2 or 5", $"wire type {(int)wireType}");
        }
        return true;
    }

    /// <summary>Reads a base-128 varint of at most 10 bytes.</summary>
    public ulong ReadVarint(string field)
    {
        long start = Offset;
        ulong result = 0;
        for (int shift = 0, i = 0; i < 10; i++, shift += 7)
        {
            if (_position >= _data.Length)
            {
                throw Error(field, start, "a complete varint", "end of data inside the varint");
            }
            byte b = _data[_position++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }
        }
        throw Error(field, start, "a varint of at most 10 bytes", "a longer varint");
    }

    /// <summary>Reads a little-endian 32-bit value (wire type 5).</summary>
    public uint ReadFixed32(string field)
    {
        if (_data.Length - _position < 4)
        {
            throw Error(field, Offset, "4 bytes of fixed32", $"{_data.Length - _position} bytes before the end");
        }
        uint value = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(_data.Slice(_position, 4));
        _position += 4;
        return value;
    }

    /// <summary>Reads a length-delimited payload (wire type 2) and returns it with its absolute offset.</summary>
    public ReadOnlySpan<byte> ReadLengthDelimited(string field, out long payloadOffset)
    {
        long lengthOffset = Offset;
        ulong length = ReadVarint(field);
        int remaining = _data.Length - _position;
        if (length > (ulong)remaining)
        {
            throw Error(field, lengthOffset, $"a length of at most {remaining} (bytes left in the enclosing message)", length.ToString());
        }
        payloadOffset = Offset;
        var payload = _data.Slice(_position, (int)length);
        _position += (int)length;
        return payload;
    }

    /// <summary>Skips the value of a field this reader does not interpret.</summary>
    public void Skip(int fieldNumber, WireType wireType)
    {
        string field = $"field {fieldNumber}";
        switch (wireType)
        {
            case WireType.Varint:
                ReadVarint(field);
                break;
            case WireType.Fixed64:
                if (_data.Length - _position < 8)
                {
                    throw Error(field, Offset, "8 bytes of fixed64", $"{_data.Length - _position} bytes before the end");
                }
                _position += 8;
                break;
            case WireType.LengthDelimited:
                ReadLengthDelimited(field, out _);
                break;
            case WireType.Fixed32:
                ReadFixed32(field);
                break;
            default:
                throw new UnreachableException("TryReadTag rejects group and invalid wire types");
        }
    }

    /// <summary>Checks that the field whose tag was just read arrived with the wire type its schema declares.</summary>
    public readonly void Expect(string field, WireType actual, WireType expected)
    {
        if (actual != expected)
        {
            ThrowWrongWireType(field, actual, expected, _tagOffset);
        }
    }

    /// <summary>A format error for <paramref name="field"/> of the message this reader walks.</summary>
    public readonly ModelFormatException Error(string field, long offset, string expected, string found) =>
        new(_path, $"{_message}.{field}", offset, expected, found);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private readonly void ThrowWrongWireType(string field, WireType actual, WireType expected, long tagOffset) =>
        throw Error(field, tagOffset, $"wire type {(int)expected} ({expected})", $"wire type {(int)actual} ({actual})");
}
