using Sirocco.Engine.Model;
using Sirocco.Engine.Synthesis;
using Sirocco.Kernels.Memory;

namespace Sirocco.Engine.Tests.Model;

/// <summary>The attention step over a paged KV cache against a plain double-precision attention, at lengths that
/// start, fill and cross blocks, for both cache types and grouped-query heads.</summary>
public class AttentionTests
{
    [Theory]
    [InlineData(1, 8, KvCacheType.F32)]
    [InlineData(7, 8, KvCacheType.F32)]
    [InlineData(8, 8, KvCacheType.F32)]
    [InlineData(33, 8, KvCacheType.F32)]
    [InlineData(100, 32, KvCacheType.F32)]
    [InlineData(257, 16, KvCacheType.F32)]
    [InlineData(33, 8, KvCacheType.F16)]
    [InlineData(257, 16, KvCacheType.F16)]
    public void Attention_MatchesDoubleReference(int length, int blockSize, KvCacheType type)
    {
        ModelConfig config = SyntheticPresets.Tiny with { LayerCount = 2, ContextLength = 512 };
        int heads = config.HeadCount, kvHeads = config.KvHeadCount, hd = config.HeadDim, kvDim = kvHeads * hd;
        var random = new Random(length * 31 + blockSize);
        using var pool = new KvCachePool(config, new KvCacheOptions(64L << 20, blockSize, type));
        using KvSequence sequence = pool.CreateSequence();
        sequence.Reserve(length);
        const int Layer = 1;
        var keys = new float[length][];
        var values = new float[length][];
        for (int p = 0; p < length; p++)
        {
            keys[p] = RandomRow(random, kvDim);
            values[p] = RandomRow(random, kvDim);
            sequence.Write(0, p, RandomRow(random, kvDim), RandomRow(random, kvDim)); // another layer: must not leak in
            sequence.Write(Layer, p, keys[p], values[p]);
            if (type == KvCacheType.F16)
            {
                Round(keys[p]);
                Round(values[p]);
            }
        }
        sequence.SetLength(length);

        // Query tokens: a run of consecutive positions ending at the last (a prefill chunk: more than one query block
        // of 16 when long enough), then one in the middle on its own (causal: sees only its prefix).
        int run = Math.Min(length, 20);
        int[] positions = [.. Enumerable.Range(length - run, run), length / 2];
        int n = positions.Length;
        using var query = new NativeBuffer<float>((long)n * heads * hd);
        using var output = new NativeBuffer<float>((long)n * heads * hd);
        foreach (ref float q in query.Span)
        {
            q = (float)(random.NextDouble() * 2 - 1);
        }
        var job = new AttentionJob(config, threads: 1, maxBatchTokens: n)
        {
            Query = query,
            Output = output,
            Layer = Layer,
            TokenSequence = [.. Enumerable.Repeat(sequence, n)],
            TokenPosition = positions,
        };
        int units = job.Plan(n);
        Assert.Equal(((run + AttentionJob.QueryBlock - 1) / AttentionJob.QueryBlock + 1) * kvHeads, units);
        for (int unit = 0; unit < units; unit++)
        {
            job.Execute(unit, 0);
        }

        for (int t = 0; t < n; t++)
        {
            for (int h = 0; h < heads; h++)
            {
                double[] expected = Reference(query.Span.Slice((t * heads + h) * hd, hd), keys, values, positions[t] + 1, h / config.GroupSize, hd);
                ReadOnlySpan<float> actual = output.Span.Slice((t * heads + h) * hd, hd);
                for (int i = 0; i < hd; i++)
                {
                    Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * Math.Max(1, Math.Abs(expected[i])),
                        $"token {t} head {h} element {i}: expected {expected[i]}, got {actual[i]}");
                }
            }
        }
    }

    /// <summary>softmax(q·kᵀ/√d) · V over positions 0 … length − 1, in double.</summary>
    private static double[] Reference(ReadOnlySpan<float> q, float[][] keys, float[][] values, int length, int kvHead, int hd)
    {
        var scores = new double[length];
        for (int p = 0; p < length; p++)
        {
            double dot = 0;
            for (int i = 0; i < hd; i++)
            {
                dot += (double)q[i] * keys[p][kvHead * hd + i];
            }
            scores[p] = dot / Math.Sqrt(hd);
        }
        double max = scores.Max(), sum = 0;
        for (int p = 0; p < length; p++)
        {
            scores[p] = Math.Exp(scores[p] - max);
            sum += scores[p];
        }
        var result = new double[hd];
        for (int p = 0; p < length; p++)
        {
            for (int i = 0; i < hd; i++)
            {
                result[i] += scores[p] / sum * values[p][kvHead * hd + i];
            }
        }
        return result;
    }

    private static float[] RandomRow(Random random, int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 4 - 2))];

    private static void Round(float[] row)
    {
        for (int i = 0; i < row.Length; i++)
        {
            row[i] = (float)(Half)row[i];
        }
    }
}
