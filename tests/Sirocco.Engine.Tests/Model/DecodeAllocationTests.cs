using Sirocco.Engine.Model;
using Sirocco.Engine.Tests.Synthesis;

namespace Sirocco.Engine.Tests.Model;

/// <summary>Runs alone (the NotParallel collection): it counts allocations process-wide, which other tests would add to.</summary>
[Collection(nameof(NotParallel))]
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
            for (int i = 0; i < 20; i++) // warm-up: tiered JIT settles
            {
                model.Forward([new SequenceInput(sequence, token)]);
            }
            long allocated = long.MaxValue;
            for (int round = 0; round < 3 && allocated != 0; round++) // the quietest of three rounds (JIT swaps allocate once)
            {
                long before = GC.GetTotalAllocatedBytes(precise: true);
                for (int i = 0; i < 30; i++)
                {
                    model.Forward([new SequenceInput(sequence, token)]);
                }
                allocated = Math.Min(allocated, GC.GetTotalAllocatedBytes(precise: true) - before);
            }
            Assert.Equal(0, allocated);
        }
    }
}
