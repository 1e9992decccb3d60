// What a caller asks the scheduler for: prompt token ids, a token limit, sampling options and an optional adapter.
// The server builds one per HTTP request; the scheduler validates it in Submit.

using Sirocco.Engine.Model;
using Sirocco.Engine.Sampling;

namespace Sirocco.Engine.Scheduling;

/// <summary>One generation request.</summary>
/// <param name="PromptIds">Prompt token ids (BOS included if wanted); copied on submission.</param>
/// <param name="MaxTokens">Most tokens to generate; 0 completes at once without running the model.</param>
/// <param name="Sampling">How to choose tokens; a seed makes the output reproducible.</param>
/// <param name="Adapter">A per-sequence projection adapter (LoRA), or null for the base model.</param>
public sealed record GenerationRequest(IReadOnlyList<int> PromptIds, int MaxTokens, SamplingOptions Sampling, IProjectionAdapter? Adapter = null)
{
    /// <summary>Most stop sequences a request may give.</summary>
    public const int MaxStopSequences = 16;

    /// <summary>Longest stop sequence, in characters.</summary>
    public const int MaxStopSequenceLength = 256;

    /// <summary>Texts that end the generation (finish reason Stop) as soon as one appears in the output; the text
    /// from the first match on is not released. Text that could be the start of a match is held back until it is
    /// known not to be, so a stream never shows part of a stop sequence.</summary>
    public IReadOnlyList<string> StopSequences { get; init; } = [];
}
