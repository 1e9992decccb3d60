// The pool's bookkeeping that the scheduler's admission relies on: AvailableBlocks counts free plus unallocated
// blocks, follows reservations and returns, and BlocksFor rounds positions up to whole blocks.

using Sirocco.Engine.Model;

namespace Sirocco.Engine.Tests.Model;

public class KvCachePoolTests
{
    [Fact]
    public void AvailableBlocks_FollowsReservationsAndReturns()
    {
        long perBlock = KvCacheOptions.BytesPerPosition(TinyModels.Config, KvCacheType.F32) * 8;
        using var pool = new KvCachePool(TinyModels.Config, new KvCacheOptions(perBlock * 5, BlockSize: 8, KvCacheType.F32));
        Assert.Equal(5, pool.AvailableBlocks);

        using KvSequence a = pool.CreateSequence(), b = pool.CreateSequence();
        a.Reserve(17); // three blocks
        Assert.Equal(3, pool.UsedBlocks);
        Assert.Equal(2, pool.AvailableBlocks);
        Assert.Throws<KvCacheFullException>(() => b.Reserve(24));
        Assert.Equal(2, pool.AvailableBlocks); // a failed reservation gives back what it took

        a.Dispose(); // returned blocks stay allocated but are available again
        Assert.Equal(5, pool.AvailableBlocks);
        b.Reserve(40);
        Assert.Equal(0, pool.AvailableBlocks);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 1)]
    [InlineData(8, 1)]
    [InlineData(9, 2)]
    [InlineData(64, 8)]
    public void BlocksFor_RoundsUpToWholeBlocks(int positions, int blocks)
    {
        using var pool = new KvCachePool(TinyModels.Config, new KvCacheOptions(1L << 20, BlockSize: 8, KvCacheType.F32));
        Assert.Equal(blocks, pool.BlocksFor(positions));
    }
}
