using Sirocco.Engine.Threading;

namespace Sirocco.Engine.Tests.Threading;

public class WorkerPoolTests
{
    private sealed class CountingJob(int units) : ParallelJob
    {
        public int[] Hits { get; } = new int[units];

        public int MaxWorker;

        public override void Execute(int unit, int worker)
        {
            Interlocked.Increment(ref Hits[unit]);
            int seen;
            while ((seen = Volatile.Read(ref MaxWorker)) < worker && Interlocked.CompareExchange(ref MaxWorker, worker, seen) != seen)
            {
            }
        }
    }

    private sealed class FailingJob(int failAt) : ParallelJob
    {
        public override void Execute(int unit, int worker)
        {
            if (unit == failAt)
            {
                throw new InvalidOperationException($"unit {unit} failed");
            }
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(2, 7)]
    [InlineData(4, 1000)]
    public void Run_ExecutesEveryUnitExactlyOnce_ManyTimesOver(int threads, int units)
    {
        using var pool = new WorkerPool(threads);
        for (int run = 0; run < 300; run++)
        {
            var job = new CountingJob(units);
            pool.Run(job, units);
            Assert.All(job.Hits, hits => Assert.Equal(1, hits));
            Assert.InRange(job.MaxWorker, 0, threads - 1);
        }
    }

    [Fact]
    public void Run_RethrowsAUnitsException_AndThePoolKeepsWorking()
    {
        using var pool = new WorkerPool(3);
        var e = Assert.Throws<AggregateException>(() => pool.Run(new FailingJob(17), 100));
        Assert.Contains("unit 17 failed", e.InnerException!.Message);
        var job = new CountingJob(50);
        pool.Run(job, 50);
        Assert.All(job.Hits, hits => Assert.Equal(1, hits));
    }

    [Fact]
    public void Run_AfterIdlePeriod_WakesSleepingWorkers()
    {
        using var pool = new WorkerPool(2);
        Thread.Sleep(200); // long enough for the worker to stop spinning and block
        var job = new CountingJob(64);
        pool.Run(job, 64);
        Assert.All(job.Hits, hits => Assert.Equal(1, hits));
    }

    [Fact]
    public void Constructor_RejectsBadThreadCounts()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new WorkerPool(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WorkerPool(2000));
    }
}
