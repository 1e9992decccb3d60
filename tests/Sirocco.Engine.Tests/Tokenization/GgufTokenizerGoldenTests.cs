// The golden files through the GGUF path: the real vocabulary is written as tokenizer.ggml.* metadata (as llama.cpp's
// converter does), read back by GgufTokenizer, and must still match the reference SentencePiece output.

using Sirocco.Engine.Formats;
using Sirocco.Engine.Formats.Gguf;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

public sealed class GgufTokenizerGoldenTests : GoldenTokenizerTests
{
    private static readonly Lazy<Tokenizer> s_fromGguf = new(() =>
    {
        var sp = GoldenData.Model;
        int n = sp.VocabSize;
        var writer = new GgufWriter();
        writer.Add("general.architecture", "llama");
        LlamaGgufMetadata.WriteTokenizer(writer,
            Enumerable.Range(0, n).Select(sp.GetPiece).ToArray(),
            Enumerable.Range(0, n).Select(sp.GetScore).ToArray(),
            Enumerable.Range(0, n).Select(i => (int)sp.GetTokenType(i)).ToArray(),
            sp.BosId, sp.EosId, sp.UnkId, LlamaGgufMetadata.MistralChatTemplate);
        string path = Path.Combine(Path.GetTempPath(), $"sirocco-gguf-tokenizer-{Environment.ProcessId}.gguf");
        writer.WriteFile(path, new Dictionary<string, byte[]>());
        try
        {
            return TokenizerLoader.Load(path);
        }
        finally
        {
            File.Delete(path);
        }
    });

    protected override Tokenizer Tok => s_fromGguf.Value;

    [Fact]
    public void NonSentencePieceVocabulary_IsUnsupported()
    {
        using var dir = new TempDir();
        var writer = new GgufWriter().Add("tokenizer.ggml.model", "gpt2").Add("tokenizer.ggml.tokens", GgufValue.Array(new[] { "a" }));
        writer.WriteFile(dir.File("gpt2.gguf"), new Dictionary<string, byte[]>());
        var e = Assert.Throws<UnsupportedModelException>(() => TokenizerLoader.Load(dir.File("gpt2.gguf")));
        Assert.Contains("gpt2", e.Message);
    }

    [Fact]
    public void MissingTokens_IsAFormatErrorNamingTheKey()
    {
        using var dir = new TempDir();
        new GgufWriter().Add("tokenizer.ggml.model", "llama").WriteFile(dir.File("none.gguf"), new Dictionary<string, byte[]>());
        var e = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(dir.File("none.gguf")));
        Assert.Contains("tokenizer.ggml.tokens", e.Message);
    }
}
