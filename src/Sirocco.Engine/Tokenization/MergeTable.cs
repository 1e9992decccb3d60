// What the BPE loop needs to know about a vocabulary: the merge key of every character, and for each adjacent pair
// of symbol keys the piece they merge into and that merge's rank. Built once per tokenizer, either from
// SentencePiece piece scores or from a Hugging Face merge list; BpeEncoder only ever compares ranks.

namespace Sirocco.Engine.Tokenization;

/// <summary>One entry of the pair table. <see cref="Result"/> is -1 when the pair never merges directly but some
/// merge joins symbols across this character boundary later (see <see cref="MergeTable.IsSegmentable"/>).</summary>
/// <param name="Result">Id of the merged piece, or -1.</param>
/// <param name="Rank">Priority of the merge: lower merges first; equal ranks go leftmost first.</param>
internal readonly record struct MergeRule(int Result, int Rank);

/// <summary>Pair → merge lookup with a pluggable priority: ranks come from piece scores (SentencePiece) or from the
/// order of a merge list (Hugging Face). Immutable and safe to share between threads.</summary>
internal sealed class MergeTable
{
    private const int BmpSize = 0x10000;

    // [code point] → merge key of a one-character symbol, -1 when no merge involves that character.
    private readonly int[] _bmpKeys;
    private readonly Dictionary<int, int> _astralKeys;

    // (leftKey << 32 | rightKey) → rule. Keys below the vocabulary size are piece ids.
    private readonly PairTable _rules;

    // Synthetic keys (≥ vocabulary size) name characters that occur inside mergeable pieces but are not pieces
    // themselves; [key - vocabSize] → the code point, so an unmerged one can fall back to bytes.
    private readonly int[] _syntheticCodePoints;

    private MergeTable(int vocabSize, int[] bmpKeys, Dictionary<int, int> astralKeys, Dictionary<long, MergeRule> rules,
        int[] syntheticCodePoints, bool isSegmentable)
    {
        VocabSize = vocabSize;
        _bmpKeys = bmpKeys;
        _astralKeys = astralKeys;
        _rules = new PairTable(rules);
        _syntheticCodePoints = syntheticCodePoints;
        IsSegmentable = isSegmentable;
    }

    /// <summary>Number of vocabulary entries; merge keys at or above it are synthetic character keys.</summary>
    public int VocabSize { get; }

    /// <summary>True when a character boundary whose key pair is absent from the table can never be crossed by any
    /// merge, so the text may be cut there and each part encoded on its own with the same result. Every merge joins
    /// the last character of its left part to the first character of its right part, and those boundary pairs are
    /// all in the table; so an absent pair proves that no merge, now or later, spans that boundary.</summary>
    public bool IsSegmentable { get; }

    /// <summary>Merge key of a one-character symbol, or -1 when the character takes part in no merge.</summary>
    public int CharKey(int codePoint)
    {
        if ((uint)codePoint < BmpSize)
        {
            return _bmpKeys[codePoint];
        }
        return _astralKeys.TryGetValue(codePoint, out int key) ? key : -1;
    }

    /// <summary>The code point a synthetic key stands for; -1 for piece ids.</summary>
    public int SyntheticCodePoint(int key) => key >= VocabSize ? _syntheticCodePoints[key - VocabSize] : -1;

    /// <summary>Looks up the adjacent pair (<paramref name="left"/>, <paramref name="right"/>).</summary>
    public bool TryGetRule(int left, int right, out MergeRule rule) => _rules.TryGet(PairKey(left, right), out rule);

    private static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>SentencePiece BPE: any two adjacent symbols whose concatenation is a piece of type Normal,
    /// UserDefined or Unused merge, highest piece score first (bpe_model.cc). Symbols start as single characters
    /// whether or not the character is itself a piece, so characters that only occur inside pieces get synthetic keys.</summary>
    public static MergeTable FromPieceScores(IReadOnlyList<string> pieces, IReadOnlyList<TokenType> types, IReadOnlyList<float> scores)
    {
        int vocabSize = pieces.Count;
        var mergeable = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < vocabSize; id++)
        {
            if (IsMergeable(types[id]))
            {
                mergeable[pieces[id]] = id;
            }
        }

        var mergeableBySpan = mergeable.GetAlternateLookup<ReadOnlySpan<char>>();

        // Dense rank of scores, best first: equal scores share a rank, so ties fall to the leftmost pair as in
        // SentencePiece's agenda ordering (score, then left position).
        var distinct = new List<float>();
        foreach (int id in mergeable.Values)
        {
            distinct.Add(scores[id]);
        }
        distinct.Sort((a, b) => b.CompareTo(a));
        var rankOfScore = new Dictionary<float, int>();
        foreach (float score in distinct)
        {
            rankOfScore.TryAdd(score, rankOfScore.Count);
        }

        var bmpKeys = new int[BmpSize];
        Array.Fill(bmpKeys, -1);
        var astralKeys = new Dictionary<int, int>();
        var synthetic = new List<int>();

        int KeyOfCodePoint(int cp, bool create)
        {
            int existing = cp < BmpSize ? bmpKeys[cp] : astralKeys.GetValueOrDefault(cp, -1);
            if (existing >= 0 || !create)
            {
                return existing;
            }
            int key = vocabSize + synthetic.Count;
            synthetic.Add(cp);
            SetKey(cp, key);
            return key;
        }

        void SetKey(int cp, int key)
        {
            if (cp < BmpSize)
            {
                bmpKeys[cp] = key;
            }
            else
            {
                astralKeys[cp] = key;
            }
        }

        // Single-character mergeable pieces key their character by their own id.
        foreach (var (piece, id) in mergeable)
        {
            if (IsSingleCodePoint(piece, out int cp))
            {
                SetKey(cp, id);
            }
        }

        var rules = new Dictionary<long, MergeRule>();
        var boundaries = new List<int>(16);
        foreach (var (piece, id) in mergeable)
        {
            CodePointBoundaries(piece, boundaries);
            if (boundaries.Count < 3)
            {
                continue; // one character: nothing merges into it
            }
            int rank = rankOfScore[scores[id]];
            for (int b = 1; b < boundaries.Count - 1; b++)
            {
                int split = boundaries[b];
                int leftKey = KeyOfPart(piece, 0, split, boundaries[1]);
                int rightKey = KeyOfPart(piece, split, piece.Length - split, boundaries[b + 1] - split);
                // The boundary this merge crosses: last character of the left part, first of the right part.
                int lastLeft = KeyOfCodePoint(Utf16.CodePointAt(piece, boundaries[b - 1]), create: true);
                int firstRight = KeyOfCodePoint(Utf16.CodePointAt(piece, split), create: true);
                rules.TryAdd(PairKey(lastLeft, firstRight), new MergeRule(-1, int.MaxValue));
                if (leftKey < 0 || rightKey < 0)
                {
                    continue;
                }
                var key = PairKey(leftKey, rightKey);
                rules[key] = new MergeRule(id, rank); // replaces a boundary-only entry; a pair has one concatenation
            }
        }

        // A part that is one character gets (or creates) that character's key; a longer part must be a piece.
        int KeyOfPart(string piece, int start, int length, int firstCharLength)
        {
            if (length == firstCharLength)
            {
                return KeyOfCodePoint(Utf16.CodePointAt(piece, start), create: true);
            }
            return mergeableBySpan.TryGetValue(piece.AsSpan(start, length), out int partId) ? partId : -1;
        }

        return new MergeTable(vocabSize, bmpKeys, astralKeys, rules, [.. synthetic], isSegmentable: true);
    }

    /// <summary>Hugging Face BPE: only the listed pairs merge, the earliest listed first. Every single-character
    /// piece (of any type) keys its character by its id, as HF looks characters up in the whole vocabulary.</summary>
    /// <param name="pieces">The vocabulary, by id.</param>
    /// <param name="types">Type of each id.</param>
    /// <param name="merges">(left id, right id, merged id) in rank order.</param>
    public static MergeTable FromMergeRanks(IReadOnlyList<string> pieces, IReadOnlyList<TokenType> types,
        IReadOnlyList<(int Left, int Right, int Result)> merges)
    {
        int vocabSize = pieces.Count;
        var bmpKeys = new int[BmpSize];
        Array.Fill(bmpKeys, -1);
        var astralKeys = new Dictionary<int, int>();
        for (int id = 0; id < vocabSize; id++)
        {
            if (IsSingleCodePoint(pieces[id], out int cp))
            {
                if (cp < BmpSize)
                {
                    bmpKeys[cp] = id;
                }
                else
                {
                    astralKeys[cp] = id;
                }
            }
        }

        var rules = new Dictionary<long, MergeRule>(merges.Count * 2);
        bool segmentable = true;
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right, result) = merges[rank];
            // A later duplicate of a pair replaces the earlier one, as building HF's merge map does.
            rules[PairKey(left, right)] = new MergeRule(result, rank);
        }
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right, _) = merges[rank];
            if (types[left] is TokenType.Byte or TokenType.Unknown || types[right] is TokenType.Byte or TokenType.Unknown)
            {
                // Byte and unk symbols stand for characters their piece text does not spell, so the character
                // boundaries such a merge crosses are unknown: give up on cutting. Real vocabularies have none.
                segmentable = false;
                continue;
            }
            int lastLeft = LastCodePointKey(pieces[left]);
            int firstRight = FirstCodePointKey(pieces[right]);
            if (lastLeft < 0 || firstRight < 0)
            {
                continue; // that side contains a character with no piece: it is byte-encoded and this merge can never apply
            }
            rules.TryAdd(PairKey(lastLeft, firstRight), new MergeRule(-1, int.MaxValue));
        }

        int LastCodePointKey(string s)
        {
            int cp = s.Length > 1 && char.IsSurrogatePair(s[^2], s[^1]) ? Utf16.CodePointAt(s, s.Length - 2) : s[^1];
            return cp < BmpSize ? bmpKeys[cp] : astralKeys.GetValueOrDefault(cp, -1);
        }

        int FirstCodePointKey(string s)
        {
            int cp = Utf16.CodePointAt(s, 0);
            return cp < BmpSize ? bmpKeys[cp] : astralKeys.GetValueOrDefault(cp, -1);
        }

        return new MergeTable(vocabSize, bmpKeys, astralKeys, rules, [], segmentable);
    }

    /// <summary>Piece types SentencePiece keeps in its merge dictionary (model_interface.cc: normal, user-defined, unused).</summary>
    public static bool IsMergeable(TokenType type) => type is TokenType.Normal or TokenType.UserDefined or TokenType.Unused;

    private static bool IsSingleCodePoint(string s, out int codePoint)
    {
        if (s.Length == 1 || (s.Length == 2 && char.IsSurrogatePair(s[0], s[1])))
        {
            codePoint = Utf16.CodePointAt(s, 0);
            return true;
        }
        codePoint = -1;
        return false;
    }

    /// <summary>Fills <paramref name="boundaries"/> with the UTF-16 index of each code point start plus the length.</summary>
    private static void CodePointBoundaries(string s, List<int> boundaries)
    {
        boundaries.Clear();
        for (int i = 0; i < s.Length; i += char.IsSurrogatePair(s, i) ? 2 : 1)
        {
            boundaries.Add(i);
        }
        boundaries.Add(s.Length);
    }
}
