// Thrown by GenerationScheduler.Submit once shutdown has begun (or the scheduler was disposed); the server maps it to
// HTTP 503.

namespace Sirocco.Engine.Scheduling;

/// <summary>The scheduler no longer admits requests.</summary>
public sealed class SchedulerStoppedException(string message) : Exception(message);
