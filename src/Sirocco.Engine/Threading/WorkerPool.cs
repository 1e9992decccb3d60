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
/// <remarks>One <see cref="Run"/> at a time: the forward pass is the only client and calls it from one thread.
/// An exception thrown by a unit is rethrown from <see cref="Run"/> after every thread has stopped working on it.</remarks>
public sealed class WorkerPool : IDisposable
{
    // How long an idle worker spins waiting for the next job before it blocks: long enough to span the gap between
    // two steps of one token (norms, quantizing activations), short enough not to burn a core between requests.
    private const int SpinIterations = 20_000;

    private readonly Thread[] _threads;
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly Lock _runLock = new();
    private ParallelJob? _job;
    private int _unitCount;
    private int _nextUnit;
    private int _busyWorkers;
    private long _generation;
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
            _job = job;
            _unitCount = unitCount;
            _failure = null;
            Volatile.Write(ref _nextUnit, 0);
            Volatile.Write(ref _busyWorkers, _threads.Length);
            Interlocked.Increment(ref _generation);
            if (!_wake.IsSet)
            {
                _wake.Set();
            }
            Work(job, unitCount, 0);
            var spin = new SpinWait();
            while (Volatile.Read(ref _busyWorkers) != 0)
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

    private void Work(ParallelJob job, int unitCount, int worker)
    {
        int unit;
        while ((unit = Interlocked.Increment(ref _nextUnit) - 1) < unitCount)
        {
            try
            {
                job.Execute(unit, worker);
            }
            catch (Exception e) when (!e.IsFatal())
            {
                Interlocked.CompareExchange(ref _failure, e, null);
                Volatile.Write(ref _nextUnit, unitCount); // stop handing out units
            }
        }
    }

    private void WorkerLoop(int worker)
    {
        long seen = 0;
        while (true)
        {
            // Spin for a while (the next step usually comes within microseconds), then sleep on the event.
            int spins = 0;
            while (Volatile.Read(ref _generation) == seen && !_disposed)
            {
                if (++spins < SpinIterations)
                {
                    Thread.SpinWait(20);
                }
                else
                {
                    _wake.Reset();
                    if (Volatile.Read(ref _generation) == seen && !_disposed)
                    {
                        _wake.Wait(TimeSpan.FromMilliseconds(50));
                    }
                    spins = 0;
                }
            }
            if (_disposed)
            {
                return;
            }
            seen = Volatile.Read(ref _generation);
            ParallelJob? job = _job;
            if (job is not null)
            {
                Work(job, _unitCount, worker);
            }
            Interlocked.Decrement(ref _busyWorkers);
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
