// How the forward pass runs adapter deltas: on its worker threads, one unit per (projection, token), yet with results
// that do not depend on the thread count, and with nothing allocated per decoded token.

using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;
using Sirocco.Engine.Tests.Model;

namespace Sirocco.Engine.Tests.Lora;

public sealed class LoraForwardTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void ThreadCount_DoesNotChangeAdapterLogits(int threads)
    {
        var (two, pool2) = TinyModels.Load(TinyModels.Gguf(ModelFileType.Q4_K_M));
        var (other, poolN) = TinyModels.Load(TinyModels.Gguf(ModelFileType.Q4_K_M), threads: threads);
        using (two)
        using (pool2)
        using (other)
        using (poolN)
        {
            string dir = TestAdapter.Random(two.Config, [.. LoraModules.All.Select(m => m.Role)], seed: 4).WritePeft(_dir.File("a"));
            float[][] a = LoraEquivalenceTests.Logits(two, pool2, LoraEquivalenceTests.Prompt, LoraAdapter.Load(dir, two.Weights));
            float[][] b = LoraEquivalenceTests.Logits(other, poolN, LoraEquivalenceTests.Prompt, LoraAdapter.Load(dir, other.Weights));
            for (int i = 0; i < a.Length; i++)
            {
                Assert.Equal(a[i], b[i]);
            }
        }
    }

    /// <summary>Decoding with an adapter allocates nothing per token on any thread (A·x lives on the stack).</summary>
    [Fact]
    public void DecodeWithAnAdapter_AllocatesNothingPerToken()
    {
        var (model, pool) = TinyModels.Load(TinyModels.Gguf(ModelFileType.Q8_0), cacheType: KvCacheType.F16);
        using (model)
        using (pool)
        {
            LoraAdapter adapter = LoraAdapter.Load(TestAdapter.Random(model.Config, [.. LoraModules.All.Select(m => m.Role)], seed: 8).WritePeft(_dir.File("b")), model.Weights);
            using KvSequence sequence = pool.CreateSequence();
            sequence.Reserve(200);
            model.Forward([new SequenceInput(sequence, LoraEquivalenceTests.Prompt, Adapter: adapter)]);
            int[] token = [415];
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (clock.ElapsedMilliseconds < 1000 && sequence.Length < 150)
            {
                model.Forward([new SequenceInput(sequence, token, Adapter: adapter)]);
            }
            Thread.Sleep(300);
            long allocated = long.MaxValue;
            for (int round = 0; round < 3 && allocated != 0; round++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread() + model.WorkerAllocatedBytes;
                for (int i = 0; i < 30; i++)
                {
                    model.Forward([new SequenceInput(sequence, token, Adapter: adapter)]);
                }
                allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() + model.WorkerAllocatedBytes - before);
            }
            // As in DecodeAllocationTests: one allocation per token would show as at least 30 × 24 bytes.
            Assert.True(allocated < 30 * 24, $"{allocated} bytes allocated over 30 decode steps with an adapter");
        }
    }
}
