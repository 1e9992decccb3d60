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

/// <summary>Ids of the special tokens; -1 where the vocabulary has none.</summary>
/// <param name="Unk">The unknown token (type <see cref="TokenType.Unknown"/>); may be -1 only with byte fallback.</param>
/// <param name="Bos">Beginning of sequence, <c>&lt;s&gt;</c> for Mistral.</param>
/// <param name="Eos">End of sequence, <c>&lt;/s&gt;</c> for Mistral.</param>
/// <param name="Pad">Padding; Mistral has none (-1).</param>
public readonly record struct SpecialTokenIds(int Unk, int Bos, int Eos, int Pad = -1)
{
    /// <summary>SentencePiece's defaults, which Mistral uses: unk 0, bos 1, eos 2, no pad.</summary>
    public static SpecialTokenIds SentencePieceDefaults => new(0, 1, 2, -1);
}
