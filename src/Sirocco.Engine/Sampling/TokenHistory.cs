// What the penalties of one sequence need to know about its past: which tokens appeared in the prompt or the output
// (repetition penalty) and how often each was generated (frequency and presence penalties). One per sequence, sized
// to the vocabulary once, so recording a token never allocates.

namespace Sirocco.Engine.Sampling;

/// <summary>Token occurrences of one sequence. Not thread-safe: one sequence, one decode loop.</summary>
public sealed class TokenHistory
{
    private readonly bool[] _seen; // [VocabSize] true once the token appeared in the prompt or the output
    private readonly int[] _generatedCounts; // [VocabSize] times the token was generated
    private readonly int[] _seenTokens; // distinct seen ids in first-seen order; the first _seenCount entries are used
    private int _seenCount;

    /// <param name="vocabSize">Number of token ids; every id recorded must be in [0, vocabSize).</param>
    public TokenHistory(int vocabSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
        VocabSize = vocabSize;
        _seen = new bool[vocabSize];
        _generatedCounts = new int[vocabSize];
        _seenTokens = new int[vocabSize];
    }

    public int VocabSize { get; }

    /// <summary>Tokens generated so far (with repeats).</summary>
    public int GeneratedCount { get; private set; }

    /// <summary>The distinct tokens seen in the prompt or the output, in first-seen order. Penalties visit only these,
    /// so their cost follows the sequence length, not the vocabulary.</summary>
    public ReadOnlySpan<int> SeenTokens => _seenTokens.AsSpan(0, _seenCount);

    /// <summary>Records prompt tokens: they count for the repetition penalty only.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id outside [0, VocabSize).</exception>
    public void AddPrompt(ReadOnlySpan<int> tokens)
    {
        foreach (int token in tokens)
        {
            MarkSeen(token);
        }
    }

    /// <summary>Records a generated token: it counts for all three penalties.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id outside [0, VocabSize).</exception>
    public void Accept(int token)
    {
        MarkSeen(token);
        _generatedCounts[token]++;
        GeneratedCount++;
    }

    /// <summary>True when <paramref name="token"/> appeared in the prompt or the output.</summary>
    public bool WasSeen(int token) => _seen[token];

    /// <summary>How many times <paramref name="token"/> was generated.</summary>
    public int TimesGenerated(int token) => _generatedCounts[token];

    /// <summary>Forgets everything, for reuse by another sequence (cost proportional to the tokens recorded).</summary>
    public void Clear()
    {
        foreach (int token in SeenTokens)
        {
            _seen[token] = false;
            _generatedCounts[token] = 0;
        }
        _seenCount = 0;
        GeneratedCount = 0;
    }

    private void MarkSeen(int token)
    {
        if ((uint)token >= (uint)VocabSize)
        {
            ThrowOutOfVocabulary(token);
        }
        if (!_seen[token])
        {
            _seen[token] = true;
            _seenTokens[_seenCount++] = token;
        }
    }

    private void ThrowOutOfVocabulary(int token) =>
        throw new ArgumentOutOfRangeException(nameof(token), token, $"token id must be in [0, {VocabSize})");
}
