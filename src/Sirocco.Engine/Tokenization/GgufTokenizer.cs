// Builds a Tokenizer from a GGUF file's tokenizer.ggml.* metadata (tokens, scores, token_type, special ids) via
// Tokenizer.FromVocabulary. TokenizerLoader calls it for .gguf paths; the model loader calls FromFile on an open file.

using Sirocco.Engine.Formats;
using Sirocco.Engine.Formats.Gguf;

namespace Sirocco.Engine.Tokenization;

internal static class GgufTokenizer
{
    /// <summary>Loads the tokenizer embedded in the GGUF model file at <paramref name="path"/>.</summary>
    internal static Tokenizer Load(string path)
    {
        using var file = GgufFile.Open(path);
        return FromFile(file);
    }

    /// <summary>Builds the tokenizer from <paramref name="file"/>'s metadata. Only SentencePiece vocabularies
    /// (<c>tokenizer.ggml.model = "llama"</c>) are supported; GPT-2 style byte-level BPE is reported as unsupported.</summary>
    /// <exception cref="ModelFormatException">A tokenizer key is missing, mistyped or inconsistent.</exception>
    /// <exception cref="UnsupportedModelException">Another tokenizer model.</exception>
    internal static Tokenizer FromFile(GgufFile file)
    {
        string model = file.GetString("tokenizer.ggml.model");
        if (model != "llama")
        {
            throw new UnsupportedModelException($"{file.FilePath}: tokenizer.ggml.model \"{model}\" is not supported; Sirocco reads SentencePiece (\"llama\") vocabularies such as Mistral's");
        }
        string[] tokens = file.GetArray<string>("tokenizer.ggml.tokens");
        float[] scores = file.Has("tokenizer.ggml.scores") ? file.GetArray<float>("tokenizer.ggml.scores") : new float[tokens.Length];
        int[] types = file.Has("tokenizer.ggml.token_type") ? file.GetArray<int>("tokenizer.ggml.token_type") : Enumerable.Repeat((int)TokenType.Normal, tokens.Length).ToArray();
        var special = new SpecialTokenIds(
            Unk: file.GetInt("tokenizer.ggml.unknown_token_id", 0),
            Bos: file.GetInt("tokenizer.ggml.bos_token_id", 1),
            Eos: file.GetInt("tokenizer.ggml.eos_token_id", 2),
            Pad: file.GetInt("tokenizer.ggml.padding_token_id", -1));
        // GGUF has no byte-fallback flag: a vocabulary with all 256 <0xXX> byte pieces uses them, as SentencePiece does.
        bool hasAllBytes = types.Count(t => t == (int)TokenType.Byte) >= 256;
        var options = new TokenizerOptions
        {
            AddDummyPrefix = file.GetBool("tokenizer.ggml.add_space_prefix", true),
            ByteFallback = hasAllBytes,
        };
        return Tokenizer.FromVocabulary(tokens, scores, types, special, options, file.FilePath);
    }
}
