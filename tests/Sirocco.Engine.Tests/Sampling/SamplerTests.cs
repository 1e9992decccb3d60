// Sampler behaviour: greedy is the argmax, seeds reproduce, top-k/top-p restrict the support and degenerate to greedy,
// sampled frequencies follow softmax(logits / T), and a call allocates nothing.

using Sirocco.Engine.Sampling;

namespace Sirocco.Engine.Tests.Sampling;

public class SamplerTests
{
    private const int MistralVocab = 32000;

    /// <summary>Draws for the frequency tests: enough that each expected count is in the hundreds or more.</summary>
    private const int Draws = 20_000;

    /// <summary>Chi-square critical values at significance 0.001 (upper tail) for 1…4 degrees of freedom. The draws use
    /// fixed seeds, so each test is deterministic; the bound says a correct sampler passes with probability 0.999 for
    /// any seed, and a wrong distribution (say, a missing temperature) lands in the thousands.</summary>
    private static readonly double[] s_chiSquare999 = [0, 10.83, 13.82, 16.27, 18.47];

    private static readonly float[] s_fiveLogits = [1.0f, 2.0f, 0.5f, -1.0f, 1.5f];

    [Fact]
    public void Greedy_IsTheArgmax()
    {
        var sampler = new Sampler(SamplingOptions.Greedy, 1000);
        var random = new Random(1);
        for (int step = 0; step < 50; step++)
        {
            float[] logits = RandomLogits(random, 1000, 3f);
            int expected = Array.IndexOf(logits, logits.Max());
            Assert.Equal(expected, sampler.Sample(logits));
        }
    }

    [Fact]
    public void EqualMaxima_GreedyTopK1AndTinyTopP_AllPickTheLowestId()
    {
        float[] logits = [0.5f, 1f, 3f, -2f, 2.5f, 3f, 3f, 0f];
        foreach (var options in new[]
        {
            SamplingOptions.Greedy,
            new SamplingOptions { Temperature = 1, TopK = 1, Seed = 5 },
            new SamplingOptions { Temperature = 1, TopP = 1e-9, Seed = 5 },
            new SamplingOptions { Temperature = 1, TopP = 0, Seed = 5 },
        })
        {
            var sampler = new Sampler(options, logits.Length);
            for (int i = 0; i < 20; i++)
            {
                Assert.Equal(2, sampler.Sample((float[])logits.Clone()));
            }
        }
    }

    [Theory]
    [InlineData(1, 1.0)]
    [InlineData(0, 1e-9)]
    [InlineData(1, 1e-9)]
    public void TopK1OrTinyTopP_IsGreedy(int topK, double topP)
    {
        var options = new SamplingOptions { Temperature = 1.5, TopK = topK, TopP = topP, Seed = 3 };
        var sampler = new Sampler(options, MistralVocab);
        var random = new Random(2);
        for (int step = 0; step < 20; step++)
        {
            float[] logits = RandomLogits(random, MistralVocab, 2f);
            Assert.Equal(Sampler.ArgMax(logits), sampler.Sample(logits));
        }
    }

    [Fact]
    public void SameSeed_GivesTheSameTokens_DifferentSeedsDiffer()
    {
        var options = new SamplingOptions { Temperature = 1, TopK = 40, TopP = 0.95, RepetitionPenalty = 1.1, Seed = 42 };
        int[] first = Generate(options, 200);
        int[] again = Generate(options, 200);
        int[] other = Generate(options with { Seed = 43 }, 200);
        int[] fullVocabulary = Generate(options with { TopK = 0, TopP = 1 }, 200);
        int[] fullAgain = Generate(options with { TopK = 0, TopP = 1 }, 200);

        Assert.Equal(first, again);
        Assert.Equal(fullVocabulary, fullAgain);
        Assert.NotEqual(first, other);
        Assert.True(first.Distinct().Count() > 20, "a temperature-1 sampler over flat-ish logits should wander");
    }

    [Fact]
    public void NoSeed_DrawsAFreshSeedThatReplays()
    {
        var options = new SamplingOptions { Temperature = 1 };
        var a = new Sampler(options, 10);
        var b = new Sampler(options, 10);
        Assert.NotEqual(a.Seed, b.Seed);
        Assert.Equal(Generate(options with { Seed = a.Seed }, 50), Generate(options with { Seed = a.Seed }, 50));
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.7)]
    [InlineData(2.5)]
    public void Frequencies_MatchSoftmaxOverTemperature(double temperature)
    {
        var options = new SamplingOptions { Temperature = temperature, Seed = 2024 };
        double[] expected = Softmax(s_fiveLogits, temperature);
        long[] counts = Count(options, s_fiveLogits);
        AssertChiSquare(counts, expected);
    }

    [Fact]
    public void TopK_RestrictsTheSupportAndRenormalises()
    {
        // Top 3 of [1, 2, 0.5, −1, 1.5] are ids 1, 4, 0.
        var options = new SamplingOptions { Temperature = 0.8, TopK = 3, Seed = 7 };
        long[] counts = Count(options, s_fiveLogits);
        Assert.Equal(0, counts[2]);
        Assert.Equal(0, counts[3]);
        double[] expected = Softmax(s_fiveLogits, 0.8);
        expected[2] = expected[3] = 0;
        AssertChiSquare(counts, Normalise(expected));
    }

    [Fact]
    public void TopP_KeepsTheSmallestPrefixReachingP()
    {
        // At T = 1 the probabilities are [0.164, 0.445, 0.099, 0.022, 0.270]; in descending order (ids 1, 4, 0, 2, 3)
        // the cumulative mass is 0.445, 0.715, 0.879 …, so p = 0.85 keeps ids 1, 4, 0 (0.715 < 0.85 still admits id 0)
        // and drops 2 and 3.
        double[] probabilities = Softmax(s_fiveLogits, 1);
        Assert.InRange(probabilities[1] + probabilities[4], 0.71, 0.72);
        var options = new SamplingOptions { Temperature = 1, TopP = 0.85, Seed = 11 };
        long[] counts = Count(options, s_fiveLogits);
        Assert.Equal(0, counts[2]);
        Assert.Equal(0, counts[3]);
        probabilities[2] = probabilities[3] = 0;
        AssertChiSquare(counts, Normalise(probabilities));
    }

    [Fact]
    public void TopKThenTopP_NucleusIsTakenWithinTheTopK()
    {
        // Top-2 leaves ids 1 and 4 with renormalised mass 0.622 / 0.378; p = 0.6 keeps only id 1, p = 0.7 keeps both.
        long[] narrow = Count(new SamplingOptions { Temperature = 1, TopK = 2, TopP = 0.6, Seed = 1 }, s_fiveLogits, 2000);
        Assert.Equal(2000, narrow[1]);
        long[] wide = Count(new SamplingOptions { Temperature = 1, TopK = 2, TopP = 0.7, Seed = 1 }, s_fiveLogits);
        Assert.Equal(0, wide[0] + wide[2] + wide[3]);
        double[] expected = Softmax(s_fiveLogits, 1);
        expected[0] = expected[2] = expected[3] = 0;
        AssertChiSquare(wide, Normalise(expected));
    }

    [Theory]
    [InlineData(0.3)]
    [InlineData(0.6)]
    [InlineData(0.9)]
    [InlineData(0.99)]
    public void TopP_DrawsOnlyFromTheNucleusOfTheSortedDistribution(double p)
    {
        // Brute force: sort all 500 probabilities, keep while the mass before a token is short of p.
        float[] logits = RandomLogits(new Random(8), 500, 4f);
        double[] probabilities = Softmax(logits, 1.3);
        var nucleus = new HashSet<int>();
        double cumulative = 0;
        foreach (int token in Enumerable.Range(0, 500).OrderByDescending(t => probabilities[t]))
        {
            if (cumulative >= p)
            {
                break;
            }
            nucleus.Add(token);
            cumulative += probabilities[token];
        }
        long[] counts = Count(new SamplingOptions { Temperature = 1.3, TopP = p, Seed = 21 }, logits, 5000);
        var drawn = Enumerable.Range(0, 500).Where(t => counts[t] > 0).ToHashSet();
        Assert.Subset(nucleus, drawn);
        // Most of the nucleus shows up: each member has probability at least about 1/(nucleus size · 50) here.
        Assert.True(drawn.Count > nucleus.Count * 0.8, $"drew {drawn.Count} of a {nucleus.Count}-token nucleus");
    }

    [Fact]
    public void TopKAtOrAboveTheVocabulary_IsOff()
    {
        var off = Generate(new SamplingOptions { Temperature = 1, Seed = 9 }, 100, vocab: 50);
        var large = Generate(new SamplingOptions { Temperature = 1, TopK = 50, Seed = 9 }, 100, vocab: 50);
        var larger = Generate(new SamplingOptions { Temperature = 1, TopK = 5000, Seed = 9 }, 100, vocab: 50);
        Assert.Equal(off, large);
        Assert.Equal(off, larger);
    }

    [Fact]
    public void MinusInfinityLogits_AreNeverDrawn()
    {
        float[] logits = [float.NegativeInfinity, 0f, float.NegativeInfinity, 1f];
        foreach (var options in new[]
        {
            new SamplingOptions { Temperature = 1, Seed = 1 },
            new SamplingOptions { Temperature = 1, TopP = 0.999, Seed = 1 },
            new SamplingOptions { Temperature = 1, TopK = 3, Seed = 1 },
        })
        {
            long[] counts = Count(options, logits, 2000);
            Assert.Equal(0, counts[0] + counts[2]);
        }
    }

    [Fact]
    public void Sample_WithHistory_AppliesPenaltiesBeforeChoosing()
    {
        float[] logits = [1f, 3f, 2.5f];
        var history = new TokenHistory(3);
        history.Accept(1);
        var options = new SamplingOptions { Temperature = 0, PresencePenalty = 1 };
        Assert.Equal(2, new Sampler(options, 3).Sample(logits, history)); // 3 − 1 = 2 < 2.5
        Assert.Equal(2f, logits[1]);
    }

    [Fact]
    public void Sample_RejectsMismatchedSizes()
    {
        var sampler = new Sampler(SamplingOptions.Greedy, 10);
        Assert.Throws<ArgumentException>(() => sampler.Sample(new float[9]));
        Assert.Throws<ArgumentException>(() => sampler.Sample(new float[10], new TokenHistory(11)));
    }

    [Fact]
    public void Constructor_RejectsInvalidOptions()
    {
        var e = Assert.Throws<ArgumentException>(() => new Sampler(new SamplingOptions { Temperature = double.NaN }, 10));
        Assert.Contains("Temperature", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(SamplingOptions.Greedy, 0));
    }

    [Theory]
    [InlineData(0.0, 0, 1.0)] // greedy
    [InlineData(0.8, 0, 1.0)] // full vocabulary
    [InlineData(0.8, 40, 0.9)] // top-k, then top-p
    [InlineData(0.8, 0, 0.9)] // top-p alone
    public void Sample_AllocatesNothingPerToken(double temperature, int topK, double topP)
    {
        var options = new SamplingOptions
        {
            Temperature = temperature, TopK = topK, TopP = topP, RepetitionPenalty = 1.2, FrequencyPenalty = 0.3,
            PresencePenalty = 0.2, Seed = 1,
        };
        var sampler = new Sampler(options, MistralVocab);
        var history = new TokenHistory(MistralVocab);
        int[] prompt = [1, 733, 16289, 28793, 1014];
        history.AddPrompt(prompt);
        float[] source = PeakedLogits(new Random(3), MistralVocab);
        float[] logits = new float[MistralVocab];
        for (int i = 0; i < 20; i++) // warm-up: JIT and tiering happen before measuring
        {
            source.CopyTo(logits, 0);
            history.Accept(sampler.Sample(logits, history));
        }

        // Three measured rounds; the quietest must allocate nothing. (The runtime itself may allocate on this thread
        // while it swaps in re-jitted code under load — that happens once, not per token.)
        long allocated = long.MaxValue;
        for (int round = 0; round < 3 && allocated != 0; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++)
            {
                source.CopyTo(logits, 0);
                history.Accept(sampler.Sample(logits, history));
                if (i % 50 == 49)
                {
                    // A fresh sequence now and then: penalties would otherwise flatten the 30 peaks into the bulk and
                    // make the top-p case slow (a large nucleus), which is beside the point here.
                    history.Clear();
                    history.AddPrompt(prompt);
                }
            }
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.Equal(0, allocated);
    }

    // ---- helpers ----

    /// <summary>Generates <paramref name="count"/> tokens over fresh random logits per step (fixed stream), recording
    /// each in a history so penalties take part.</summary>
    private static int[] Generate(SamplingOptions options, int count, int vocab = 1000)
    {
        var sampler = new Sampler(options, vocab);
        var history = new TokenHistory(vocab);
        var random = new Random(100);
        var tokens = new int[count];
        for (int i = 0; i < count; i++)
        {
            tokens[i] = sampler.Sample(RandomLogits(random, vocab, 1f), history);
            history.Accept(tokens[i]);
        }
        return tokens;
    }

    private static long[] Count(SamplingOptions options, float[] logits, int draws = Draws)
    {
        var sampler = new Sampler(options, logits.Length);
        var counts = new long[logits.Length];
        var work = new float[logits.Length];
        for (int i = 0; i < draws; i++)
        {
            logits.CopyTo(work, 0);
            counts[sampler.Sample(work)]++;
        }
        return counts;
    }

    /// <summary>Pearson's chi-square of <paramref name="counts"/> against <paramref name="probabilities"/> over the
    /// tokens with nonzero probability, checked against the 0.999 quantile.</summary>
    private static void AssertChiSquare(long[] counts, double[] probabilities)
    {
        long n = counts.Sum();
        double chi = 0;
        int cells = 0;
        for (int i = 0; i < counts.Length; i++)
        {
            if (probabilities[i] > 0)
            {
                double expected = n * probabilities[i];
                chi += (counts[i] - expected) * (counts[i] - expected) / expected;
                cells++;
            }
            else
            {
                Assert.Equal(0, counts[i]);
            }
        }
        double bound = s_chiSquare999[cells - 1];
        Assert.True(chi < bound, $"chi-square {chi:F2} over {cells} cells exceeds {bound}; counts [{string.Join(", ", counts)}]");
    }

    private static double[] Softmax(float[] logits, double temperature)
    {
        double max = logits.Max();
        double[] e = logits.Select(l => Math.Exp((l - max) / temperature)).ToArray();
        return Normalise(e);
    }

    private static double[] Normalise(double[] values)
    {
        double sum = values.Sum();
        return values.Select(v => v / sum).ToArray();
    }

    /// <summary>Logits shaped like a trained model's: a bulk spread over ±3 and 30 ids standing about 12 above it, which
    /// hold nearly all the probability at temperature 0.8, so a 0.9 nucleus has tens of ids, not thousands.</summary>
    private static float[] PeakedLogits(Random random, int vocab)
    {
        float[] logits = RandomLogits(random, vocab, 3f);
        for (int i = 0; i < 30; i++)
        {
            logits[random.Next(vocab)] = 12f + 2f * (float)random.NextDouble();
        }
        return logits;
    }

    private static float[] RandomLogits(Random random, int vocab, float scale)
    {
        var logits = new float[vocab];
        for (int i = 0; i < vocab; i++)
        {
            logits[i] = scale * (float)(random.NextDouble() * 2 - 1);
        }
        return logits;
    }
}
