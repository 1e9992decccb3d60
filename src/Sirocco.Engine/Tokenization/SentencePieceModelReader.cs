// Reads SentencePiece's tokenizer.model (a serialized ModelProto, sentencepiece_model.proto) into a Tokenizer:
// pieces with scores and types, the trainer_spec and normalizer_spec fields that change encoding, nothing else.
// Called by TokenizerLoader and Tokenizer.LoadSentencePieceModel. Malformed bytes raise ModelFormatException with
// the offset; well-formed models Sirocco cannot run (unigram, NFKC normalizers) raise UnsupportedModelException.

using System.Text;
using Sirocco.Engine.Formats;

namespace Sirocco.Engine.Tokenization;

/// <summary>Parser for SentencePiece ModelProto files.</summary>
internal static class SentencePieceModelReader
{
    // Real models are well under 10 MB (Mistral's is 0.5 MB); the cap bounds what a hostile path can make us read.
    private const long MaxFileBytes = 256L << 20;

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    // ModelProto and nested message field numbers (sentencepiece_model.proto).
    private const int ModelPieces = 1, ModelTrainerSpec = 2, ModelNormalizerSpec = 3, ModelDenormalizerSpec = 5;
    private const int PiecePiece = 1, PieceScore = 2, PieceType = 3;
    private const int TrainerModelType = 3, TrainerTreatWhitespaceAsSuffix = 24, TrainerByteFallback = 35;
    private const int TrainerUnkId = 40, TrainerBosId = 41, TrainerEosId = 42, TrainerPadId = 43, TrainerUnkSurface = 44;
    private const int NormalizerName = 1, NormalizerCharsMap = 2, NormalizerAddDummyPrefix = 3;
    private const int NormalizerRemoveExtraWhitespaces = 4, NormalizerEscapeWhitespaces = 5;

    private const int ModelTypeBpe = 2;

    /// <summary>Reads and validates <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="ModelFormatException">The file is not a well-formed ModelProto.</exception>
    /// <exception cref="UnsupportedModelException">The model is not BPE, or normalizes text beyond the identity.</exception>
    public static Tokenizer Load(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new FileNotFoundException($"{path}: no such file", path);
        }
        if (info.Length > MaxFileBytes)
        {
            throw new ModelFormatException(path, "file size", -1, $"a SentencePiece model of at most {MaxFileBytes >> 20} MiB", $"{info.Length} bytes");
        }
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses ModelProto bytes; <paramref name="path"/> only names the source in errors.</summary>
    internal static Tokenizer Parse(ReadOnlySpan<byte> data, string path)
    {
        var pieces = new List<string>();
        var scores = new List<float>();
        var types = new List<TokenType>();
        TrainerSpec? trainer = null;
        NormalizerSpec? normalizer = null;
        NormalizerSpec? denormalizer = null;

        var reader = new ProtoReader(data, 0, path, "ModelProto");
        while (reader.TryReadTag(out int field, out var wire))
        {
            switch (field)
            {
                case ModelPieces:
                {
                    reader.Expect("pieces", wire, WireType.LengthDelimited);
                    var payload = reader.ReadLengthDelimited("pieces", out long offset);
                    if (pieces.Count >= Tokenizer.MaxVocabSize)
                    {
                        throw new ModelFormatException(path, "ModelProto.pieces", offset, $"at most {Tokenizer.MaxVocabSize} pieces", "more");
                    }
                    ReadPiece(payload, offset, path, pieces.Count, out string piece, out float score, out TokenType type);
                    pieces.Add(piece);
                    scores.Add(score);
                    types.Add(type);
                    break;
                }
                case ModelTrainerSpec:
                {
                    reader.Expect("trainer_spec", wire, WireType.LengthDelimited);
                    var payload = reader.ReadLengthDelimited("trainer_spec", out long offset);
                    // A repeated occurrence of a message field merges into the first, as protobuf parsing does.
                    ReadTrainerSpec(payload, offset, path, trainer ??= new TrainerSpec());
                    break;
                }
                case ModelNormalizerSpec:
                case ModelDenormalizerSpec:
                {
                    string name = field == ModelNormalizerSpec ? "normalizer_spec" : "denormalizer_spec";
                    reader.Expect(name, wire, WireType.LengthDelimited);
                    var payload = reader.ReadLengthDelimited(name, out long offset);
                    var spec = field == ModelNormalizerSpec ? (normalizer ??= new NormalizerSpec()) : (denormalizer ??= new NormalizerSpec());
                    ReadNormalizerSpec(payload, offset, path, "ModelProto." + name, spec);
                    break;
                }
                default:
                    reader.Skip(field, wire); // self_test_data and anything newer
                    break;
            }
        }

        if (trainer is null)
        {
            throw new ModelFormatException(path, "ModelProto.trainer_spec", -1, "a trainer_spec message", "none (truncated or not a SentencePiece model?)");
        }
        if (normalizer is null)
        {
            throw new ModelFormatException(path, "ModelProto.normalizer_spec", -1, "a normalizer_spec message", "none (truncated or not a SentencePiece model?)");
        }
        string file = Path.GetFileName(path);
        if (trainer.ModelType != ModelTypeBpe)
        {
            string typeName = trainer.ModelType switch { 1 => "UNIGRAM", 3 => "WORD", 4 => "CHAR", _ => trainer.ModelType.ToString() };
            throw new UnsupportedModelException($"{file}: SentencePiece model type {typeName} is not supported; Sirocco implements BPE models (model_type = BPE) only");
        }
        if (normalizer.Name != "identity" || normalizer.CharsMapBytes != 0)
        {
            throw new UnsupportedModelException($"{file}: normalizer \"{normalizer.Name}\" ({normalizer.CharsMapBytes} bytes of precompiled_charsmap) is not supported; only the identity normalizer is");
        }
        if (denormalizer is not null && denormalizer.CharsMapBytes != 0)
        {
            throw new UnsupportedModelException($"{file}: a denormalizer (\"{denormalizer.Name}\") is not supported");
        }
        if (trainer.TreatWhitespaceAsSuffix)
        {
            throw new UnsupportedModelException($"{file}: treat_whitespace_as_suffix models are not supported");
        }

        var options = new TokenizerOptions
        {
            AddDummyPrefix = normalizer.AddDummyPrefix,
            RemoveExtraWhitespaces = normalizer.RemoveExtraWhitespaces,
            EscapeWhitespaces = normalizer.EscapeWhitespaces,
            ByteFallback = trainer.ByteFallback,
            UnknownSurface = trainer.UnknownSurface,
        };
        var special = new SpecialTokenIds(trainer.UnkId, trainer.BosId, trainer.EosId, trainer.PadId);
        return Tokenizer.Create(path, pieces, scores, [.. types], special, options, mergeList: null, pipeline: null);
    }

    private static void ReadPiece(ReadOnlySpan<byte> payload, long baseOffset, string path, int index,
        out string piece, out float score, out TokenType type)
    {
        string message = $"ModelProto.pieces[{index}]";
        var reader = new ProtoReader(payload, baseOffset, path, message);
        piece = "";
        score = 0f;
        type = TokenType.Normal; // proto2 default
        while (reader.TryReadTag(out int field, out var wire))
        {
            switch (field)
            {
                case PiecePiece:
                    reader.Expect("piece", wire, WireType.LengthDelimited);
                    piece = ReadString(ref reader, "piece");
                    break;
                case PieceScore:
                    reader.Expect("score", wire, WireType.Fixed32);
                    score = BitConverter.UInt32BitsToSingle(reader.ReadFixed32("score"));
                    break;
                case PieceType:
                {
                    reader.Expect("type", wire, WireType.Varint);
                    long offset = reader.Offset;
                    ulong value = reader.ReadVarint("type");
                    if (value < (ulong)TokenType.Normal || value > (ulong)TokenType.Byte)
                    {
                        throw reader.Error("type", offset, "1..6 (NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE)", value.ToString());
                    }
                    type = (TokenType)(int)value;
                    break;
                }
                default:
                    reader.Skip(field, wire);
                    break;
            }
        }
        if (piece.Length == 0)
        {
            throw new ModelFormatException(path, message + ".piece", baseOffset, "a non-empty piece string", "an empty or missing piece");
        }
    }

    private static void ReadTrainerSpec(ReadOnlySpan<byte> payload, long baseOffset, string path, TrainerSpec spec)
    {
        var reader = new ProtoReader(payload, baseOffset, path, "ModelProto.trainer_spec");
        while (reader.TryReadTag(out int field, out var wire))
        {
            switch (field)
            {
                case TrainerModelType:
                    spec.ModelType = ReadInt32(ref reader, "model_type", wire);
                    break;
                case TrainerTreatWhitespaceAsSuffix:
                    spec.TreatWhitespaceAsSuffix = ReadBool(ref reader, "treat_whitespace_as_suffix", wire);
                    break;
                case TrainerByteFallback:
                    spec.ByteFallback = ReadBool(ref reader, "byte_fallback", wire);
                    break;
                case TrainerUnkId:
                    spec.UnkId = ReadInt32(ref reader, "unk_id", wire);
                    break;
                case TrainerBosId:
                    spec.BosId = ReadInt32(ref reader, "bos_id", wire);
                    break;
                case TrainerEosId:
                    spec.EosId = ReadInt32(ref reader, "eos_id", wire);
                    break;
                case TrainerPadId:
                    spec.PadId = ReadInt32(ref reader, "pad_id", wire);
                    break;
                case TrainerUnkSurface:
                    reader.Expect("unk_surface", wire, WireType.LengthDelimited);
                    spec.UnknownSurface = ReadString(ref reader, "unk_surface");
                    break;
                default:
                    reader.Skip(field, wire);
                    break;
            }
        }
    }

    private static void ReadNormalizerSpec(ReadOnlySpan<byte> payload, long baseOffset, string path, string message, NormalizerSpec spec)
    {
        var reader = new ProtoReader(payload, baseOffset, path, message);
        while (reader.TryReadTag(out int field, out var wire))
        {
            switch (field)
            {
                case NormalizerName:
                    reader.Expect("name", wire, WireType.LengthDelimited);
                    spec.Name = ReadString(ref reader, "name");
                    break;
                case NormalizerCharsMap:
                    reader.Expect("precompiled_charsmap", wire, WireType.LengthDelimited);
                    spec.CharsMapBytes = reader.ReadLengthDelimited("precompiled_charsmap", out _).Length;
                    break;
                case NormalizerAddDummyPrefix:
                    spec.AddDummyPrefix = ReadBool(ref reader, "add_dummy_prefix", wire);
                    break;
                case NormalizerRemoveExtraWhitespaces:
                    spec.RemoveExtraWhitespaces = ReadBool(ref reader, "remove_extra_whitespaces", wire);
                    break;
                case NormalizerEscapeWhitespaces:
                    spec.EscapeWhitespaces = ReadBool(ref reader, "escape_whitespaces", wire);
                    break;
                default:
                    reader.Skip(field, wire);
                    break;
            }
        }
    }

    private static string ReadString(ref ProtoReader reader, string field)
    {
        var bytes = reader.ReadLengthDelimited(field, out long offset);
        try
        {
            return s_strictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            int bad = e.Index >= 0 ? e.Index : 0;
            string found = e.BytesUnknown is { Length: > 0 } unknown ? $"invalid UTF-8 byte(s) {Convert.ToHexString(unknown)}" : "invalid UTF-8";
            throw reader.Error(field, offset + bad, "a UTF-8 string", found);
        }
    }

    private static int ReadInt32(ref ProtoReader reader, string field, WireType wire)
    {
        reader.Expect(field, wire, WireType.Varint);
        // int32 fields are written as 64-bit varints (negative values sign-extended); protobuf keeps the low 32 bits.
        return unchecked((int)reader.ReadVarint(field));
    }

    private static bool ReadBool(ref ProtoReader reader, string field, WireType wire)
    {
        reader.Expect(field, wire, WireType.Varint);
        return reader.ReadVarint(field) != 0;
    }

    /// <summary>The trainer_spec fields that matter for encoding, with their proto2 defaults.</summary>
    private sealed class TrainerSpec
    {
        public int ModelType = 1; // UNIGRAM
        public bool TreatWhitespaceAsSuffix;
        public bool ByteFallback;
        public int UnkId;
        public int BosId = 1;
        public int EosId = 2;
        public int PadId = -1;
        public string UnknownSurface = TokenizerOptions.DefaultUnknownSurface;
    }

    /// <summary>The normalizer_spec fields, with their proto2 defaults.</summary>
    private sealed class NormalizerSpec
    {
        public string Name = "";
        public int CharsMapBytes;
        public bool AddDummyPrefix = true;
        public bool RemoveExtraWhitespaces = true;
        public bool EscapeWhitespaces = true;
    }
}
