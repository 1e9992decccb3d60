using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Model;

namespace Sirocco.Engine.Tests.Model;

/// <summary>The forward pass agrees with itself across the ways of running it: cached decode vs recomputation,
/// batches vs single sequences, Hugging Face vs GGUF layout, threads.</summary>
public class LlamaModelTests
{
    private static readonly int[] Prompt = [1, 415, 2936, 9060, 285, 1142, 28705, 28770, 28723, 13, 2, 28740, 28750];

    [Fact]
    public void CachedDecode_EqualsFullRecomputation()
    {
        var (model, pool) = TinyModels.Load(TinyModels.Gguf(ModelFileType.F32));
        using (model)
        using (pool)
        {
            float[][] full = AllLogits(model, pool, Prompt);
            using KvSequence sequence = pool.CreateSequence();
            model.Forward([new SequenceInput(sequence, Prompt.AsMemory(0, 4))]);
            AssertClose(full[3], model.Logits(0), 1e-5, "after the 4-token prefill");
            for (int i = 4; i < Prompt.Length; i++)
            {
                model.Forward([new SequenceInput(sequence, Prompt.AsMemory(i, 1))]);
                AssertClose(full[i], model.Logits(0), 1e-5, $"decode step at position {i}");
            }
            Assert.Equal(Prompt.Length, sequence.Length);
        }
    }

    [Fact]
    public void Batch_EqualsEachSequenceAlone()
    {
        var (model, pool) = TinyModels.Load(TinyModels.Gguf(ModelFileType.F32));
        using (model)
        using (pool)
        {
            int[] a = Prompt[..7], b = Prompt[3..], c = [1, 22557];
            float[] aloneA = AllLogits(model, pool, a)[^1], aloneB = AllLogits(model, pool, b)[^1];
            float[][] aloneC = AllLogits(model, pool, [.. c, 851, 349]);

            using KvSequence sa = pool.CreateSequence(), sb = pool.CreateSequence(), sc = pool.CreateSequence();
            model.Forward([new SequenceInput(sc, c)]);
            // One call: two prompts (prefill) and a decode step of a third sequence at another position.
            model.Forward([new SequenceInput(sa, a), new SequenceInput(sb, b), new SequenceInput(sc, new[] { 851 })]);
            Assert.Equal(3, model.LogitRows);
            AssertClose(aloneA, model.Logits(0), 1e-5, "sequence a");
            AssertClose(aloneB, model.Logits(1), 1e-5, "sequence b");
            AssertClose(aloneC[2], model.Logits(2), 1e-5, "sequence c decode");
            model.Forward([new SequenceInput(sc, new[] { 349 }), new SequenceInput(sa, new[] { 349 }, LogitsWanted.None)]);
            Assert.Equal(1, model.LogitRows);
            AssertClose(aloneC[3], model.Logits(0), 1e-5, "sequence c second decode");
        }
    }

    [Fact]
    public void HuggingFaceLayout_EqualsGgufLayout()
    {
        var (gguf, poolG) = TinyModels.Load(TinyModels.Gguf(ModelFileType.F32));
        var (hf, poolH) = TinyModels.Load(TinyModels.HuggingFace(SafeTensorDtype.F32));
        using (gguf)
        using (poolG)
        using (hf)
        using (poolH)
        {
            float[][] a = AllLogits(gguf, poolG, Prompt), b = AllLogits(hf, poolH, Prompt);
            for (int i = 0; i < Prompt.Length; i++)
            {
                AssertClose(a[i], b[i], 1e-5, $"position {i}");
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void ThreadCount_DoesNotChangeLogits(int threads)
    {
        var (one, pool1) = TinyModels.Load(TinyModels.Gguf(ModelFileType.Q4_K_M), threads: 1);
        var (many, poolN) = TinyModels.Load(TinyModels.Gguf(ModelFileType.Q4_K_M), threads: threads);
        using (one)
        using (pool1)
        using (many)
        using (poolN)
        {
            float[][] a = AllLogits(one, pool1, Prompt), b = AllLogits(many, poolN, Prompt);
            for (int i = 0; i < Prompt.Length; i++)
            {
                Assert.Equal(a[i], b[i]);
            }
        }
    }

    [Fact]
    public void F16Cache_StaysCloseToF32Cache()
    {
        var (model32, pool32) = TinyModels.Load(TinyModels.Gguf(ModelFileType.F32));
        var (model16, pool16) = TinyModels.Load(TinyModels.Gguf(ModelFileType.F32), cacheType: KvCacheType.F16);
        using (model32)
        using (pool32)
        using (model16)
        using (pool16)
        {
            float[][] a = AllLogits(model32, pool32, Prompt), b = AllLogits(model16, pool16, Prompt);
            for (int i = 0; i < Prompt.Length; i++)
            {
                AssertClose(a[i], b[i], 2e-3, $"position {i}");
            }
        }
    }

    [Fact]
    public void FullCache_ThrowsAndLeavesLengthsAlone()
    {
        using var model = new LlamaModel(WeightLoader.Load(TinyModels.Gguf(ModelFileType.Q8_0)), 2, 64);
        long perBlock = KvCacheOptions.BytesPerPosition(model.Config, KvCacheType.F16) * 8;
        using KvCachePool pool = model.CreateCache(new KvCacheOptions(perBlock * 2, BlockSize: 8));
        using KvSequence a = pool.CreateSequence(), b = pool.CreateSequence();
        model.Forward([new SequenceInput(a, Prompt.AsMemory(0, 10))]); // two blocks: the whole budget
        Assert.Throws<KvCacheFullException>(() => model.Forward([new SequenceInput(b, Prompt.AsMemory(0, 3))]));
        Assert.Equal(10, a.Length);
        Assert.Equal(0, b.Length);
        a.Dispose(); // returns its blocks
        model.Forward([new SequenceInput(b, Prompt.AsMemory(0, 3))]);
        Assert.Equal(3, b.Length);
    }

    [Fact]
    public void BadInputs_AreRejectedWithClearMessages()
    {
        var (model, pool) = TinyModels.Load(TinyModels.Gguf(ModelFileType.Q8_0));
        using (model)
        using (pool)
        {
            using KvSequence s = pool.CreateSequence();
            var e = Assert.Throws<ArgumentException>(() => model.Forward([new SequenceInput(s, new[] { 1, 32000 })]));
            Assert.Contains("32000", e.Message);
            Assert.Throws<ArgumentException>(() => model.Forward([new SequenceInput(s, Array.Empty<int>())]));
            Assert.Throws<ArgumentException>(() => model.Forward([new SequenceInput(s, new[] { 1 }), new SequenceInput(s, new[] { 2 })]));
            Assert.Throws<ArgumentException>(() => model.Forward([new SequenceInput(s, new int[65])])); // over MaxBatchTokens
            Assert.Equal(0, s.Length);
        }
    }

    /// <summary>The per-sequence adapter seam (LoRA lands on it): an adapter's delta reaches only its own sequence's
    /// rows, only for the projections it targets, and an adapter that targets nothing changes nothing.</summary>
    [Fact]
    public void Adapter_ChangesOnlyItsOwnSequence()
    {
        var (model, pool) = TinyModels.Load(TinyModels.Gguf(ModelFileType.F32));
        using (model)
        using (pool)
        {
            float[] plain = AllLogits(model, pool, Prompt)[^1];
            var nothing = new ShiftAdapter(target: null);
            var down = new ShiftAdapter(LlamaTensorRole.Down);
            using KvSequence a = pool.CreateSequence(), b = pool.CreateSequence(), c = pool.CreateSequence();
            model.Forward([new SequenceInput(a, Prompt, Adapter: nothing), new SequenceInput(b, Prompt, Adapter: down), new SequenceInput(c, Prompt)]);
            AssertClose(plain, model.Logits(0), 1e-6, "adapter targeting nothing");
            AssertClose(plain, model.Logits(2), 1e-6, "sequence without adapter, batched with one that has");
            Assert.Equal(0, nothing.Calls);
            Assert.Equal(model.Config.LayerCount * Prompt.Length, down.Calls);
            double difference = 0;
            for (int i = 0; i < plain.Length; i++)
            {
                difference = Math.Max(difference, Math.Abs(plain[i] - model.Logits(1)[i]));
            }
            Assert.True(difference > 1e-3, "the down-projection adapter must change its sequence's logits");
        }
    }

    /// <summary>Adds a fixed small vector to one projection's output (a stand-in for B·A·x). Thread-safe, as the seam
    /// requires: the forward pass calls it from its workers.</summary>
    private sealed class ShiftAdapter(LlamaTensorRole? target) : IProjectionAdapter
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public bool Targets(int layer, LlamaTensorRole role) => role == target;

        public void AddDelta(int layer, LlamaTensorRole role, ReadOnlySpan<float> input, Span<float> output)
        {
            Interlocked.Increment(ref _calls);
            for (int i = 0; i < output.Length; i++)
            {
                output[i] += 0.05f * MathF.Sin(i + layer);
            }
        }
    }

    /// <summary>Logits of every position of <paramref name="tokens"/> run as one fresh sequence.</summary>
    internal static float[][] AllLogits(LlamaModel model, KvCachePool pool, int[] tokens)
    {
        using KvSequence sequence = pool.CreateSequence();
        model.Forward([new SequenceInput(sequence, tokens, LogitsWanted.All)]);
        return [.. Enumerable.Range(0, tokens.Length).Select(i => model.Logits(i).ToArray())];
    }

    /// <summary>|a − b| ≤ tolerance · max|a| elementwise (logits are O(1), so this is a relative bound on the row).</summary>
    internal static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = 0, worst = 0;
        int at = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        for (int i = 0; i < expected.Length; i++)
        {
            double error = Math.Abs(expected[i] - actual[i]);
            if (error > worst)
            {
                worst = error;
                at = i;
            }
        }
        Assert.True(worst <= tolerance * scale, $"{what}: logit {at} differs by {worst:G4} ({worst / scale:G3} of max |logit| {scale:G4}); expected {expected[at]}, got {actual[at]}");
    }
}
