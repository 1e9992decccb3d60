// The caller's handle on a submitted request: text pieces as they are produced and a task for the outcome. Written
// only by the scheduler's engine thread; read by the server's request thread.

using System.Threading.Channels;

namespace Sirocco.Engine.Scheduling;

/// <summary>The output of one submitted request.</summary>
public sealed class GenerationStream
{
    internal GenerationStream(ScheduledSequence sequence)
    {
        Sequence = sequence;
        Text = sequence.Output.Reader;
        Completion = sequence.Completion.Task;
    }

    /// <summary>A number unique within its scheduler, in submission order (for logs).</summary>
    public long Id => Sequence.Id;

    /// <summary>Text pieces as the streaming detokenizer releases them (never half a UTF-8 character). Completes when
    /// the request finishes; with the exception when it failed, with an <see cref="OperationCanceledException"/> when it
    /// was canceled. Unbounded: the output is bounded by MaxTokens.</summary>
    public ChannelReader<string> Text { get; }

    /// <summary>The outcome; faulted with the error when the request failed, canceled when its token fired or the
    /// scheduler shut down before it finished.</summary>
    public Task<GenerationOutcome> Completion { get; }

    /// <summary>The scheduler's state for this request (tests look at its KV sequence).</summary>
    internal ScheduledSequence Sequence { get; }
}
