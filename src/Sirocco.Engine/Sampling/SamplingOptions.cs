// The per-request sampling settings of the Workers AI text-generation schema (temperature, top_p, top_k, seed,
// repetition/frequency/presence penalties) as the engine understands them. The server maps request fields onto this
// record and reports Validate()'s problems; the Sampler trusts a validated record.

namespace Sirocco.Engine.Sampling;

/// <summary>How the next token is chosen from the logits. Applied in the order penalties → temperature → top-k →
/// top-p → random draw (see <see cref="Sampler"/>).</summary>
/// <remarks>Accepted ranges are the union of the Workers AI schemas for Mistral-7B-Instruct-v0.2 (the 2024 one allowed
/// top_p up to 2 and penalties from 0, the current one top_p from 0.001 and frequency/presence penalties from −2), so
/// any request either schema admits is valid here. Defaults are the values that change nothing, except
/// <see cref="Temperature"/>, whose default is the current schema's 0.6.</remarks>
public sealed record SamplingOptions
{
    public const double MaxTemperature = 5;
    public const double MaxTopP = 2;
    public const double MaxRepetitionPenalty = 2;
    public const double MaxAbsFrequencyPenalty = 2;
    public const double MaxAbsPresencePenalty = 2;

    /// <summary>Workers AI's default temperature for Mistral-7B-Instruct-v0.2.</summary>
    public const double DefaultTemperature = 0.6;

    /// <summary>Softmax temperature in [0, 5]: logits are divided by it before the draw. 0 means greedy: the highest
    /// logit after penalties, the lowest token id among equal maxima; top-k, top-p and the seed are then irrelevant.</summary>
    public double Temperature { get; init; } = DefaultTemperature;

    /// <summary>Nucleus sampling (Holtzman et al. 2019) in [0, 2]: keep the most probable tokens, in descending order,
    /// until their probability (after temperature and top-k) reaches TopP, always at least one. Values of 1 or more
    /// keep everything (off); 0 keeps only the most probable token.</summary>
    public double TopP { get; init; } = 1;

    /// <summary>Keep only the TopK highest logits (ties broken by lower id). 0, or any value at or above the vocabulary
    /// size, is off.</summary>
    public int TopK { get; init; }

    /// <summary>Hugging Face / TGI repetition penalty in [0, 2], over every token seen in the prompt or the output: a
    /// positive logit is divided by it, a negative one multiplied (so values above 1 discourage repeats, below 1
    /// encourage them). 1 is off, and so is 0: dividing by zero has no sensible meaning, and the schema's minimum of 0
    /// reads best as "no penalty".</summary>
    public double RepetitionPenalty { get; init; } = 1;

    /// <summary>OpenAI frequency penalty in [−2, 2]: subtracted from a token's logit once per time the token has been
    /// generated so far (prompt tokens do not count).</summary>
    public double FrequencyPenalty { get; init; }

    /// <summary>OpenAI presence penalty in [−2, 2]: subtracted once from the logit of every token generated at least once
    /// so far (prompt tokens do not count).</summary>
    public double PresencePenalty { get; init; }

    /// <summary>Seed of the random draw: the same seed, options and logits give the same tokens on every run and
    /// platform. Null draws a fresh seed per <see cref="Sampler"/> (reported by <see cref="Sampler.Seed"/>).</summary>
    public ulong? Seed { get; init; }

    /// <summary>Greedy decoding: temperature 0, nothing else.</summary>
    public static SamplingOptions Greedy { get; } = new() { Temperature = 0 };

    /// <summary>True when <see cref="Temperature"/> is 0, so the sampler takes the argmax.</summary>
    public bool IsGreedy => Temperature == 0;

    /// <summary>Checks every value against its range; returns one sentence per problem (naming the property, the value
    /// found and what is allowed), or an empty list. NaN and infinities are always problems.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        void InRange(string name, double value, double min, double max)
        {
            if (!(value >= min && value <= max))
            {
                problems.Add($"{name} must be a number from {min} to {max}, found {value}");
            }
        }
        InRange(nameof(Temperature), Temperature, 0, MaxTemperature);
        InRange(nameof(TopP), TopP, 0, MaxTopP);
        InRange(nameof(RepetitionPenalty), RepetitionPenalty, 0, MaxRepetitionPenalty);
        InRange(nameof(FrequencyPenalty), FrequencyPenalty, -MaxAbsFrequencyPenalty, MaxAbsFrequencyPenalty);
        InRange(nameof(PresencePenalty), PresencePenalty, -MaxAbsPresencePenalty, MaxAbsPresencePenalty);
        if (TopK < 0)
        {
            problems.Add($"{nameof(TopK)} must be 0 (off) or positive, found {TopK}");
        }
        return problems;
    }
}
