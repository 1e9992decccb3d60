// Counters of a GenerationScheduler since it started, read as one consistent snapshot: steps, batch widths, tokens and
// request outcomes. Tests use them to see that requests shared steps; the server exports them as metrics.

namespace Sirocco.Engine.Scheduling;

/// <summary>A snapshot of a scheduler's counters.</summary>
/// <param name="StepCount">Forward passes run (failed ones included).</param>
/// <param name="MaxSequencesPerStep">Most sequences that took part in one forward pass.</param>
/// <param name="PrefillTokens">Prompt tokens run through the model.</param>
/// <param name="DecodeTokens">Generated tokens fed back into the model (one per decoding sequence and step).</param>
/// <param name="GeneratedTokens">Completion tokens produced (end-of-sequence tokens not counted).</param>
/// <param name="CompletedRequests">Requests that finished with an outcome.</param>
/// <param name="CanceledRequests">Requests canceled, by their token or by shutdown.</param>
/// <param name="FailedRequests">Requests failed by an exception.</param>
public readonly record struct SchedulerStats(
    long StepCount,
    int MaxSequencesPerStep,
    long PrefillTokens,
    long DecodeTokens,
    long GeneratedTokens,
    long CompletedRequests,
    long CanceledRequests,
    long FailedRequests);
