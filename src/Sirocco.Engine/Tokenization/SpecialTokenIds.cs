// The ids of a vocabulary's special tokens (unknown, BOS, EOS, padding), as the model readers find them and
// Tokenizer.FromVocabulary takes them from GGUF's tokenizer.ggml.*_token_id keys.

namespace Sirocco.Engine.Tokenization;

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
