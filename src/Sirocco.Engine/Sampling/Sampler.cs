// Turns one position's logits into the next token: penalties, temperature, top-k, top-p, then a seeded random draw
// (or the argmax when greedy). One Sampler per sequence, called once per generated token by the decode loop; it owns
// every buffer it needs, so a call allocates nothing.

using System.Diagnostics;
using System.Security.Cryptography;

namespace Sirocco.Engine.Sampling;

/// <summary>Chooses tokens for one sequence according to its <see cref="SamplingOptions"/>. Not thread-safe.</summary>
/// <remarks>
/// Per call, in order:
/// <list type="number">
/// <item>Penalties (<see cref="ApplyPenalties"/>) rewrite the logits of tokens in the history, in place.</item>
/// <item>Temperature 0 returns the argmax (lowest id among equal maxima). Otherwise the weight of token i is
/// exp((logit_i − max) / T): softmax(logits / T) before normalisation.</item>
/// <item>Top-k keeps the k highest logits: one scan with a k-element min-heap, then a sort of the k (O(V + k log k)),
/// so a small k never sorts the vocabulary.</item>
/// <item>Top-p keeps the shortest descending prefix of the candidates whose weight reaches TopP of the candidates'
/// total, never fewer than one. Without top-k, ids too light to matter are dropped first, the rest go into a max-heap
/// (O(V)) popped only until that mass is reached (O(n log V) for a nucleus of n ids: cheap for the peaked
/// distributions of a trained model, about a full sort's cost for a flat one at high temperature).</item>
/// <item>A uniform draw u in [0, kept mass) picks the first candidate whose cumulative weight exceeds u.</item>
/// </list>
/// Candidates are ordered by logit, ties by lower id, so top-k = 1 and a tiny top-p both reproduce greedy decoding.
/// The random stream (xoshiro256**) is exactly reproducible from the seed on every platform; the weights use
/// <see cref="Math.Exp"/>, whose last bit may differ between C runtimes, so a draw landing within ~1e-16 of a
/// boundary could in principle differ across platforms, never across runs on one machine.
/// </remarks>
public sealed class Sampler
{
    private readonly SamplingOptions _options;
    private readonly double[] _weights; // [VocabSize] exp((logit − max) / T), valid for the candidates of the current call
    private readonly int[] _heap; // [VocabSize] scratch heap of token ids (see SelectTopK, Sample's top-p branch)
    private readonly int[] _candidates; // [VocabSize] the surviving ids of the current call, in descending rank
    private Xoshiro256StarStar _random;

    /// <exception cref="ArgumentException"><paramref name="options"/> has problems (<see cref="SamplingOptions.Validate"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="vocabSize"/> is not positive.</exception>
    public Sampler(SamplingOptions options, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("invalid sampling options: " + string.Join("; ", problems), nameof(options));
        }
        _options = options;
        VocabSize = vocabSize;
        _weights = new double[vocabSize];
        _heap = new int[vocabSize];
        _candidates = new int[vocabSize];
        Seed = options.Seed ?? FreshSeed();
        _random = Xoshiro256StarStar.FromSeed(Seed);
    }

    public SamplingOptions Options => _options;

    public int VocabSize { get; }

    /// <summary>The seed of this sampler's random stream: <see cref="SamplingOptions.Seed"/>, or the fresh one drawn
    /// when that was null (so a caller can report it and a user can replay the generation).</summary>
    public ulong Seed { get; }

    /// <summary>Chooses the next token from <paramref name="logits"/> (length <see cref="VocabSize"/>, no NaN), which
    /// it may modify: penalties are applied in place. <paramref name="history"/> feeds the penalties and is only read;
    /// the caller records the chosen token with <see cref="TokenHistory.Accept"/>.</summary>
    /// <exception cref="ArgumentException">A length or vocabulary size differs from <see cref="VocabSize"/>.</exception>
    public int Sample(Span<float> logits, TokenHistory? history = null)
    {
        if (logits.Length != VocabSize)
        {
            ThrowWrongLength(logits.Length, nameof(logits));
        }
        if (history is not null)
        {
            if (history.VocabSize != VocabSize)
            {
                ThrowWrongHistory(history.VocabSize, nameof(history));
            }
            ApplyPenalties(logits, history, _options);
        }
        if (_options.IsGreedy)
        {
            return ArgMax(logits);
        }

        double inverseTemperature = 1.0 / _options.Temperature;
        int topK = _options.TopK > 0 && _options.TopK < VocabSize ? _options.TopK : VocabSize;
        bool nucleus = _options.TopP < 1;
        if (topK == VocabSize && !nucleus)
        {
            return SampleFullVocabulary(logits, inverseTemperature);
        }

        int keptCount;
        double keptMass;
        if (topK < VocabSize)
        {
            // Top-k: the k highest logits, descending; then their weights (the first candidate holds the maximum).
            SelectTopK(logits, topK);
            double max = logits[_candidates[0]];
            double topKMass = 0;
            for (int i = 0; i < topK; i++)
            {
                int token = _candidates[i];
                _weights[token] = Math.Exp((logits[token] - max) * inverseTemperature);
                topKMass += _weights[token];
            }
            // Top-p over the k survivors: include candidates while the mass kept so far is short of TopP·mass.
            double threshold = nucleus ? _options.TopP * topKMass : double.PositiveInfinity;
            keptCount = 0;
            keptMass = 0;
            do
            {
                keptMass += _weights[_candidates[keptCount]];
                keptCount++;
            }
            while (keptCount < topK && keptMass < threshold);
        }
        else
        {
            // Top-p alone: the threshold needs the whole vocabulary's mass.
            double totalMass = ComputeWeights(logits, logits[ArgMax(logits)], inverseTemperature);
            double threshold = _options.TopP * totalMass;
            // Tokens lighter than (1 − p)·total / V cannot be in the nucleus: together they weigh less than the
            // (1 − p)·total the nucleus leaves out, and they rank below every heavier token, so they lie in the dropped
            // tail. Only the rest enter the heap, which is then popped just as far as the nucleus reaches.
            double cut = (1 - _options.TopP) * totalMass / VocabSize;
            int heapCount = 0;
            for (int token = 0; token < VocabSize; token++)
            {
                if (_weights[token] >= cut)
                {
                    _heap[heapCount++] = token;
                }
            }
            Heapify(heapCount, logits, worstOnTop: false);
            keptCount = 0;
            keptMass = 0;
            do
            {
                int token = PopTop(heapCount - keptCount, logits, worstOnTop: false);
                _candidates[keptCount++] = token;
                keptMass += _weights[token];
            }
            while (keptCount < heapCount && keptMass < threshold);
        }
        return Draw(_candidates.AsSpan(0, keptCount), keptMass);
    }

    /// <summary>Applies the penalties of <paramref name="options"/> to the logits of the tokens in
    /// <paramref name="history"/>, in place: first the repetition penalty p over every seen token (logit / p when
    /// positive, logit · p otherwise; skipped when p is 1 or 0), then logit −= count · FrequencyPenalty +
    /// PresencePenalty for tokens generated count &gt; 0 times. Arithmetic is in double, rounded once to float.</summary>
    public static void ApplyPenalties(Span<float> logits, TokenHistory history, SamplingOptions options)
    {
        ArgumentNullException.ThrowIfNull(history);
        ArgumentNullException.ThrowIfNull(options);
        double repetition = options.RepetitionPenalty;
        bool repetitionOn = repetition is not 1 and not 0;
        bool additiveOn = options.FrequencyPenalty != 0 || options.PresencePenalty != 0;
        if (!repetitionOn && !additiveOn)
        {
            return;
        }
        foreach (int token in history.SeenTokens)
        {
            double logit = logits[token];
            if (repetitionOn)
            {
                logit = logit > 0 ? logit / repetition : logit * repetition;
            }
            int count = history.TimesGenerated(token);
            if (count > 0)
            {
                logit -= count * options.FrequencyPenalty + options.PresencePenalty;
            }
            logits[token] = (float)logit;
        }
    }

    /// <summary>The index of the largest value; the lowest such index when several are equal.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
            {
                best = i;
            }
        }
        return best;
    }

    /// <summary>No top-k, no top-p: one pass for the maximum, one for the weights, one for the draw.</summary>
    private int SampleFullVocabulary(ReadOnlySpan<float> logits, double inverseTemperature)
    {
        double max = logits[ArgMax(logits)];
        double total = ComputeWeights(logits, max, inverseTemperature);
        double u = _random.NextDouble() * total;
        double cumulative = 0;
        int lastPositive = 0;
        for (int token = 0; token < logits.Length; token++)
        {
            double w = _weights[token];
            cumulative += w;
            if (u < cumulative)
            {
                return token;
            }
            if (w > 0)
            {
                lastPositive = token;
            }
        }
        return lastPositive; // u fell past the summed weights through rounding: the last token that had any weight
    }

    /// <summary>Fills the weights of every token; returns their sum.</summary>
    private double ComputeWeights(ReadOnlySpan<float> logits, double max, double inverseTemperature)
    {
        double total = 0;
        for (int token = 0; token < logits.Length; token++)
        {
            double w = Math.Exp((logits[token] - max) * inverseTemperature);
            _weights[token] = w;
            total += w;
        }
        return total;
    }

    /// <summary>Draws one of <paramref name="candidates"/> in proportion to its weight; <paramref name="mass"/> is
    /// their summed weight.</summary>
    private int Draw(ReadOnlySpan<int> candidates, double mass)
    {
        Debug.Assert(candidates.Length > 0 && mass > 0);
        double u = _random.NextDouble() * mass;
        double cumulative = 0;
        foreach (int token in candidates)
        {
            cumulative += _weights[token];
            if (u < cumulative)
            {
                return token;
            }
        }
        // Rounding put u at or past the sum: the last candidate with weight (the first always has weight 1).
        for (int i = candidates.Length - 1; i > 0; i--)
        {
            if (_weights[candidates[i]] > 0)
            {
                return candidates[i];
            }
        }
        return candidates[0];
    }

    // ---- binary heaps of token ids over _heap, ordered by rank (logit descending, id ascending) ----

    /// <summary>True when token <paramref name="a"/> ranks before <paramref name="b"/>: higher logit, or equal logit
    /// and lower id. The same order as <see cref="ArgMax"/>, so top-k = 1 is greedy.</summary>
    private static bool RanksBefore(int a, int b, ReadOnlySpan<float> logits) =>
        logits[a] > logits[b] || (logits[a] == logits[b] && a < b);

    /// <summary>Whether <paramref name="a"/> belongs above <paramref name="b"/> in the heap: the best-ranked id on top
    /// (a max-heap, for popping in descending order), or with <paramref name="worstOnTop"/> the worst-ranked (a
    /// min-heap, for keeping the k best while scanning).</summary>
    private static bool Above(int a, int b, ReadOnlySpan<float> logits, bool worstOnTop) =>
        worstOnTop ? RanksBefore(b, a, logits) : RanksBefore(a, b, logits);

    /// <summary>Puts the k best-ranked ids into <see cref="_candidates"/>[0, k) in descending order: one scan over the
    /// vocabulary keeping a k-element min-heap (an id enters only if it beats the worst kept one, so the scan costs
    /// about one comparison per id), then a heap sort of the k.</summary>
    private void SelectTopK(ReadOnlySpan<float> logits, int k)
    {
        for (int token = 0; token < k; token++)
        {
            _heap[token] = token;
        }
        Heapify(k, logits, worstOnTop: true);
        for (int token = k; token < logits.Length; token++)
        {
            if (RanksBefore(token, _heap[0], logits))
            {
                _heap[0] = token;
                SiftDown(0, k, logits, worstOnTop: true);
            }
        }
        // Popping the min-heap yields the worst first: fill the candidates from the back.
        for (int i = k - 1; i >= 0; i--)
        {
            _candidates[i] = PopTop(i + 1, logits, worstOnTop: true);
        }
    }

    /// <summary>Turns _heap[0, count) into a heap bottom-up (Floyd), O(count).</summary>
    private void Heapify(int count, ReadOnlySpan<float> logits, bool worstOnTop)
    {
        for (int i = count / 2 - 1; i >= 0; i--)
        {
            SiftDown(i, count, logits, worstOnTop);
        }
    }

    /// <summary>Removes and returns the top of a heap of <paramref name="count"/> ids (its last id moves to the root).</summary>
    private int PopTop(int count, ReadOnlySpan<float> logits, bool worstOnTop)
    {
        int top = _heap[0];
        _heap[0] = _heap[count - 1];
        SiftDown(0, count - 1, logits, worstOnTop);
        return top;
    }

    /// <summary>Moves the id at <paramref name="index"/> down until neither child belongs above it.</summary>
    private void SiftDown(int index, int count, ReadOnlySpan<float> logits, bool worstOnTop)
    {
        int token = _heap[index];
        while (true)
        {
            int child = 2 * index + 1;
            if (child >= count)
            {
                break;
            }
            if (child + 1 < count && Above(_heap[child + 1], _heap[child], logits, worstOnTop))
            {
                child++;
            }
            if (!Above(_heap[child], token, logits, worstOnTop))
            {
                break;
            }
            _heap[index] = _heap[child];
            index = child;
        }
        _heap[index] = token;
    }

    private static ulong FreshSeed()
    {
        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        RandomNumberGenerator.Fill(bytes);
        return BitConverter.ToUInt64(bytes);
    }

    private void ThrowWrongLength(int length, string paramName) =>
        throw new ArgumentException($"logits have {length} entries; this sampler's vocabulary has {VocabSize}", paramName);

    private void ThrowWrongHistory(int vocabSize, string paramName) =>
        throw new ArgumentException($"the history covers {vocabSize} token ids; this sampler's vocabulary has {VocabSize}", paramName);
}
