// Thrown by GenerationScheduler.Submit when the running batch and the queue are both full; the server maps it to
// HTTP 429 with a Retry-After header taken from RetryAfter.

namespace Sirocco.Engine.Scheduling;

/// <summary>The scheduler cannot take another request now.</summary>
/// <param name="message">What is full, with the numbers.</param>
/// <param name="retryAfter">A suggested wait before trying again (whole seconds, at least one).</param>
public sealed class SchedulerBusyException(string message, TimeSpan retryAfter) : Exception(message)
{
    /// <summary>A suggested wait before submitting again.</summary>
    public TimeSpan RetryAfter { get; } = retryAfter;
}
