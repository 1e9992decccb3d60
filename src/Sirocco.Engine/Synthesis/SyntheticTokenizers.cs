// The tokenizer that synthetic models carry: the real Mistral v1 SentencePiece model, embedded in this assembly
// (Apache-2.0; see testdata/mistral-tokenizer/LICENSE), so prompts tokenize exactly as with the real model.

using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Synthesis;

/// <summary>Tokenizers for synthetic models.</summary>
public static class SyntheticTokenizers
{
    private const string ResourceName = "Sirocco.Engine.Synthesis.mistral-v1-tokenizer.model";
    private static readonly Lazy<SyntheticTokenizer> s_mistral = new(LoadMistral);

    /// <summary>The embedded tokenizer.model bytes (Mistral v1, 32000 pieces).</summary>
    public static byte[] MistralModelBytes()
    {
        using var stream = typeof(SyntheticTokenizers).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"embedded resource {ResourceName} is missing from the build");
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        return ms.ToArray();
    }

    /// <summary>The Mistral v1 tokenizer as a parsed <see cref="Tokenizer"/>.</summary>
    public static Tokenizer MistralTokenizer() => SentencePieceModelReader.Parse(MistralModelBytes(), "mistral-v1 tokenizer.model (embedded)");

    /// <summary>The Mistral v1 vocabulary and files, ready to embed in a synthetic model.</summary>
    public static SyntheticTokenizer Mistral() => s_mistral.Value;

    private static SyntheticTokenizer LoadMistral()
    {
        byte[] bytes = MistralModelBytes();
        var tokenizer = SentencePieceModelReader.Parse(bytes, "mistral-v1 tokenizer.model (embedded)");
        int n = tokenizer.VocabSize;
        var pieces = new string[n];
        var scores = new float[n];
        var types = new int[n];
        for (int i = 0; i < n; i++)
        {
            pieces[i] = tokenizer.GetPiece(i);
            scores[i] = tokenizer.GetScore(i);
            types[i] = (int)tokenizer.GetTokenType(i);
        }
        return new SyntheticTokenizer(pieces, scores, types, tokenizer.BosId, tokenizer.EosId, tokenizer.UnkId, bytes,
            TokenizerJson(tokenizer));
    }

    private static string TokenizerJson(Tokenizer tokenizer)
    {
        using var ms = new MemoryStream();
        TokenizerJsonWriter.Write(tokenizer, ms);
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }
}
