// The summary of a finished generation: token counts, why it stopped, the whole text and its timings. Completion of a
// GenerationStream carries one; the server turns it into the final usage and finish_reason fields.

using Sirocco.Engine.Generation;

namespace Sirocco.Engine.Scheduling;

/// <summary>What a finished request produced.</summary>
/// <param name="PromptTokens">Tokens in the prompt.</param>
/// <param name="CompletionTokens">Tokens generated (the end-of-sequence token is not counted).</param>
/// <param name="Finish"><see cref="FinishReason.Stop"/> on end-of-sequence, <see cref="FinishReason.Length"/> when
/// the token limit or the context was reached.</param>
/// <param name="Text">All text pieces of the stream, concatenated.</param>
/// <param name="Queued">From submission until the request was admitted to the running batch.</param>
/// <param name="TimeToFirstToken">From submission until the first token was sampled (zero when none was, as with
/// MaxTokens 0).</param>
/// <param name="Elapsed">From submission until the request finished.</param>
public sealed record GenerationOutcome(int PromptTokens, int CompletionTokens, FinishReason Finish, string Text, TimeSpan Queued, TimeSpan TimeToFirstToken, TimeSpan Elapsed)
{
    /// <summary>The generated token ids, in order (<see cref="CompletionTokens"/> of them).</summary>
    public IReadOnlyList<int> TokenIds { get; init; } = [];

    /// <summary>Completion tokens after the first, per second of the time after the first (the first token's time is
    /// the prefill's, reported by <see cref="TimeToFirstToken"/>); 0 with fewer than two tokens.</summary>
    public double DecodeTokensPerSecond =>
        CompletionTokens < 2 ? 0 : (CompletionTokens - 1) / Math.Max((Elapsed - TimeToFirstToken).TotalSeconds, 1e-9);
}
