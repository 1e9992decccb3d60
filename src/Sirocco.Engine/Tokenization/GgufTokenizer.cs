// Builds a Tokenizer from a GGUF file's tokenizer.ggml.* metadata (tokens, scores, token_type, special ids) via
// Tokenizer.FromVocabulary. TokenizerLoader calls it for .gguf paths. The GGUF reader lands separately.

namespace Sirocco.Engine.Tokenization;

internal static class GgufTokenizer
{
    /// <summary>Loads the tokenizer embedded in a GGUF model file.</summary>
    /// <exception cref="NotSupportedException">Until the GGUF reader exists.</exception>
    internal static Tokenizer Load(string path) =>
        throw new NotSupportedException("GGUF tokenizer loading lands with the GGUF reader");
}
