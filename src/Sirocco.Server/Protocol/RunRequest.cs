// A validated /ai/run text-generation body (RunRequestParser builds it) and its parts: messages and tool definitions.
// Field semantics, defaults and our choices where Workers AI's are unknown: docs/API.md "Request fields".

using System.Text.Json.Nodes;
using Sirocco.Engine.Sampling;

namespace Sirocco.Server.Protocol;

/// <summary>One message of a <c>messages</c> conversation, as sent.</summary>
/// <param name="Role">One of <see cref="RunRequestParser.AcceptedRoles"/>.</param>
/// <param name="Content">The text; empty for an assistant message that only carries <see cref="ToolCalls"/>.</param>
/// <param name="Name">The optional <c>name</c> (for <c>tool</c> messages: the tool that produced the result).</param>
public sealed record RunMessage(string Role, string Content, string? Name = null)
{
    /// <summary>The <c>tool_call_id</c> of a tool result, if sent (accepted, not used by the prompt).</summary>
    public string? ToolCallId { get; init; }

    /// <summary>The <c>tool_calls</c> of an assistant message, if sent: OpenAI's <c>{id, type, function: {name,
    /// arguments}}</c> or Workers AI's <c>{name, arguments}</c> objects.</summary>
    public IReadOnlyList<JsonObject>? ToolCalls { get; init; }
}

/// <summary>A tool the model may call, from either form Workers AI accepts: <c>{name, description, parameters}</c> or
/// <c>{type: "function", function: {name, description, parameters}}</c>.</summary>
/// <param name="Parameters">The JSON schema of the arguments (normally <c>{type: "object", properties, required}</c>).</param>
public sealed record ToolDefinition(string Name, string? Description, JsonObject? Parameters);

/// <summary>A validated text-generation request. Exactly one of <see cref="Prompt"/> and <see cref="Messages"/> is set.</summary>
public sealed record RunRequest
{
    /// <summary>Workers AI's <c>max_tokens</c> default for these models.</summary>
    public const int DefaultMaxTokens = 256;

    /// <summary>The <c>prompt</c> text (at least one character), or null when <see cref="Messages"/> is given.</summary>
    public string? Prompt { get; init; }

    /// <summary>The <c>messages</c> conversation (at least one message), or null when <see cref="Prompt"/> is given.</summary>
    public IReadOnlyList<RunMessage>? Messages { get; init; }

    /// <summary><c>raw</c>: no chat template; the text is tokenized as given (see PromptBuilder).</summary>
    public bool Raw { get; init; }

    /// <summary><c>stream</c>: answer with server-sent events.</summary>
    public bool Stream { get; init; }

    /// <summary><c>max_tokens</c> as sent (0 or more; values beyond int range are clamped to <see cref="int.MaxValue"/>),
    /// or null when not given; see <see cref="EffectiveMaxTokens"/>.</summary>
    public int? MaxTokens { get; init; }

    /// <summary><c>temperature</c> in [0, 5]; 0 is greedy. Null: <see cref="SamplingOptions.DefaultTemperature"/>.</summary>
    public double? Temperature { get; init; }

    /// <summary><c>top_p</c> in [0, 2]; 1 or more is off.</summary>
    public double? TopP { get; init; }

    /// <summary><c>top_k</c> in [1, 50].</summary>
    public int? TopK { get; init; }

    /// <summary><c>seed</c> in [1, 9999999999].</summary>
    public long? Seed { get; init; }

    /// <summary><c>repetition_penalty</c> in [0, 2]; 1 and 0 are off.</summary>
    public double? RepetitionPenalty { get; init; }

    /// <summary><c>frequency_penalty</c> in [0, 2].</summary>
    public double? FrequencyPenalty { get; init; }

    /// <summary><c>presence_penalty</c> in [0, 2].</summary>
    public double? PresencePenalty { get; init; }

    /// <summary><c>lora</c>: the finetune id or name, or null (an empty or blank string counts as not given).</summary>
    public string? Lora { get; init; }

    /// <summary>The tools to offer after <c>tool_choice</c> was applied (null: none), only on models that support
    /// them and never with <see cref="Raw"/>.</summary>
    public IReadOnlyList<ToolDefinition>? Tools { get; init; }

    /// <summary>The number of tokens to generate at most: <see cref="MaxTokens"/>, or 256 when not given.</summary>
    public int EffectiveMaxTokens => MaxTokens ?? DefaultMaxTokens;

    /// <summary>True when the prompt carries a tool prompt and the output should go through ToolPrompt.ParseToolCalls.</summary>
    public bool UsesTools => Tools is { Count: > 0 } && !Raw;

    /// <summary>The engine's sampling settings for this request.</summary>
    /// <remarks>Not given → Workers AI's default temperature 0.6 and every other knob off: top_p 1, top_k 0 (all
    /// tokens), repetition_penalty 1, frequency and presence penalties 0, and a fresh random seed. A
    /// repetition_penalty of 0 (the schema's minimum) is off, like 1. temperature 0 is greedy decoding (argmax), where
    /// top_p, top_k and seed no longer matter. top_p ≥ 1 keeps every token; top_p 0 keeps only the most probable.</remarks>
    public SamplingOptions ToSamplingOptions() => new()
    {
        Temperature = Temperature ?? SamplingOptions.DefaultTemperature,
        TopP = TopP ?? 1,
        TopK = TopK ?? 0,
        Seed = Seed is { } seed ? unchecked((ulong)seed) : null,
        RepetitionPenalty = RepetitionPenalty is null or 0 ? 1 : RepetitionPenalty.Value,
        FrequencyPenalty = FrequencyPenalty ?? 0,
        PresencePenalty = PresencePenalty ?? 0,
    };
}
