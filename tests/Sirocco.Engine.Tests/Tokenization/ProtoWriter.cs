// A tiny protobuf writer for building SentencePiece ModelProto bytes in tests: synthetic vocabularies that exercise
// user-defined, unused and unknown pieces, and deliberately broken files for the reader's error paths.

using System.Buffers.Binary;
using System.Text;

namespace Sirocco.Engine.Tests.Tokenization;

internal sealed class ProtoWriter
{
    private readonly List<byte> _bytes = [];

    public ProtoWriter Varint(int field, ulong value) => Tag(field, 0).RawVarint(value);

    public ProtoWriter Fixed32(int field, float value)
    {
        Tag(field, 5);
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(b, value);
        _bytes.AddRange(b.ToArray());
        return this;
    }

    public ProtoWriter Bytes(int field, byte[] value) => Tag(field, 2).RawVarint((ulong)value.Length).Raw(value);

    public ProtoWriter String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    public ProtoWriter Message(int field, ProtoWriter inner) => Bytes(field, inner.ToArray());

    public ProtoWriter Tag(int field, int wireType) => RawVarint(((ulong)field << 3) | (uint)wireType);

    public ProtoWriter RawVarint(ulong value)
    {
        while (value >= 0x80)
        {
            _bytes.Add((byte)(value | 0x80));
            value >>= 7;
        }
        _bytes.Add((byte)value);
        return this;
    }

    public ProtoWriter Raw(params byte[] bytes)
    {
        _bytes.AddRange(bytes);
        return this;
    }

    public byte[] ToArray() => [.. _bytes];

    /// <summary>A ModelProto with the given pieces (piece, score, type) and spec fields.</summary>
    public static byte[] Model(IEnumerable<(string Piece, float Score, int Type)> pieces, int modelType = 2, bool byteFallback = false,
        string normalizer = "identity", bool removeExtraWhitespaces = false, byte[]? charsMap = null)
    {
        var model = new ProtoWriter();
        foreach (var (piece, score, type) in pieces)
        {
            model.Message(1, new ProtoWriter().String(1, piece).Fixed32(2, score).Varint(3, (ulong)type));
        }
        model.Message(2, new ProtoWriter().Varint(3, (ulong)modelType).Varint(4, 8000).Varint(35, byteFallback ? 1UL : 0)
            .Varint(40, 0).Varint(41, 1).Varint(42, 2).Varint(43, ulong.MaxValue)); // pad_id = -1, sign-extended
        var norm = new ProtoWriter().String(1, normalizer).Varint(3, 1).Varint(4, removeExtraWhitespaces ? 1UL : 0);
        if (charsMap is not null)
        {
            norm.Bytes(2, charsMap);
        }
        model.Message(3, norm);
        return model.ToArray();
    }

    /// <summary>A small vocabulary: specials, ▁, a, b, c, ab, ▁a, ▁ab, ▁x (x itself is no piece), the user-defined
    /// &lt;U&gt;, and the unused bc.</summary>
    public static (string Piece, float Score, int Type)[] SmallVocabulary =>
    [
        ("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3),
        ("\u2581", -1, 1), ("a", -2, 1), ("b", -3, 1), ("c", -4, 1),
        ("ab", -5, 1), ("\u2581a", -6, 1), ("\u2581ab", -7, 1), ("\u2581x", -8, 1),
        ("<U>", 0, 4), ("bc", 5, 5),
    ];
}
