// A fixed set of threads that run the forward pass's parallel steps. A decode step issues a few hundred of them per
// token (matrix products, attention), each lasting tens to hundreds of microseconds, so handing out work must cost
// less than a microsecond and allocate nothing: work is a reusable ParallelJob object, units are claimed from a shared
// counter, idle workers spin briefly before sleeping, and the calling thread works too.

namespace Sirocco.Engine.Threading;

/// <summary>A step of parallel work: <see cref="Execute"/> is called once for every unit in [0, unitCount).</summary>
/// <remarks>Jobs are long-lived objects whose fields are set before each <see cref="WorkerPool.Run"/>; units run on
/// any thread, in any order, concurrently, so each must write memory no other unit writes.</remarks>
public abstract class ParallelJob
{
    /// <summary>Runs unit <paramref name="unit"/> on worker <paramref name="worker"/> (0 is the calling thread;
    /// below <see cref="WorkerPool.ThreadCount"/>, so per-worker scratch can be indexed by it).</summary>
    public abstract void Execute(int unit, int worker);
}

/// <summary>A persistent pool of <see cref="ThreadCount"/> threads (the caller plus ThreadCount − 1 workers).</summary>
/// <remarks>
/// One <see cref="Run"/> at a time: the forward pass is the only client and calls it from one thread. The caller
/// never waits for a worker that has not started: units are claimed from a counter tagged with the run's number, so
/// a worker the OS has not scheduled yet (a busy, shared machine) simply finds nothing left to do, and can never
/// claim a unit of a run other than the one whose job it read. An exception thrown by a unit is rethrown from
/// <see cref="Run"/> once every claimed unit has finished.
/// </remarks>
public sealed class WorkerPool : IDisposable
{
    // Idle workers spin (yielding now and then) this many rounds before blocking: long enough to bridge the gap
    // between two steps of one token, short enough not to burn a core between requests.
    private const int SpinRounds = 4_000;

    private readonly Thread[] _threads;
    private readonly long[] _allocated; // per worker thread: bytes it has allocated, as of its last step
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly Lock _runLock = new();
    private ParallelJob? _job;
    private int _unitCount;
    private long _claims;     // high 32 bits: run number; low 32 bits: next unit to hand out
    private int _completed;   // units of the current run that have finished
    private int _run;
    private volatile bool _disposed;
    private Exception? _failure;

    /// <summary>Starts a pool using <paramref name="threadCount"/> threads in all (default: one per logical core).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threadCount"/> is not in 1 … 1024.</exception>
    public WorkerPool(int threadCount = 0)
    {
        if (threadCount == 0)
        {
            threadCount = Environment.ProcessorCount;
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(threadCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(threadCount, 1024);
        ThreadCount = threadCount;
        _threads = new Thread[threadCount - 1];
        _allocated = new long[threadCount];
        for (int i = 0; i < _threads.Length; i++)
        {
            int worker = i + 1;
            _threads[i] = new Thread(() => WorkerLoop(worker), maxStackSize: 1 << 20)
            {
                IsBackground = true,
                Name = $"sirocco-worker-{worker}",
            };
            _threads[i].Start();
        }
    }

    /// <summary>Threads that execute units, the caller included.</summary>
    public int ThreadCount { get; }

    /// <summary>Bytes the pool's own threads have allocated on the managed heap (as of each one's latest step): with
    /// the caller's <see cref="GC.GetAllocatedBytesForCurrentThread"/>, what shows that a step allocates nothing.</summary>
    public long WorkerAllocatedBytes
    {
        get
        {
            long sum = 0;
            for (int i = 1; i < _allocated.Length; i++)
            {
                sum += Volatile.Read(ref _allocated[i]);
            }
            return sum;
        }
    }

    /// <summary>Runs <paramref name="job"/> for units 0 … <paramref name="unitCount"/> − 1 on all threads and returns
    /// when every unit has finished.</summary>
    public void Run(ParallelJob job, int unitCount)
    {
        ArgumentNullException.ThrowIfNull(job);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (unitCount <= 0)
        {
            return;
        }
        if (_threads.Length == 0 || unitCount == 1)
        {
            for (int unit = 0; unit < unitCount; unit++)
            {
                job.Execute(unit, 0);
            }
            return;
        }
        lock (_runLock)
        {
            int run = _run + 1;
            _job = job;
            _unitCount = unitCount;
            _failure = null;
            Volatile.Write(ref _completed, 0);
            Volatile.Write(ref _run, run);
            Interlocked.Exchange(ref _claims, (long)run << 32); // publishes the fields above
            if (!_wake.IsSet)
            {
                _wake.Set();
            }
            Work(job, unitCount, run, 0);
            var spin = new SpinWait();
            while (Volatile.Read(ref _completed) != unitCount)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
            _job = null;
            if (_failure is { } failure)
            {
                throw new AggregateException("a parallel step failed", failure);
            }
        }
    }

    /// <summary>Claims and runs units of run <paramref name="run"/> until none are left.</summary>
    private void Work(ParallelJob job, int unitCount, int run, int worker)
    {
        while (true)
        {
            long claims = Volatile.Read(ref _claims);
            int unit = (int)(claims & 0xFFFF_FFFF);
            if ((int)(claims >> 32) != run || unit >= unitCount)
            {
                return;
            }
            if (Interlocked.CompareExchange(ref _claims, claims + 1, claims) != claims)
            {
                continue;
            }
            try
            {
                if (_failure is null)
                {
                    job.Execute(unit, worker);
                }
            }
            catch (Exception e) when (!e.IsFatal())
            {
                Interlocked.CompareExchange(ref _failure, e, null);
            }
            finally
            {
                Interlocked.Increment(ref _completed);
            }
        }
    }

    private void WorkerLoop(int worker)
    {
        int seen = 0;
        while (!_disposed)
        {
            int run = Volatile.Read(ref _run);
            if (run != seen)
            {
                seen = run;
                ParallelJob? job = _job;
                int unitCount = _unitCount;
                // The job and count were read after the run number; if a newer run started meanwhile, the claim
                // counter's tag no longer matches and Work returns at once.
                if (job is not null && Volatile.Read(ref _run) == run)
                {
                    Work(job, unitCount, run, worker);
                    Volatile.Write(ref _allocated[worker], GC.GetAllocatedBytesForCurrentThread());
                }
                continue;
            }
            var spin = new SpinWait();
            for (int round = 0; round < SpinRounds && Volatile.Read(ref _run) == seen && !_disposed; round++)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
            if (Volatile.Read(ref _run) == seen && !_disposed)
            {
                _wake.Reset();
                if (Volatile.Read(ref _run) == seen && !_disposed)
                {
                    _wake.Wait(TimeSpan.FromMilliseconds(50));
                }
            }
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _wake.Set();
        foreach (Thread thread in _threads)
        {
            thread.Join();
        }
        _wake.Dispose();
    }
}

internal static class ExceptionExtensions
{
    /// <summary>Exceptions no caller can recover from, which are left to crash the process.</summary>
    public static bool IsFatal(this Exception e) => e is OutOfMemoryException or StackOverflowException or AccessViolationException;
}
