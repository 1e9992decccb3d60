// The engine thread: the step loop of continuous batching (nano-vllm's scheduler.schedule + model_runner.run in one
// place). Per iteration: cancel what shutdown or a caller asked to cancel, admit from the queue, build one batch
// (decode tokens first, then prompt chunks), run the forward pass, sample, stream text, retire finished sequences.

using System.Diagnostics;
using Sirocco.Engine.Generation;
using Sirocco.Engine.Model;

namespace Sirocco.Engine.Scheduling;

public sealed partial class GenerationScheduler
{
    // Engine thread only.
    private readonly List<ScheduledSequence> _active = []; // the running batch, in admission order
    private readonly SequenceInput[] _inputs; // [MaxActiveSequences] this step's batch
    private readonly ScheduledSequence[] _members; // [MaxActiveSequences] the sequence of each input
    private readonly float[] _logits; // [VocabSize] one row copied out of the model: the sampler rewrites it in place

    /// <summary>The engine thread's body. Nothing escapes it: an unexpected exception fails the running requests and
    /// the loop goes on, so no request is ever left hanging.</summary>
    private void Run()
    {
        try
        {
            while (true)
            {
                try
                {
                    if (!Iterate())
                    {
                        return;
                    }
                }
                catch (Exception e)
                {
                    FailActive(e);
                }
            }
        }
        finally
        {
            _idle.TrySetResult();
        }
    }

    /// <summary>One turn of the loop: cancellations, admission, then one step or a wait for work. Returns false once
    /// the scheduler is stopping and nothing is left to run.</summary>
    private bool Iterate()
    {
        bool abort;
        lock (_lock)
        {
            abort = _abortRequested;
        }
        if (abort)
        {
            CancelEverything();
        }
        DropCanceled();
        bool blocked = Admit();
        if (_active.Count > 0)
        {
            Step();
            return true;
        }
        lock (_lock)
        {
            if (_stopping && _queue.Count == 0)
            {
                return false;
            }
        }
        // Nothing runs. Submit, a cancellation and shutdown all set the event, so an empty wait never misses work; a
        // head the pool cannot hold yet is retried now and then (blocks may be held by another user of the pool).
        _wake.WaitOne(blocked ? s_blockedRetry : Timeout.InfiniteTimeSpan);
        return true;
    }

    /// <summary>Admits queue heads (FIFO) while the batch has room and the pool can reserve prompt + MaxTokens
    /// positions for them. Returns true when a head had to wait for KV blocks.</summary>
    private bool Admit()
    {
        while (_active.Count < _options.MaxActiveSequences)
        {
            ScheduledSequence? head;
            lock (_lock)
            {
                head = _queue.First?.Value;
            }
            if (head is null)
            {
                return false;
            }
            if (head.IsCanceled)
            {
                // Its token fired but the callback has not run yet (CancelAsync): never admit it.
                if (Dequeue(head))
                {
                    PublishCancellation(head);
                }
                continue;
            }
            int positions = head.Prompt.Length + head.Limit;
            if (_cache.BlocksFor(positions) > _cache.AvailableBlocks)
            {
                return true; // head of line: later requests wait too, so a large request is not starved
            }
            // Reserve outside the lock (new blocks are allocated and zeroed), then admit only if the head is still
            // queued: its cancellation callback may have removed it meanwhile.
            KvSequence cache = _cache.CreateSequence();
            try
            {
                cache.Reserve(positions);
            }
            catch (KvCacheFullException)
            {
                cache.Dispose(); // someone else took blocks between the check and the reservation
                return true;
            }
            catch (Exception e)
            {
                // Not a matter of waiting (a disposed pool, out of memory): fail this request rather than retry forever.
                cache.Dispose();
                if (Dequeue(head))
                {
                    PublishFailure(head, e);
                }
                continue;
            }
            bool admitted;
            lock (_lock)
            {
                admitted = head.Phase == SequencePhase.Queued;
                if (admitted)
                {
                    _queue.Remove(head.Node!);
                    head.Node = null;
                    head.Phase = SequencePhase.Active;
                    head.Cache = cache;
                    _activeCount++;
                }
            }
            if (!admitted)
            {
                cache.Dispose();
                continue;
            }
            head.AdmittedAt = Stopwatch.GetTimestamp();
            _active.Add(head);
        }
        return false;
    }

    /// <summary>Takes <paramref name="sequence"/> out of the queue if it is still there; false when its cancellation
    /// callback got there first.</summary>
    private bool Dequeue(ScheduledSequence sequence)
    {
        CancellationTokenRegistration registration;
        lock (_lock)
        {
            if (sequence.Phase != SequencePhase.Queued)
            {
                return false;
            }
            _queue.Remove(sequence.Node!);
            sequence.Node = null;
            sequence.Phase = SequencePhase.Done;
            registration = sequence.Registration;
            sequence.Registration = default;
        }
        registration.Unregister();
        return true;
    }

    /// <summary>Builds one batch, runs it, and hands each logits row to its sequence.</summary>
    private void Step()
    {
        // Admission may have taken a while (new blocks are zeroed): drop what was canceled meanwhile, so only a
        // cancellation that fires while the forward pass runs lets a request take part in one more step.
        DropCanceled();
        if (_active.Count == 0)
        {
            return;
        }

        // The batch: every decoding sequence's last token, then prompt chunks in admission order while the budget
        // lasts. A chunk that does not end its prompt asks for no logits.
        int budget = _stepTokens, count = 0, prefillTokens = 0, decodeTokens = 0;
        foreach (ScheduledSequence sequence in _active)
        {
            if (sequence.IsDecoding)
            {
                _inputs[count] = new SequenceInput(sequence.Cache!, sequence.NextToken, LogitsWanted.Last, sequence.Adapter);
                _members[count++] = sequence;
                budget--;
                decodeTokens++;
            }
        }
        foreach (ScheduledSequence sequence in _active)
        {
            if (budget == 0)
            {
                break;
            }
            if (!sequence.IsDecoding)
            {
                int chunk = Math.Min(budget, sequence.Prompt.Length - sequence.Prefilled);
                bool last = sequence.Prefilled + chunk == sequence.Prompt.Length;
                _inputs[count] = new SequenceInput(sequence.Cache!, sequence.Prompt.AsMemory(sequence.Prefilled, chunk),
                    last ? LogitsWanted.Last : LogitsWanted.None, sequence.Adapter);
                _members[count++] = sequence;
                budget -= chunk;
                prefillTokens += chunk;
            }
        }
        Debug.Assert(count > 0, "MaxActiveSequences <= step tokens leaves room for at least one prompt token");

        try
        {
            _runner.Forward(_inputs.AsSpan(0, count));
        }
        catch (Exception e)
        {
            // The step's sequences may be half-written; fail them and keep serving the rest.
            RecordStep(count, 0, 0, 0);
            for (int i = 0; i < count; i++)
            {
                Retire(_members[i]);
                PublishFailure(_members[i], e);
            }
            EndStep(count);
            return;
        }

        // Logits rows come in input order, one per input that asked for them (Last): decode inputs and final chunks.
        int row = 0, generated = 0;
        for (int i = 0; i < count; i++)
        {
            ScheduledSequence sequence = _members[i];
            SequenceInput input = _inputs[i];
            if (!sequence.IsDecoding)
            {
                sequence.Prefilled += input.Tokens.Length;
            }
            if (input.Logits != LogitsWanted.Last)
            {
                continue;
            }
            int logitsRow = row++;
            if (sequence.IsCanceled)
            {
                continue; // dropped before the next step; no point sampling for it
            }
            try
            {
                generated += Advance(sequence, logitsRow);
            }
            catch (Exception e)
            {
                Retire(sequence);
                PublishFailure(sequence, e);
            }
        }
        RecordStep(count, prefillTokens, decodeTokens, generated);
        EndStep(count);
    }

    /// <summary>Samples <paramref name="sequence"/>'s next token from logits row <paramref name="row"/>, as
    /// TextGenerator's loop body does: EOS stops, anything else is accepted, streamed, and either ends the request at
    /// its limit or becomes the next step's input. Returns the tokens generated (0 or 1).</summary>
    private int Advance(ScheduledSequence sequence, int row)
    {
        _runner.Logits(row).CopyTo(_logits);
        int token = sequence.Sampler.Sample(_logits, sequence.History);
        if (sequence.FirstTokenAt == 0)
        {
            sequence.FirstTokenAt = Stopwatch.GetTimestamp();
        }
        if (token == _tokenizer.EosId)
        {
            Finish(sequence, FinishReason.Stop);
            return 0;
        }
        sequence.History.Accept(token);
        sequence.Tokens.Add(token);
        if (Emit(sequence, sequence.Detokenizer.Push(token)))
        {
            Finish(sequence, FinishReason.Stop);
        }
        else if (sequence.Tokens.Count >= sequence.Limit)
        {
            Finish(sequence, FinishReason.Length);
        }
        else
        {
            sequence.NextToken[0] = token;
        }
        return 1;
    }

    /// <summary>Passes detokenized text on, through the stop-sequence filter when the request has stop sequences.
    /// Returns true when a stop sequence has appeared (the text before it is released, the rest never is).</summary>
    private static bool Emit(ScheduledSequence sequence, string piece)
    {
        if (sequence.StopHit || piece.Length == 0)
        {
            return sequence.StopHit;
        }
        if (sequence.StopSequences.Length == 0)
        {
            Release(sequence, piece);
            return false;
        }
        sequence.Pending.Append(piece);
        string pending = sequence.Pending.ToString();
        int cut = -1;
        foreach (string stop in sequence.StopSequences)
        {
            int at = pending.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut))
            {
                cut = at;
            }
        }
        if (cut >= 0)
        {
            Release(sequence, pending[..cut]);
            sequence.Pending.Clear();
            sequence.StopHit = true;
            return true;
        }
        // Hold back the longest tail that is the beginning of some stop sequence; release the rest.
        int keep = 0;
        foreach (string stop in sequence.StopSequences)
        {
            for (int length = Math.Min(stop.Length - 1, pending.Length); length > keep; length--)
            {
                if (pending.AsSpan(pending.Length - length).SequenceEqual(stop.AsSpan(0, length)))
                {
                    keep = length;
                    break;
                }
            }
        }
        Release(sequence, pending[..^keep]);
        sequence.Pending.Remove(0, pending.Length - keep);
        return false;
    }

    private static void Release(ScheduledSequence sequence, string text)
    {
        if (text.Length > 0)
        {
            sequence.Text.Append(text);
            sequence.Output.Writer.TryWrite(text); // unbounded: always accepted until completed
        }
    }

    private void Finish(ScheduledSequence sequence, FinishReason finish)
    {
        if (!sequence.StopHit)
        {
            if (Emit(sequence, sequence.Detokenizer.Flush()))
            {
                finish = FinishReason.Stop;
            }
            else
            {
                // The output ended: what was held back as a possible stop-sequence start is plain text after all.
                Release(sequence, sequence.Pending.ToString());
                sequence.Pending.Clear();
            }
        }
        Retire(sequence);
        PublishOutcome(sequence, finish);
    }

    /// <summary>Clears the step's slots (so finished sequences are not kept alive) and drops retired sequences from
    /// the running list.</summary>
    private void EndStep(int count)
    {
        Array.Clear(_inputs, 0, count);
        Array.Clear(_members, 0, count);
        _active.RemoveAll(static sequence => sequence.IsRetired);
    }

    /// <summary>Drops running sequences whose cancellation was requested: blocks back to the pool, completion
    /// canceled.</summary>
    private void DropCanceled()
    {
        for (int i = _active.Count - 1; i >= 0; i--)
        {
            ScheduledSequence sequence = _active[i];
            if (sequence.IsCanceled)
            {
                _active.RemoveAt(i);
                Retire(sequence);
                PublishCancellation(sequence);
            }
        }
    }

    /// <summary>Shutdown past its grace, or disposal: every queued request completes canceled now, every running one
    /// is flagged and dropped by <see cref="DropCanceled"/> right after.</summary>
    private void CancelEverything()
    {
        ScheduledSequence[] dequeued;
        lock (_lock)
        {
            dequeued = [.. _queue];
        }
        foreach (ScheduledSequence sequence in dequeued)
        {
            if (Dequeue(sequence))
            {
                PublishCancellation(sequence);
            }
        }
        foreach (ScheduledSequence sequence in _active)
        {
            sequence.CancelRequested = true;
        }
    }

    /// <summary>Last resort after an unexpected exception in the loop: fails every running request.</summary>
    private void FailActive(Exception e)
    {
        foreach (ScheduledSequence sequence in _active)
        {
            if (!sequence.IsRetired)
            {
                Retire(sequence);
                PublishFailure(sequence, e);
            }
        }
        _active.Clear();
        Array.Clear(_inputs);
        Array.Clear(_members);
    }

    /// <summary>Takes a running sequence out of the batch: its KV blocks go back to the pool (before its completion is
    /// published, so a caller awaiting it sees them returned), it stops counting as active, and its cancellation
    /// registration is released.</summary>
    private void Retire(ScheduledSequence sequence)
    {
        sequence.Cache?.Dispose();
        sequence.Cache = null;
        sequence.IsRetired = true;
        CancellationTokenRegistration registration;
        lock (_lock)
        {
            if (sequence.Phase == SequencePhase.Active)
            {
                _activeCount--;
            }
            sequence.Phase = SequencePhase.Done;
            registration = sequence.Registration;
            sequence.Registration = default;
        }
        registration.Unregister(); // never waits for a running callback (Dispose would)
    }

    private void RecordStep(int sequences, int prefillTokens, int decodeTokens, int generatedTokens)
    {
        lock (_lock)
        {
            _stats = _stats with
            {
                StepCount = _stats.StepCount + 1,
                MaxSequencesPerStep = Math.Max(_stats.MaxSequencesPerStep, sequences),
                PrefillTokens = _stats.PrefillTokens + prefillTokens,
                DecodeTokens = _stats.DecodeTokens + decodeTokens,
                GeneratedTokens = _stats.GeneratedTokens + generatedTokens,
            };
        }
    }

    private void PublishOutcome(ScheduledSequence sequence, FinishReason finish)
    {
        long now = Stopwatch.GetTimestamp();
        var outcome = new GenerationOutcome(
            sequence.Prompt.Length,
            sequence.Tokens.Count,
            finish,
            sequence.Text.ToString(),
            sequence.AdmittedAt == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(sequence.SubmittedAt, sequence.AdmittedAt),
            sequence.FirstTokenAt == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(sequence.SubmittedAt, sequence.FirstTokenAt),
            Stopwatch.GetElapsedTime(sequence.SubmittedAt, now))
        {
            TokenIds = sequence.Tokens,
        };
        lock (_lock)
        {
            _stats = _stats with { CompletedRequests = _stats.CompletedRequests + 1 };
            double seconds = outcome.Elapsed.TotalSeconds;
            _averageRequestSeconds = _stats.CompletedRequests == 1 ? seconds
                : _averageRequestSeconds + DurationSmoothing * (seconds - _averageRequestSeconds);
        }
        sequence.Output.Writer.TryComplete();
        sequence.Completion.TrySetResult(outcome);
    }

    private void PublishFailure(ScheduledSequence sequence, Exception error)
    {
        lock (_lock)
        {
            _stats = _stats with { FailedRequests = _stats.FailedRequests + 1 };
        }
        sequence.Output.Writer.TryComplete(error);
        sequence.Completion.TrySetException(error);
    }

    /// <summary>Completes a canceled request: by its own token when that fired, otherwise (shutdown) without one.</summary>
    private void PublishCancellation(ScheduledSequence sequence)
    {
        lock (_lock)
        {
            _stats = _stats with { CanceledRequests = _stats.CanceledRequests + 1 };
        }
        CancellationToken token = sequence.CancellationToken.IsCancellationRequested ? sequence.CancellationToken : CancellationToken.None;
        var error = token.IsCancellationRequested
            ? new OperationCanceledException("the request was canceled", token)
            : new OperationCanceledException("the scheduler shut down before the request finished");
        sequence.Output.Writer.TryComplete(error);
        sequence.Completion.TrySetCanceled(token);
    }
}
