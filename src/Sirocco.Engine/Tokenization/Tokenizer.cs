// The tokenizer the engine, server and CLI use: SentencePiece BPE with byte fallback, as in Mistral's v1 tokenizer.
// Owns the vocabulary, text normalization (dummy prefix, escaped spaces) and decoding; the merge loop lives in
// BpeEncoder. Built by SentencePieceModelReader (tokenizer.model), TokenizerJsonReader (tokenizer.json) and
// FromVocabulary (GGUF's tokenizer.ggml.* arrays); TokenizerLoader picks among them.

using System.Buffers;
using System.Text;
using Sirocco.Engine.Formats;

namespace Sirocco.Engine.Tokenization;

/// <summary>A SentencePiece-compatible BPE tokenizer. Immutable and safe to use from many threads at once.</summary>
/// <remarks>Encoding and decoding follow SentencePiece (0.1.97 and later) exactly for Mistral's model; see
/// testdata/mistral-tokenizer/README.md for the behaviour pinned by golden data. Text that looks like a special token
/// (<c>"&lt;s&gt;"</c>, <c>"[INST]"</c>) is always encoded as plain text: special ids only enter a sequence through
/// <c>addBos</c>/<c>addEos</c> or a chat template, never from user text.</remarks>
public sealed class Tokenizer
{
    /// <summary>U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible stand-in for a space.</summary>
    public const char SpaceSymbol = '\u2581';

    // Enough for any real vocabulary (the largest are ~256k) while bounding what a hostile file can make us build.
    internal const int MaxVocabSize = 1 << 24;

    private readonly string[] _pieces;
    private readonly float[] _scores;
    private readonly TokenType[] _types;
    private readonly Dictionary<string, int> _pieceToId;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _pieceLookup;
    private readonly BpeEncoder _encoder;

    private Tokenizer(string source, string[] pieces, float[] scores, TokenType[] types, Dictionary<string, int> pieceToId,
        int[]? byteIds, SpecialTokenIds special, TokenizerOptions options, MergeTable table,
        IReadOnlyList<(int Left, int Right)>? mergeList, TextPipeline pipeline)
    {
        Source = source;
        _pieces = pieces;
        _scores = scores;
        _types = types;
        _pieceToId = pieceToId;
        _pieceLookup = pieceToId.GetAlternateLookup<ReadOnlySpan<char>>();
        UnkId = special.Unk;
        BosId = special.Bos;
        EosId = special.Eos;
        PadId = special.Pad;
        Options = options;
        MergeList = mergeList;
        Pipeline = pipeline;
        _encoder = new BpeEncoder(table, pieces, types, pieceToId, byteIds, special.Unk, bytesBeforeMerge: mergeList is not null);

        // Decoding tables: raw byte of each byte token, and each text piece with ▁ already turned into a space.
        ByteValues = new short[pieces.Length];
        DecodedPieces = new string[pieces.Length];
        for (int id = 0; id < pieces.Length; id++)
        {
            ByteValues[id] = (short)(types[id] == TokenType.Byte && TryParseBytePiece(pieces[id], out byte b) ? b : -1);
            DecodedPieces[id] = pieces[id].Replace(SpaceSymbol, ' ');
        }
    }

    /// <summary>Where the vocabulary came from (a path, or the name given to <see cref="FromVocabulary"/>).</summary>
    public string Source { get; }

    /// <summary>Number of tokens; valid ids are 0 .. VocabSize - 1.</summary>
    public int VocabSize => _pieces.Length;

    /// <summary>Id of <c>&lt;unk&gt;</c>, or -1.</summary>
    public int UnkId { get; }

    /// <summary>Id of the beginning-of-sequence token (<c>&lt;s&gt;</c>, 1 for Mistral), or -1.</summary>
    public int BosId { get; }

    /// <summary>Id of the end-of-sequence token (<c>&lt;/s&gt;</c>, 2 for Mistral), or -1.</summary>
    public int EosId { get; }

    /// <summary>Id of the padding token, or -1 (Mistral has none).</summary>
    public int PadId { get; }

    /// <summary>Whitespace and unknown-character handling.</summary>
    public TokenizerOptions Options { get; }

    /// <summary>Hugging Face merge list (left id, right id) in rank order when loaded from tokenizer.json; null when
    /// merges are ranked by SentencePiece piece scores.</summary>
    internal IReadOnlyList<(int Left, int Right)>? MergeList { get; }

    /// <summary>Hugging Face pre-tokenization quirks; default for SentencePiece sources.</summary>
    internal TextPipeline Pipeline { get; }

    /// <summary>[id] → byte value 0..255 for byte tokens, -1 for all others.</summary>
    internal short[] ByteValues { get; }

    /// <summary>[id] → piece with every ▁ replaced by a space.</summary>
    internal string[] DecodedPieces { get; }

    /// <summary>The vocabulary entry of <paramref name="id"/>, e.g. "▁Hello" or "&lt;0x0A&gt;".</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is outside the vocabulary.</exception>
    public string GetPiece(int id)
    {
        CheckId(id);
        return _pieces[id];
    }

    /// <summary>The piece's SentencePiece score (0 for a tokenizer.json source, which has none).</summary>
    public float GetScore(int id)
    {
        CheckId(id);
        return _scores[id];
    }

    /// <summary>The kind of token <paramref name="id"/> is.</summary>
    public TokenType GetTokenType(int id)
    {
        CheckId(id);
        return _types[id];
    }

    /// <summary>Finds the id of an exact piece string.</summary>
    public bool TryGetId(string piece, out int id) => _pieceToId.TryGetValue(piece, out id);

    /// <summary>Encodes <paramref name="text"/> to ids, optionally framed by BOS and EOS.</summary>
    /// <remarks>Nothing is normalized beyond the model's whitespace flags; a lone UTF-16 surrogate is treated as
    /// U+FFFD, as .NET's UTF-8 encoder would write it. Cost grows linearly with the text length.</remarks>
    public int[] Encode(string text, bool addBos = false, bool addEos = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 2);
        if (addBos && BosId >= 0)
        {
            ids.Add(BosId);
        }
        Encode(text.AsSpan(), ids);
        if (addEos && EosId >= 0)
        {
            ids.Add(EosId);
        }
        return [.. ids];
    }

    /// <summary>Appends the ids of <paramref name="text"/> to <paramref name="destination"/> (no BOS or EOS).</summary>
    public void Encode(ReadOnlySpan<char> text, List<int> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (text.IsEmpty)
        {
            return; // SentencePiece: empty input has no dummy prefix and no tokens
        }
        // Normalized text is at most one character longer than the input (the dummy prefix).
        char[] buffer = ArrayPool<char>.Shared.Rent(text.Length + 1);
        try
        {
            int length = Normalize(text, buffer);
            var normalized = buffer.AsSpan(0, length);
            if (!Pipeline.SplitBeforeSpaceSymbol)
            {
                EncodeWord(normalized, destination);
                return;
            }
            // Hugging Face Metaspace with split: each ▁ starts a new word, and words are encoded independently.
            int start = 0;
            for (int i = 1; i <= normalized.Length; i++)
            {
                if (i == normalized.Length || normalized[i] == SpaceSymbol)
                {
                    EncodeWord(normalized[start..i], destination);
                    start = i;
                }
            }
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
    }

    private void EncodeWord(ReadOnlySpan<char> word, List<int> destination)
    {
        if (Pipeline.IgnoreMerges && _pieceLookup.TryGetValue(word, out int whole))
        {
            destination.Add(whole); // HF ignore_merges: a word that is itself a piece is taken as is
            return;
        }
        _encoder.Encode(word, destination);
    }

    /// <summary>SentencePiece's identity normalizer: optional whitespace cleanup, dummy prefix, ' ' → ▁.
    /// Returns the normalized length written to <paramref name="output"/>; 0 means no tokens.</summary>
    private int Normalize(ReadOnlySpan<char> text, Span<char> output)
    {
        bool removeExtra = Options.RemoveExtraWhitespaces;
        bool escape = Options.EscapeWhitespaces;
        if (removeExtra)
        {
            text = text.Trim(' ');
            if (text.IsEmpty)
            {
                return 0;
            }
        }
        int n = 0;
        bool prefix = Options.AddDummyPrefix;
        if (prefix && Pipeline.PrefixOnlyIfMissing)
        {
            // HF Metaspace prepends only when the text does not already start with the replacement character.
            char first = text[0] == ' ' && escape ? SpaceSymbol : text[0];
            prefix = first != SpaceSymbol;
        }
        if (prefix)
        {
            output[n++] = escape ? SpaceSymbol : ' ';
        }
        bool previousWasSpace = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == ' ')
            {
                if (removeExtra && previousWasSpace)
                {
                    continue;
                }
                previousWasSpace = true;
                output[n++] = escape ? SpaceSymbol : ' ';
                continue;
            }
            previousWasSpace = false;
            if (char.IsSurrogate(c))
            {
                if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                {
                    output[n++] = c;
                    output[n++] = text[++i];
                    continue;
                }
                c = '\uFFFD';
            }
            output[n++] = c;
        }
        return n;
    }

    /// <summary>Decodes ids to text the way SentencePiece does: control tokens vanish, <c>&lt;unk&gt;</c> becomes
    /// <see cref="TokenizerOptions.UnknownSurface"/>, runs of byte tokens are read as UTF-8 with each invalid byte
    /// becoming U+FFFD, ▁ becomes a space, and one leading ▁ of the first visible piece is dropped.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var detokenizer = new StreamingDetokenizer(this);
        var text = new StringBuilder(ids.Length * 4);
        foreach (int id in ids)
        {
            detokenizer.Append(id, text);
        }
        detokenizer.Finish(text);
        return text.ToString();
    }

    /// <summary>A detokenizer for generated tokens: feed ids one at a time, get back only text that is final.</summary>
    public StreamingDetokenizer CreateStreamingDetokenizer() => new(this);

    /// <summary>Builds a tokenizer from plain vocabulary arrays, such as GGUF's <c>tokenizer.ggml.tokens</c>,
    /// <c>tokenizer.ggml.scores</c> and <c>tokenizer.ggml.token_type</c>. Merges are ranked by piece score, highest
    /// first, exactly as SentencePiece's BPE does.</summary>
    /// <param name="pieces">Piece strings by id (▁ for spaces, <c>&lt;0xXX&gt;</c> for byte tokens).</param>
    /// <param name="scores">Score of each piece.</param>
    /// <param name="tokenTypes">Type of each piece as the integers of <see cref="TokenType"/> (1..6).</param>
    /// <param name="specialTokens">Unknown, BOS, EOS and padding ids.</param>
    /// <param name="options">Whitespace flags; null for Mistral's defaults.</param>
    /// <param name="source">Name used in error messages, e.g. the GGUF file path.</param>
    /// <exception cref="ModelFormatException">The arrays disagree in length, a piece is empty or duplicated, a type is
    /// out of range, a byte token is misnamed, or a special id does not fit.</exception>
    public static Tokenizer FromVocabulary(IReadOnlyList<string> pieces, IReadOnlyList<float> scores, IReadOnlyList<int> tokenTypes,
        SpecialTokenIds specialTokens, TokenizerOptions? options = null, string source = "vocabulary")
    {
        ArgumentNullException.ThrowIfNull(pieces);
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(tokenTypes);
        if (tokenTypes.Count != pieces.Count)
        {
            throw new ModelFormatException(source, "token types", -1, $"{pieces.Count} entries (one per piece)", tokenTypes.Count.ToString());
        }
        var types = new TokenType[tokenTypes.Count];
        for (int i = 0; i < types.Length; i++)
        {
            int t = tokenTypes[i];
            if (t < (int)TokenType.Normal || t > (int)TokenType.Byte)
            {
                throw new ModelFormatException(source, $"token type of id {i}", -1, "1..6 (normal, unknown, control, user-defined, unused, byte)", t.ToString());
            }
            types[i] = (TokenType)t;
        }
        return Create(source, pieces, scores, types, specialTokens, options ?? new TokenizerOptions(), mergeList: null, pipeline: null);
    }

    /// <summary>Loads a SentencePiece <c>tokenizer.model</c> (ModelProto); see <see cref="SentencePieceModelReader"/>.</summary>
    public static Tokenizer LoadSentencePieceModel(string path) => SentencePieceModelReader.Load(path);

    /// <summary>Loads a Hugging Face <c>tokenizer.json</c> with a BPE model; see <see cref="TokenizerJsonReader"/>.</summary>
    public static Tokenizer LoadTokenizerJson(string path) => TokenizerJsonReader.Load(path);

    /// <summary>Validates vocabulary arrays and builds the tokenizer. With <paramref name="mergeList"/> merges are
    /// ranked by list order (Hugging Face); without, by piece score (SentencePiece).</summary>
    internal static Tokenizer Create(string source, IReadOnlyList<string> pieces, IReadOnlyList<float> scores, TokenType[] types,
        SpecialTokenIds special, TokenizerOptions options, IReadOnlyList<(int Left, int Right)>? mergeList, TextPipeline? pipeline)
    {
        int count = pieces.Count;
        if (count == 0 || count > MaxVocabSize)
        {
            throw new ModelFormatException(source, "pieces", -1, $"1..{MaxVocabSize} vocabulary entries", count.ToString());
        }
        if (scores.Count != count)
        {
            throw new ModelFormatException(source, "scores", -1, $"{count} entries (one per piece)", scores.Count.ToString());
        }
        if (types.Length != count)
        {
            throw new ModelFormatException(source, "token types", -1, $"{count} entries (one per piece)", types.Length.ToString());
        }

        var pieceArray = new string[count];
        var scoreArray = new float[count];
        var pieceToId = new Dictionary<string, int>(count, StringComparer.Ordinal);
        int[] byteIds = new int[256];
        Array.Fill(byteIds, -1);
        int byteCount = 0;
        for (int id = 0; id < count; id++)
        {
            string piece = pieces[id];
            if (string.IsNullOrEmpty(piece))
            {
                throw new ModelFormatException(source, $"piece {id}", -1, "a non-empty string", "an empty piece");
            }
            if (!IsWellFormedUtf16(piece))
            {
                throw new ModelFormatException(source, $"piece {id}", -1, "well-formed Unicode text", "an unpaired surrogate");
            }
            if (!pieceToId.TryAdd(piece, id))
            {
                throw new ModelFormatException(source, $"piece {id}", -1, "a piece not already in the vocabulary", $"\"{piece}\", a duplicate of id {pieceToId[piece]}");
            }
            if (types[id] == TokenType.Byte)
            {
                if (!TryParseBytePiece(piece, out byte b))
                {
                    throw new ModelFormatException(source, $"piece {id}", -1, "a byte token named <0x00>..<0xFF>", $"\"{piece}\"");
                }
                if (byteIds[b] >= 0)
                {
                    throw new ModelFormatException(source, $"piece {id}", -1, $"one token per byte value", $"a second token for byte 0x{b:X2} (first is id {byteIds[b]})");
                }
                byteIds[b] = id;
                byteCount++;
            }
            pieceArray[id] = piece;
            scoreArray[id] = scores[id];
        }

        if (options.ByteFallback && byteCount != 256)
        {
            throw new ModelFormatException(source, "byte tokens", -1, "all 256 <0xXX> tokens when byte fallback is on", $"{byteCount}");
        }
        CheckSpecialId(source, "unknown token id", special.Unk, count, allowMissing: options.ByteFallback);
        if (special.Unk >= 0 && types[special.Unk] != TokenType.Unknown)
        {
            throw new ModelFormatException(source, "unknown token id", -1, $"the id of a piece of type unknown", $"{special.Unk} (\"{pieceArray[special.Unk]}\", type {types[special.Unk]})");
        }
        CheckSpecialId(source, "bos token id", special.Bos, count, allowMissing: true);
        CheckSpecialId(source, "eos token id", special.Eos, count, allowMissing: true);
        CheckSpecialId(source, "pad token id", special.Pad, count, allowMissing: true);

        MergeTable table;
        if (mergeList is null)
        {
            table = MergeTable.FromPieceScores(pieceArray, types, scoreArray);
        }
        else
        {
            var ranked = new (int Left, int Right, int Result)[mergeList.Count];
            for (int i = 0; i < ranked.Length; i++)
            {
                var (left, right) = mergeList[i];
                if (!pieceToId.TryGetValue(pieceArray[left] + pieceArray[right], out int result))
                {
                    throw new ModelFormatException(source, $"model.merges[{i}]", -1, "a pair whose concatenation is in the vocabulary",
                        $"\"{pieceArray[left]}\" + \"{pieceArray[right]}\"");
                }
                ranked[i] = (left, right, result);
            }
            table = MergeTable.FromMergeRanks(pieceArray, types, ranked);
        }
        return new Tokenizer(source, pieceArray, scoreArray, types, pieceToId, options.ByteFallback ? byteIds : null, special,
            options with { UnknownSurface = options.UnknownSurface ?? TokenizerOptions.DefaultUnknownSurface },
            table, mergeList, pipeline ?? TextPipeline.SentencePiece);
    }

    private static void CheckSpecialId(string source, string field, int id, int count, bool allowMissing)
    {
        if ((id == -1 && allowMissing) || (id >= 0 && id < count))
        {
            return;
        }
        string expected = allowMissing ? $"-1 or an id in 0..{count - 1}" : $"an id in 0..{count - 1}";
        throw new ModelFormatException(source, field, -1, expected, id.ToString());
    }

    /// <summary>Parses a byte token name <c>&lt;0xXX&gt;</c> (two hex digits, either case).</summary>
    internal static bool TryParseBytePiece(string piece, out byte value)
    {
        value = 0;
        if (piece.Length != 6 || !piece.StartsWith("<0x", StringComparison.Ordinal) || piece[5] != '>')
        {
            return false;
        }
        return byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out value);
    }

    private static bool IsWellFormedUtf16(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsSurrogate(s[i]))
            {
                if (!char.IsHighSurrogate(s[i]) || i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1]))
                {
                    return false;
                }
                i++;
            }
        }
        return true;
    }

    internal void CheckId(int id)
    {
        if ((uint)id >= (uint)_pieces.Length)
        {
            ThrowIdOutOfRange(id);
        }
    }

    internal TokenType TypeOf(int id) => _types[id];

    private void ThrowIdOutOfRange(int id) =>
        throw new ArgumentOutOfRangeException(nameof(id), id, $"token id {id} is outside the vocabulary [0, {_pieces.Length})");
}

/// <summary>Hugging Face pre-tokenization behaviours that SentencePiece sources never use.</summary>
/// <param name="PrefixOnlyIfMissing">Metaspace: add the dummy prefix only if the text does not start with ▁ already.</param>
/// <param name="SplitBeforeSpaceSymbol">Metaspace split: cut the text before every ▁ and encode the words separately.</param>
/// <param name="IgnoreMerges">BPE ignore_merges: a word that is itself a piece becomes that one token.</param>
internal sealed record TextPipeline(bool PrefixOnlyIfMissing, bool SplitBeforeSpaceSymbol, bool IgnoreMerges)
{
    /// <summary>Plain SentencePiece: none of the Hugging Face behaviours.</summary>
    public static TextPipeline SentencePiece { get; } = new(false, false, false);
}
