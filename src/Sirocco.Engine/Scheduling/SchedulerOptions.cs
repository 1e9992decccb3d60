// Runtime policy of the GenerationScheduler: how many sequences run at once, how many requests may wait, and how
// many tokens one forward pass takes. Bound from configuration by the server and validated at startup.

namespace Sirocco.Engine.Scheduling;

/// <summary>Settings of a <see cref="GenerationScheduler"/>.</summary>
public sealed record SchedulerOptions
{
    /// <summary>Most sequences in the running batch (each decoding sequence adds one token to every step).</summary>
    public int MaxActiveSequences { get; init; } = 8;

    /// <summary>Most requests that may wait beyond the <see cref="MaxActiveSequences"/> running ones: once
    /// waiting + running requests reach the sum of the two, <see cref="GenerationScheduler.Submit"/> throws
    /// <see cref="SchedulerBusyException"/>.</summary>
    public int MaxQueuedRequests { get; init; } = 32;

    /// <summary>Most tokens one forward pass takes: every decoding sequence's token, then prompt chunks filling the
    /// rest. 0 means the model's <c>MaxBatchTokens</c>; a larger value than that is an error.</summary>
    public int MaxStepTokens { get; init; }

    /// <summary>Checks every value against its range; returns one sentence per problem (naming the property, the value
    /// found and what is allowed), or an empty list. Limits that depend on the model are checked by the scheduler's
    /// constructor.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (MaxActiveSequences < 1)
        {
            problems.Add($"{nameof(MaxActiveSequences)} must be at least 1, found {MaxActiveSequences}");
        }
        if (MaxQueuedRequests < 0)
        {
            problems.Add($"{nameof(MaxQueuedRequests)} must be 0 or more, found {MaxQueuedRequests}");
        }
        if (MaxStepTokens < 0)
        {
            problems.Add($"{nameof(MaxStepTokens)} must be 0 (the model's batch size) or positive, found {MaxStepTokens}");
        }
        return problems;
    }
}
