// TokenizerLoader's dispatch: files by extension or content, directories preferring tokenizer.model, GGUF handed to
// GgufTokenizer, and clear errors for missing paths.

using Sirocco.Engine.Formats;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

public class TokenizerLoaderTests
{
    [Fact]
    public void Directory_PrefersTokenizerModel()
    {
        using var dir = new TempDir();
        File.Copy(TestData.TokenizerModel, dir.File("tokenizer.model"));
        TokenizerJsonWriter.Write(GoldenData.Model, dir.File("tokenizer.json"));
        var tok = TokenizerLoader.Load(dir.FullPath);
        Assert.EndsWith("tokenizer.model", tok.Source);
        Assert.Null(tok.MergeList);
    }

    [Fact]
    public void Directory_FallsBackToTokenizerJson()
    {
        using var dir = new TempDir();
        TokenizerJsonWriter.Write(GoldenData.Model, dir.File("tokenizer.json"));
        var tok = TokenizerLoader.Load(dir.FullPath);
        Assert.EndsWith("tokenizer.json", tok.Source);
        Assert.Equal([22557, 1526], tok.Encode("Hello world"));
    }

    [Fact]
    public void FilesWithoutAKnownExtension_AreRecognisedByContent()
    {
        using var dir = new TempDir();
        File.Copy(TestData.TokenizerModel, dir.File("spm.bin"));
        TokenizerJsonWriter.Write(GoldenData.Model, dir.File("hf.txt"));
        Assert.Null(TokenizerLoader.Load(dir.File("spm.bin")).MergeList);
        Assert.NotNull(TokenizerLoader.Load(dir.File("hf.txt")).MergeList);
    }

    [Fact]
    public void GgufFiles_GoToTheGgufReader()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("model.gguf"), "GGUF"u8.ToArray());
        File.WriteAllBytes(dir.File("model.bin"), "GGUF\u0003\0\0\0"u8.ToArray());
        // Both are truncated GGUF headers: the GGUF reader (not the protobuf or JSON one) must be the one that complains.
        Assert.Contains("version", Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(dir.File("model.gguf"))).Message);
        Assert.Contains("tensor_count", Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(dir.File("model.bin"))).Message);
    }

    [Fact]
    public void MissingPaths_AreFileNotFound()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<FileNotFoundException>(() => TokenizerLoader.Load(dir.FullPath));
        Assert.Contains("tokenizer.model", e.Message);
        Assert.Throws<FileNotFoundException>(() => TokenizerLoader.Load(dir.File("nope.model")));
    }
}
