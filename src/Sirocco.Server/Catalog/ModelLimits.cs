// The size limits of one catalog model: characters per prompt or message (enforced by the input schema), and the token
// budgets the server checks after tokenizing (PromptBuilder.EnsureFits maps a violation to 5021).

namespace Sirocco.Server.Catalog;

/// <summary>How much text and how many tokens a request to one model may use.</summary>
/// <param name="MaxPromptCharacters">The input schema's <c>maxLength</c> of <c>prompt</c> (and of each message's
/// <c>content</c>), in Unicode code points: 6144 for <c>@hf/mistral/mistral-7b-instruct-v0.2</c>, 131072 for the LoRA
/// model.</param>
/// <param name="MaxInputTokens">At most this many prompt tokens (TGI's <c>max_input_length</c>, 3072 for the @hf model),
/// or null for no separate input limit.</param>
/// <param name="MaxTotalTokens">Prompt tokens plus <c>max_tokens</c> at most this (TGI's <c>max_total_tokens</c>, 4096
/// for the @hf model), or null when only <paramref name="ContextWindow"/> applies.</param>
/// <param name="ContextWindow">Prompt tokens plus <c>max_tokens</c> at most this many positions: the @hf model's
/// <c>max_total_tokens</c>, or for the LoRA model the window the server was configured with.</param>
public sealed record ModelLimits(int MaxPromptCharacters, int? MaxInputTokens, int? MaxTotalTokens, int ContextWindow);
