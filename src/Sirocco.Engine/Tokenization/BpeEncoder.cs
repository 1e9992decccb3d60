// The BPE merge loop shared by every tokenizer source: normalized text → initial symbols (characters, user-defined
// pieces, or bytes) → repeatedly merge the best-ranked adjacent pair (ties leftmost) → token ids. Tokenizer.Encode
// calls it; the ranks come from a MergeTable, so SentencePiece scores and Hugging Face merge lists share this code.
//
// Cost: symbols live in a doubly linked list over an array and candidate pairs in a binary heap, so a merge costs
// O(log n) and nothing is rescanned. Where the MergeTable proves that no merge can cross a character boundary the
// text is cut there and each part is merged on its own, which keeps the working set small and the cost per byte flat.

using System.Diagnostics;
using System.Text;

namespace Sirocco.Engine.Tokenization;

/// <summary>Turns normalized text into token ids by BPE. Immutable; per-call buffers are per thread.</summary>
internal sealed class BpeEncoder
{
    // Buffers larger than this are not kept between calls, so one huge prompt does not pin memory on a thread.
    private const int MaxCachedSymbols = 1 << 16;

    [ThreadStatic]
    private static Scratch? t_scratch;

    private readonly MergeTable _table;
    private readonly TokenType[] _types;
    private readonly int[]? _byteIds;
    private readonly int _unkId;
    private readonly Dictionary<int, int> _charIds;
    private readonly Dictionary<char, string[]>? _userDefined;
    private readonly Dictionary<string, int> _pieceToId;
    private readonly bool _bytesBeforeMerge;
    private readonly bool _resegmentUnused;

    /// <param name="table">Merge keys and ranks.</param>
    /// <param name="pieces">The vocabulary by id.</param>
    /// <param name="types">Type of each id.</param>
    /// <param name="pieceToId">Every piece → its id.</param>
    /// <param name="byteIds">[byte] → id of its <c>&lt;0xXX&gt;</c> token, or null without byte fallback.</param>
    /// <param name="unkId">The unknown token, -1 if none (only allowed with byte fallback).</param>
    /// <param name="bytesBeforeMerge">Hugging Face order: a character with no piece becomes byte tokens before merging.
    /// SentencePiece order (false): it stays a character symbol, may still merge, and only falls back to bytes if it
    /// ends up alone.</param>
    public BpeEncoder(MergeTable table, IReadOnlyList<string> pieces, TokenType[] types, Dictionary<string, int> pieceToId,
        int[]? byteIds, int unkId, bool bytesBeforeMerge)
    {
        _table = table;
        _types = types;
        _byteIds = byteIds;
        _unkId = unkId;
        _pieceToId = pieceToId;
        _bytesBeforeMerge = bytesBeforeMerge;

        // Ids of one-character pieces whose character has no merge key of the same id (control pieces and the like):
        // SentencePiece's PieceToId finds them even though they never merge. Usually empty.
        _charIds = [];
        List<string>? userDefined = null;
        for (int id = 0; id < pieces.Count; id++)
        {
            string piece = pieces[id];
            // User-defined pieces (HF: non-special added tokens) are kept whole in both orders.
            if (types[id] == TokenType.UserDefined)
            {
                (userDefined ??= []).Add(piece);
            }
            if (types[id] == TokenType.Unused)
            {
                _resegmentUnused = !bytesBeforeMerge;
            }
            int cp = Utf16.CodePointAt(piece, 0);
            if (piece.Length == (cp > 0xFFFF ? 2 : 1) && table.CharKey(cp) != id)
            {
                _charIds[cp] = id;
            }
        }
        if (userDefined is not null)
        {
            // Longest match first, as SentencePiece's prefix matcher picks the longest user-defined piece.
            _userDefined = userDefined.GroupBy(p => p[0])
                .ToDictionary(g => g.Key, g => g.OrderByDescending(p => p.Length).ToArray());
        }
    }

    /// <summary>Appends the ids of <paramref name="text"/> (already normalized: dummy prefix added, spaces escaped).</summary>
    public void Encode(ReadOnlySpan<char> text, List<int> output)
    {
        if (text.IsEmpty)
        {
            return;
        }
        var s = t_scratch ?? new Scratch();
        t_scratch = null; // re-entrancy safety: a nested call on this thread gets its own scratch
        try
        {
            s.Begin(output);
            int i = 0;
            while (i < text.Length)
            {
                i = AddInitialSymbols(s, text, i);
            }
            FinishSegment(s);
        }
        finally
        {
            s.End();
            if (s.Symbols.Length <= MaxCachedSymbols && s.Heap.Length <= MaxCachedSymbols)
            {
                t_scratch = s;
            }
        }
    }

    /// <summary>Creates the symbol(s) starting at <paramref name="index"/>, cutting segments at provably hard
    /// boundaries; returns the index after them.</summary>
    private int AddInitialSymbols(Scratch s, ReadOnlySpan<char> text, int index)
    {
        // User-defined pieces are matched whole and frozen: they never merge (SentencePiece PrefixMatcher).
        if (_userDefined is not null && _userDefined.TryGetValue(text[index], out var candidates))
        {
            foreach (string candidate in candidates)
            {
                if (text[index..].StartsWith(candidate, StringComparison.Ordinal))
                {
                    AddSymbol(s, key: -1, id: _pieceToId[candidate], codePoint: -1);
                    return index + candidate.Length;
                }
            }
        }

        int cp = Utf16.CodePointAt(text, index, out int length);
        int key = _table.CharKey(cp);
        if (_bytesBeforeMerge)
        {
            // Hugging Face: keys are ids; a character outside the vocabulary becomes its bytes (or unk) right away.
            if (key >= 0)
            {
                AddSymbol(s, key, key, cp);
            }
            else if (_byteIds is not null)
            {
                Span<byte> utf8 = stackalloc byte[4];
                int n = new Rune(cp).EncodeToUtf8(utf8);
                for (int b = 0; b < n; b++)
                {
                    int byteId = _byteIds[utf8[b]];
                    AddSymbol(s, byteId, byteId, -1);
                }
            }
            else
            {
                // Consecutive unknown characters fuse into one unk token (HF fuse_unk, SentencePiece's unk run merge).
                if (!s.LastWasUnknownChar)
                {
                    AddSymbol(s, _unkId, _unkId, -1);
                }
                s.LastWasUnknownChar = true;
                return index + length;
            }
            s.LastWasUnknownChar = false;
            return index + length;
        }

        int id = key >= 0 && key < _table.VocabSize ? key : _charIds.GetValueOrDefault(cp, -1);
        AddSymbol(s, key, id, cp);
        return index + length;
    }

    private void AddSymbol(Scratch s, int key, int id, int codePoint)
    {
        if (s.Count > 0)
        {
            int left = s.Count - 1;
            int leftKey = s.Symbols[left].Key;
            MergeRule rule = default;
            bool known = leftKey >= 0 && key >= 0 && _table.TryGetRule(leftKey, key, out rule);
            if (!known && _table.IsSegmentable && !_resegmentUnused)
            {
                // No merge ever joins these two symbols or anything containing them: finish the text so far.
                FinishSegment(s);
            }
            else if (known && rule.Result >= 0)
            {
                s.PushCandidateUnordered(rule, left, left + 1, s.Symbols[left].Units + 1);
                NoteUnusedMerge(s, rule.Result, leftKey, key);
            }
        }
        s.Append(key, id, codePoint);
    }

    /// <summary>Runs the merge loop over the current segment and emits its tokens.</summary>
    private void FinishSegment(Scratch s)
    {
        if (s.Count == 0)
        {
            return;
        }
        var symbols = s.Symbols;
        s.Heapify();
        while (s.TryPop(out var top))
        {
            int left = top.Left;
            int right = top.Right;
            // Stale entries: a side was absorbed, or grew, since this pair was queued. Symbols only ever grow, so an
            // unchanged unit count on both sides means the pair is exactly the one that was queued.
            if (symbols[left].Units == 0 || symbols[right].Units == 0 || symbols[left].Next != right
                || symbols[left].Units + symbols[right].Units != top.Units)
            {
                continue;
            }
            ref var l = ref symbols[left];
            l.Key = top.Result;
            l.Id = top.Result;
            l.Units = top.Units;
            l.Next = symbols[right].Next;
            if (l.Next >= 0)
            {
                symbols[l.Next].Prev = left;
            }
            symbols[right].Units = 0;
            TryQueue(s, l.Prev, left);
            TryQueue(s, left, l.Next);
        }
        for (int i = 0; i >= 0; i = symbols[i].Next)
        {
            Emit(s, symbols[i]);
        }
        s.ClearSegment();
    }

    private void TryQueue(Scratch s, int left, int right)
    {
        if (left < 0 || right < 0)
        {
            return;
        }
        var symbols = s.Symbols;
        int leftKey = symbols[left].Key;
        int rightKey = symbols[right].Key;
        if (leftKey < 0 || rightKey < 0 || !_table.TryGetRule(leftKey, rightKey, out var rule) || rule.Result < 0)
        {
            return;
        }
        s.Push(rule, left, right, symbols[left].Units + symbols[right].Units);
        NoteUnusedMerge(s, rule.Result, leftKey, rightKey);
    }

    /// <summary>SentencePiece remembers, per unused piece, the last pair queued to form it, and splits the piece back
    /// into that pair on output (bpe_model.cc rev_merge).</summary>
    private void NoteUnusedMerge(Scratch s, int result, int leftKey, int rightKey)
    {
        if (_resegmentUnused && _types[result] == TokenType.Unused)
        {
            s.ReverseMerges[result] = (leftKey, rightKey);
        }
    }

    private void Emit(Scratch s, in Symbol symbol)
    {
        if (_bytesBeforeMerge)
        {
            s.Output.Add(symbol.Id); // Hugging Face order: unknowns were already turned into bytes or unk
            return;
        }
        if (_resegmentUnused && symbol.Id >= 0 && _types[symbol.Id] == TokenType.Unused)
        {
            Resegment(s, symbol.Key, depth: 0);
            return;
        }
        EmitIdOrUnknown(s, symbol.Id, symbol.CodePoint);
    }

    private void Resegment(Scratch s, int key, int depth)
    {
        int id = key < _table.VocabSize ? key : -1;
        // Depth is bounded by the piece length; the guard only protects against a pathological table.
        if (id >= 0 && _types[id] == TokenType.Unused && depth < 64 && s.ReverseMerges.TryGetValue(id, out var parts))
        {
            Resegment(s, parts.Left, depth + 1);
            Resegment(s, parts.Right, depth + 1);
            return;
        }
        int cp = id < 0 ? _table.SyntheticCodePoint(key) : -1;
        if (id < 0 && cp >= 0)
        {
            id = _charIds.GetValueOrDefault(cp, -1);
        }
        EmitIdOrUnknown(s, id, cp);
    }

    private void EmitIdOrUnknown(Scratch s, int id, int codePoint)
    {
        if (id >= 0 && _types[id] != TokenType.Unknown)
        {
            s.Output.Add(id);
            s.PreviousWasUnknown = false;
            return;
        }
        // SentencePiece: an unknown symbol is always one character (merges only form pieces). With byte fallback it
        // becomes its UTF-8 bytes; without, runs of unknowns collapse into one unk token.
        Debug.Assert(codePoint >= 0, "unknown symbols are single characters");
        if (_byteIds is not null)
        {
            Span<byte> utf8 = stackalloc byte[4];
            int n = new Rune(codePoint).EncodeToUtf8(utf8);
            for (int b = 0; b < n; b++)
            {
                s.Output.Add(_byteIds[utf8[b]]);
            }
            s.PreviousWasUnknown = false;
        }
        else if (!s.PreviousWasUnknown)
        {
            s.Output.Add(_unkId);
            s.PreviousWasUnknown = true;
        }
    }

    /// <summary>One node of the symbol list. Units counts the initial symbols merged into it (0 = absorbed).</summary>
    private struct Symbol
    {
        public int Key;
        public int Id;
        public int Units;
        public int Prev;
        public int Next;
        public int CodePoint; // the character of an initial one-character symbol, -1 otherwise
    }

    /// <summary>A queued pair: (rank, left index) packed into <see cref="Order"/>, smaller first.</summary>
    private struct Candidate
    {
        public long Order;
        public int Right;
        public int Units;
        public int Result;

        public readonly int Left => (int)(Order & 0xFFFF_FFFF);
    }

    /// <summary>Per-thread working memory: the segment's symbols and the candidate heap.</summary>
    private sealed class Scratch
    {
        public Symbol[] Symbols = new Symbol[256];
        public Candidate[] Heap = new Candidate[256];
        public int Count;
        public int HeapCount;
        public bool LastWasUnknownChar;
        public bool PreviousWasUnknown;
        public List<int> Output = null!;
        public Dictionary<int, (int Left, int Right)> ReverseMerges = [];

        public void Begin(List<int> output)
        {
            Output = output;
            Count = 0;
            HeapCount = 0;
            LastWasUnknownChar = false;
            PreviousWasUnknown = false;
            ReverseMerges.Clear();
        }

        public void End() => Output = null!;

        public void Append(int key, int id, int codePoint)
        {
            if (Count == Symbols.Length)
            {
                Array.Resize(ref Symbols, Symbols.Length * 2);
            }
            Symbols[Count] = new Symbol { Key = key, Id = id, Units = 1, Prev = Count - 1, Next = -1, CodePoint = codePoint };
            if (Count > 0)
            {
                Symbols[Count - 1].Next = Count;
            }
            Count++;
        }

        public void ClearSegment()
        {
            Count = 0;
            HeapCount = 0;
        }

        /// <summary>Adds a candidate without restoring heap order; <see cref="Heapify"/> follows before any pop.</summary>
        public void PushCandidateUnordered(MergeRule rule, int left, int right, int units)
        {
            if (HeapCount == Heap.Length)
            {
                Array.Resize(ref Heap, Heap.Length * 2);
            }
            Heap[HeapCount++] = new Candidate { Order = ((long)rule.Rank << 32) | (uint)left, Right = right, Units = units, Result = rule.Result };
        }

        public void Push(MergeRule rule, int left, int right, int units)
        {
            PushCandidateUnordered(rule, left, right, units);
            SiftUp(HeapCount - 1);
        }

        public void Heapify()
        {
            for (int i = HeapCount / 2 - 1; i >= 0; i--)
            {
                SiftDown(i);
            }
        }

        public bool TryPop(out Candidate top)
        {
            if (HeapCount == 0)
            {
                top = default;
                return false;
            }
            top = Heap[0];
            Heap[0] = Heap[--HeapCount];
            if (HeapCount > 1)
            {
                SiftDown(0);
            }
            return true;
        }

        private void SiftUp(int i)
        {
            var item = Heap[i];
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (Heap[parent].Order <= item.Order)
                {
                    break;
                }
                Heap[i] = Heap[parent];
                i = parent;
            }
            Heap[i] = item;
        }

        private void SiftDown(int i)
        {
            var item = Heap[i];
            int half = HeapCount >> 1;
            while (i < half)
            {
                int child = 2 * i + 1;
                if (child + 1 < HeapCount && Heap[child + 1].Order < Heap[child].Order)
                {
                    child++;
                }
                if (item.Order <= Heap[child].Order)
                {
                    break;
                }
                Heap[i] = Heap[child];
                i = child;
            }
            Heap[i] = item;
        }
    }
}
