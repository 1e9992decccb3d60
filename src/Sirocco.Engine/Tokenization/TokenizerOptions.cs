// Text-handling switches of a tokenizer: SentencePiece's normalizer_spec and trainer_spec flags that change how text
// becomes pieces and back. Readers fill it from tokenizer.model, tokenizer.json or GGUF metadata; Tokenizer obeys it.

namespace Sirocco.Engine.Tokenization;

/// <summary>How a tokenizer treats whitespace and unknown characters. The defaults are Mistral v1's settings.</summary>
public sealed record TokenizerOptions
{
    /// <summary>Prepend one <c>▁</c> to non-empty text before encoding (SentencePiece <c>add_dummy_prefix</c>), and drop
    /// one leading <c>▁</c> when decoding. GGUF: <c>tokenizer.ggml.add_space_prefix</c>.</summary>
    public bool AddDummyPrefix { get; init; } = true;

    /// <summary>Trim leading and trailing spaces and collapse runs of spaces before encoding
    /// (SentencePiece <c>remove_extra_whitespaces</c>). False for Mistral.</summary>
    public bool RemoveExtraWhitespaces { get; init; }

    /// <summary>Replace each U+0020 space with <c>▁</c> (U+2581) before encoding (SentencePiece <c>escape_whitespaces</c>).</summary>
    public bool EscapeWhitespaces { get; init; } = true;

    /// <summary>Encode characters that have no piece as their UTF-8 bytes (<c>&lt;0xXX&gt;</c> tokens) instead of the
    /// unknown token. Requires all 256 byte tokens in the vocabulary.</summary>
    public bool ByteFallback { get; init; } = true;

    /// <summary>What the unknown token decodes to (SentencePiece <c>unk_surface</c>, default <c>" ⁇ "</c>).</summary>
    public string UnknownSurface { get; init; } = DefaultUnknownSurface;

    /// <summary>SentencePiece's default unknown surface: U+2047 DOUBLE QUESTION MARK between two spaces.</summary>
    public const string DefaultUnknownSurface = " \u2047 ";
}
