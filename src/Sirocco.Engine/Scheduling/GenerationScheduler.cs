// Continuous batching: many requests, submitted from any thread, share the forward passes of one dedicated engine
// thread. This file owns the public side (validation and submission, cancellation callbacks, shutdown and disposal);
// GenerationScheduler.Loop.cs owns the engine thread (admission, the step, sampling, retiring sequences).

using System.Diagnostics;
using Sirocco.Engine.Model;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Scheduling;

/// <summary>Runs generation requests in a continuous batch over one <see cref="LlamaModel"/>.</summary>
/// <remarks>
/// <para>Requests wait in a FIFO queue until the running batch has room (<see cref="SchedulerOptions.MaxActiveSequences"/>)
/// and the KV pool can reserve prompt + MaxTokens positions for them, so a running sequence never meets a full cache.
/// Each step feeds one token of every decoding sequence, then prompt chunks of the prefilling ones up to the step's
/// token budget; sequences whose prompt completed, and the decoding ones, sample their next token from that step's
/// logits with their own seeded <see cref="Sampling.Sampler"/>, exactly as <see cref="Generation.TextGenerator"/>
/// does, so a request gives the same tokens alone, batched, or through the TextGenerator.</para>
/// <para>The scheduler does not own the model, the tokenizer or the cache pool: dispose them after it. While it runs
/// it is the model's only caller.</para>
/// </remarks>
public sealed partial class GenerationScheduler : IDisposable
{
    /// <summary>How often an idle engine thread retries a queue head that the pool could not hold (blocks may be held
    /// by another user of the pool).</summary>
    private static readonly TimeSpan s_blockedRetry = TimeSpan.FromMilliseconds(20);

    /// <summary>Weight of the latest request in the moving average of request durations behind RetryAfter.</summary>
    private const double DurationSmoothing = 0.2;

    private readonly IStepRunner _runner;
    private readonly Tokenizer _tokenizer;
    private readonly KvCachePool _cache;
    private readonly SchedulerOptions _options;
    private readonly int _stepTokens;
    private readonly Thread _thread;
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Guarded by _lock: the queue, phases of sequences, counters, lifecycle flags.
    private readonly Lock _lock = new();
    private readonly LinkedList<ScheduledSequence> _queue = new();
    private readonly AutoResetEvent _wake = new(false);
    private int _activeCount;
    private long _nextId;
    private bool _stopping, _abortRequested, _disposed;
    private SchedulerStats _stats;
    private double _averageRequestSeconds;

    /// <summary>Creates the scheduler and starts its engine thread.</summary>
    /// <exception cref="ArgumentException">Options have problems (<see cref="SchedulerOptions.Validate"/>), MaxStepTokens
    /// exceeds the model's MaxBatchTokens or is smaller than MaxActiveSequences (every running sequence decodes in
    /// every step), the tokenizer is larger than the model's vocabulary, or the pool was made for another model.</exception>
    public GenerationScheduler(LlamaModel model, Tokenizer tokenizer, KvCachePool cache, SchedulerOptions options)
        : this(new LlamaStepRunner(model ?? throw new ArgumentNullException(nameof(model))), tokenizer, cache, options)
    {
    }

    /// <summary>The same over any <see cref="IStepRunner"/> (tests use fakes).</summary>
    internal GenerationScheduler(IStepRunner runner, Tokenizer tokenizer, KvCachePool cache, SchedulerOptions options)
    {
        ArgumentNullException.ThrowIfNull(runner);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentNullException.ThrowIfNull(options);
        IReadOnlyList<string> problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("invalid scheduler options: " + string.Join("; ", problems), nameof(options));
        }
        int stepTokens = options.MaxStepTokens == 0 ? runner.MaxBatchTokens : options.MaxStepTokens;
        if (stepTokens > runner.MaxBatchTokens)
        {
            throw new ArgumentException($"{nameof(SchedulerOptions.MaxStepTokens)} is {stepTokens} but the model takes at most {runner.MaxBatchTokens} tokens per forward pass", nameof(options));
        }
        if (stepTokens < options.MaxActiveSequences)
        {
            throw new ArgumentException($"{nameof(SchedulerOptions.MaxActiveSequences)} is {options.MaxActiveSequences} but a step holds only {stepTokens} tokens; every running sequence needs one per step", nameof(options));
        }
        if (tokenizer.VocabSize > runner.Config.VocabSize)
        {
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens but the model only {runner.Config.VocabSize}", nameof(tokenizer));
        }
        if (cache.Config != runner.Config)
        {
            throw new ArgumentException("the KV cache pool was made for another model shape", nameof(cache));
        }
        _runner = runner;
        _tokenizer = tokenizer;
        _cache = cache;
        _options = options;
        _stepTokens = stepTokens;
        _inputs = new SequenceInput[options.MaxActiveSequences];
        _members = new ScheduledSequence[options.MaxActiveSequences];
        _logits = new float[runner.Config.VocabSize];
        _thread = new Thread(Run) { IsBackground = true, Name = "Sirocco scheduler" };
        _thread.Start();
    }

    /// <summary>Requests in the running batch (admitted, not yet finished).</summary>
    public int ActiveCount => Volatile.Read(ref _activeCount);

    /// <summary>Requests waiting for admission.</summary>
    public int QueuedCount
    {
        get
        {
            lock (_lock)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>The counters so far, as one consistent snapshot.</summary>
    public SchedulerStats Stats
    {
        get
        {
            lock (_lock)
            {
                return _stats;
            }
        }
    }

    /// <summary>The options the scheduler runs with.</summary>
    public SchedulerOptions Options => _options;

    /// <summary>Tokens per forward pass (MaxStepTokens, or the model's MaxBatchTokens when that is 0).</summary>
    public int StepTokens => _stepTokens;

    /// <summary>Queues <paramref name="request"/> and returns its stream at once. Thread-safe.</summary>
    /// <remarks>MaxTokens 0 completes immediately (no forward pass). When <paramref name="cancellationToken"/> fires,
    /// queued or running, the request is dropped before the next step (so at most the step already running includes
    /// it), its KV blocks return to the pool, <see cref="GenerationStream.Completion"/> becomes canceled and the text
    /// channel completes with an <see cref="OperationCanceledException"/>.</remarks>
    /// <exception cref="ArgumentException">An empty prompt, an id outside the vocabulary, negative MaxTokens, invalid
    /// sampling options, or prompt + MaxTokens beyond the model's context or the whole KV pool.</exception>
    /// <exception cref="SchedulerBusyException">Running and waiting requests already fill MaxActiveSequences +
    /// MaxQueuedRequests.</exception>
    /// <exception cref="SchedulerStoppedException">Shutdown has begun or the scheduler was disposed.</exception>
    public GenerationStream Submit(GenerationRequest request, CancellationToken cancellationToken = default)
    {
        int[] prompt = Validate(request);
        var sequence = new ScheduledSequence(Interlocked.Increment(ref _nextId), request, prompt, request.MaxTokens,
            _runner.Config.VocabSize, _tokenizer, cancellationToken);
        var stream = new GenerationStream(sequence);
        if (request.MaxTokens == 0)
        {
            ThrowIfStopping();
            sequence.Phase = SequencePhase.Done;
            PublishOutcome(sequence, Generation.FinishReason.Length);
            return stream;
        }

        lock (_lock)
        {
            ThrowIfStopping();
            int capacity = _options.MaxActiveSequences + _options.MaxQueuedRequests;
            if (_queue.Count + _activeCount >= capacity)
            {
                throw new SchedulerBusyException(
                    $"the scheduler is full: {_activeCount} requests running and {_queue.Count} waiting (at most {_options.MaxActiveSequences} + {_options.MaxQueuedRequests})",
                    RetryAfterLocked());
            }
            sequence.Node = _queue.AddLast(sequence);
            Wake();
        }

        // Registered after queueing: a token that has already fired runs the callback here, which dequeues the request.
        if (cancellationToken.CanBeCanceled)
        {
            CancellationTokenRegistration registration = cancellationToken.UnsafeRegister(static state =>
            {
                var (s, scheduler) = ((ScheduledSequence, GenerationScheduler))state!;
                scheduler.OnCanceled(s);
            }, (sequence, this));
            bool done;
            lock (_lock)
            {
                done = sequence.Phase == SequencePhase.Done;
                if (!done)
                {
                    sequence.Registration = registration;
                }
            }
            if (done)
            {
                registration.Unregister();
            }
        }
        return stream;
    }

    /// <summary>Stops admitting (Submit throws <see cref="SchedulerStoppedException"/>), lets running and queued
    /// requests finish for up to <paramref name="grace"/>, then cancels the rest; completes when the engine thread has
    /// finished its last step and every request is done.</summary>
    /// <param name="grace">How long requests may keep running; <see cref="Timeout.InfiniteTimeSpan"/> waits for all.</param>
    public async Task ShutdownAsync(TimeSpan grace)
    {
        if (grace < TimeSpan.Zero && grace != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(grace), grace, "the grace period must be zero or more, or infinite");
        }
        lock (_lock)
        {
            _stopping = true;
            Wake();
        }
        if (!_idle.Task.IsCompleted)
        {
            using var delay = new CancellationTokenSource();
            Task finished = await Task.WhenAny(_idle.Task, Task.Delay(grace, delay.Token));
            await delay.CancelAsync();
            if (finished != _idle.Task)
            {
                RequestAbort();
            }
        }
        await _idle.Task;
    }

    /// <summary>Cancels every queued and running request, waits for the engine thread to finish its step and exit.
    /// Safe to call more than once and after <see cref="ShutdownAsync"/>.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _stopping = true;
        }
        RequestAbort();
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }
        lock (_lock)
        {
            if (!_disposed)
            {
                _disposed = true;
                _wake.Dispose();
            }
        }
    }

    /// <summary>Checks a request at the boundary; returns a private copy of its prompt.</summary>
    private int[] Validate(GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(request.PromptIds, nameof(request));
        ArgumentNullException.ThrowIfNull(request.Sampling, nameof(request));
        if (request.StopSequences.Count > GenerationRequest.MaxStopSequences)
        {
            throw new ArgumentException($"{request.StopSequences.Count} stop sequences; at most {GenerationRequest.MaxStopSequences}", nameof(request));
        }
        foreach (string stop in request.StopSequences)
        {
            if (string.IsNullOrEmpty(stop) || stop.Length > GenerationRequest.MaxStopSequenceLength)
            {
                throw new ArgumentException($"a stop sequence of {stop?.Length ?? 0} characters; use 1 … {GenerationRequest.MaxStopSequenceLength}", nameof(request));
            }
        }
        IReadOnlyList<string> problems = request.Sampling.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("invalid sampling options: " + string.Join("; ", problems), nameof(request));
        }
        if (request.MaxTokens < 0)
        {
            throw new ArgumentException($"MaxTokens must be 0 or more, found {request.MaxTokens}", nameof(request));
        }
        int[] prompt = [.. request.PromptIds];
        if (prompt.Length == 0)
        {
            throw new ArgumentException("the prompt has no tokens", nameof(request));
        }
        int vocabulary = _runner.Config.VocabSize;
        for (int i = 0; i < prompt.Length; i++)
        {
            if ((uint)prompt[i] >= (uint)vocabulary)
            {
                throw new ArgumentException($"prompt token {i} is {prompt[i]}, outside the vocabulary of {vocabulary}", nameof(request));
            }
        }
        long positions = (long)prompt.Length + request.MaxTokens;
        int context = _runner.Config.ContextLength;
        if (positions > context)
        {
            throw new ArgumentException(
                $"the prompt's {prompt.Length} tokens plus MaxTokens {request.MaxTokens} need {positions} positions; the model's context holds {context}",
                nameof(request));
        }
        if (positions > _cache.CapacityPositions)
        {
            throw new ArgumentException(
                $"the prompt's {prompt.Length} tokens plus MaxTokens {request.MaxTokens} need {positions} positions; the whole KV cache holds {_cache.CapacityPositions}",
                nameof(request));
        }
        return prompt;
    }

    private void ThrowIfStopping()
    {
        if (Volatile.Read(ref _stopping))
        {
            throw new SchedulerStoppedException("the scheduler is shutting down and takes no new requests");
        }
    }

    /// <summary>A hint for a busy client: about the time one running slot takes to free up (the moving average of
    /// request durations over the batch width), in whole seconds from 1 to 60.</summary>
    private TimeSpan RetryAfterLocked()
    {
        double seconds = _averageRequestSeconds / _options.MaxActiveSequences;
        return TimeSpan.FromSeconds(Math.Clamp(Math.Ceiling(seconds), 1, 60));
    }

    /// <summary>The cancellation callback (any thread): a queued request leaves the queue and completes canceled here;
    /// a running one is flagged for the engine, which drops it before its next step.</summary>
    private void OnCanceled(ScheduledSequence sequence)
    {
        bool dequeued = false;
        lock (_lock)
        {
            switch (sequence.Phase)
            {
                case SequencePhase.Queued:
                    _queue.Remove(sequence.Node!);
                    sequence.Node = null;
                    sequence.Phase = SequencePhase.Done;
                    dequeued = true;
                    break;
                case SequencePhase.Active:
                    sequence.CancelRequested = true;
                    Wake();
                    break;
                case SequencePhase.Done:
                    break;
                default:
                    throw new UnreachableException();
            }
        }
        if (dequeued)
        {
            PublishCancellation(sequence);
        }
    }

    /// <summary>Asks the engine to cancel everything queued and running (shutdown past grace, or disposal).</summary>
    private void RequestAbort()
    {
        lock (_lock)
        {
            _abortRequested = true;
            Wake();
        }
    }

    /// <summary>Wakes the engine thread; call under <see cref="_lock"/> (so the event is never used after disposal).</summary>
    private void Wake()
    {
        if (!_disposed)
        {
            _wake.Set();
        }
    }
}
