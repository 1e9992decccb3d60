using Sirocco.Engine.Model;

namespace Sirocco.Engine.Tests.Model;

/// <summary>Counts the allocations of the calling thread and of the model's worker threads (not process-wide: the test
/// runner's own threads allocate at any time).</summary>
public class DecodeAllocationTests
{
    private static readonly int[] Prompt = [1, 415, 2936, 9060, 285, 1142];

    /// <summary>Steady-state decode allocates nothing on any thread (the pool, jobs, kernels and KV blocks are all
    /// reused), for every weight-type family: legacy quants, K-quants, and float weights.</summary>
    [Theory]
    [InlineData(ModelFileType.Q4_0)]
    [InlineData(ModelFileType.Q4_K_M)]
    [InlineData(ModelFileType.F16)]
    public void Decode_AllocatesNothingPerToken(ModelFileType type)
    {
        var (model, pool) = TinyModels.Load(TinyModels.Gguf(type), cacheType: KvCacheType.F16);
        using (model)
        using (pool)
        {
            using KvSequence sequence = pool.CreateSequence();
            sequence.Reserve(200); // blocks come from the pool once; reserving up front keeps block rental out of the count
            model.Forward([new SequenceInput(sequence, Prompt)]);
            int[] token = [415];
            // Warm-up for a second: tiering recompiles hot methods after a 100 ms delay, on a thread that allocates.
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (clock.ElapsedMilliseconds < 1000 && sequence.Length < 150)
            {
                model.Forward([new SequenceInput(sequence, token)]);
            }
            Thread.Sleep(300);
            long allocated = long.MaxValue;
            for (int round = 0; round < 3 && allocated != 0; round++) // the quietest of three rounds (JIT swaps allocate once)
            {
                long before = GC.GetAllocatedBytesForCurrentThread() + model.WorkerAllocatedBytes;
                for (int i = 0; i < 30; i++)
                {
                    model.Forward([new SequenceInput(sequence, token)]);
                }
                allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() + model.WorkerAllocatedBytes - before);
            }
            // Any object is at least 24 bytes, so one allocation per token would show as ≥ 30 × 24 bytes. Less than that
            // (seen: one 24-byte object per round, from a worker parking on its wait handle) is not per token.
            Assert.True(allocated < 30 * 24, $"{allocated} bytes allocated over 30 decode steps");
        }
    }
}
