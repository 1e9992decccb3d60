// Choosing files from a repository listing: a quant tag as a whole word (Q4_K_M never matches Q4_K_M_L, IQ4_K_M or
// Q4_K), the exact ".QUANT.gguf" name preferred, errors that list what the repository has; safetensors checkpoints
// without the .bin/.pt/consolidated duplicates.

using Sirocco.Cli.Models;

namespace Sirocco.Cli.Tests.Models;

public sealed class FileSelectionTests
{
    private static HubFileEntry File(string path, long size = 10) => new(path, size, null, new string('a', 64));

    private static readonly HubFileEntry[] s_theBloke =
    [
        File(".gitattributes"), File("README.md"), File("config.json"),
        .. new[] { "Q2_K", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q4_0", "Q4_K_M", "Q4_K_S", "Q5_0", "Q5_K_M", "Q5_K_S", "Q6_K", "Q8_0" }
            .Select(q => File($"mistral-7b-instruct-v0.2.{q}.gguf")),
    ];

    private static FileSelection Select(string reference, IReadOnlyList<HubFileEntry> files) =>
        FileSelection.Select(PullTests.HubRef(reference), files);

    [Theory]
    [InlineData("Q4_K_M", "mistral-7b-instruct-v0.2.Q4_K_M.gguf")]
    [InlineData("q4_k_s", "mistral-7b-instruct-v0.2.Q4_K_S.gguf")]
    [InlineData("Q4_0", "mistral-7b-instruct-v0.2.Q4_0.gguf")]
    [InlineData("Q8_0", "mistral-7b-instruct-v0.2.Q8_0.gguf")]
    public void Quant_PicksItsFile(string quant, string file)
    {
        FileSelection s = Select($"TheBloke/Mistral-7B-Instruct-v0.2-GGUF:{quant}", s_theBloke);
        Assert.Equal(ModelKind.Gguf, s.Kind);
        Assert.Equal(file, Assert.Single(s.Files).Path);
        Assert.Equal(file, s.LoadPath);
    }

    [Fact]
    public void Quant_IsAWholeWord()
    {
        HubFileEntry[] files = [File("m.Q4_K_M_L.gguf"), File("m.IQ4_K_M.gguf"), File("m-Q4_K_M.gguf"), File("m.Q4_K.gguf")];
        Assert.Equal("m-Q4_K_M.gguf", Assert.Single(Select("o/r:Q4_K_M", files).Files).Path);
        Assert.Equal("m.Q4_K.gguf", Assert.Single(Select("o/r:Q4_K", files).Files).Path);
    }

    [Fact]
    public void Quant_PrefersTheExactName_OverOtherFilesWithTheTag()
    {
        HubFileEntry[] files = [File("model.Q4_K_M.gguf"), File("model.Q4_K_M-imatrix-notes.gguf")];
        Assert.Equal("model.Q4_K_M.gguf", Assert.Single(Select("o/r:Q4_K_M", files).Files).Path);
    }

    [Fact]
    public void Quant_Several_IsAnError_NamingThem()
    {
        HubFileEntry[] files = [File("Q4_K_M/model-Q4_K_M-00001-of-00002.gguf"), File("Q4_K_M/model-Q4_K_M-00002-of-00002.gguf")];
        var e = Assert.Throws<ModelStoreException>(() => Select("o/r:Q4_K_M", files));
        Assert.Contains("o/r has several GGUF files for Q4_K_M (Q4_K_M/model-Q4_K_M-00001-of-00002.gguf, Q4_K_M/model-Q4_K_M-00002-of-00002.gguf)", e.Message);
        Assert.Contains("split GGUF files are not supported", e.Message);
    }

    [Fact]
    public void Quant_None_ListsTheRepositorysQuants()
    {
        var e = Assert.Throws<ModelStoreException>(() => Select("TheBloke/Mistral-7B-Instruct-v0.2-GGUF:Q9_K", s_theBloke));
        Assert.Equal("TheBloke/Mistral-7B-Instruct-v0.2-GGUF has no GGUF file for Q9_K; it has Q2_K, Q3_K_L, Q3_K_M, Q3_K_S, Q4_0, Q4_K_M, Q4_K_S, Q5_0, Q5_K_M, Q5_K_S, Q6_K, Q8_0 (for example TheBloke/Mistral-7B-Instruct-v0.2-GGUF:Q4_K_M)", e.Message);
    }

    [Fact]
    public void NoSelector_OnAGgufRepository_AsksForAQuant()
    {
        var e = Assert.Throws<ModelStoreException>(() => Select("TheBloke/Mistral-7B-Instruct-v0.2-GGUF", s_theBloke));
        Assert.StartsWith("TheBloke/Mistral-7B-Instruct-v0.2-GGUF has several GGUF files; name a quantization: Q2_K, ", e.Message);
        Assert.EndsWith("(for example TheBloke/Mistral-7B-Instruct-v0.2-GGUF:Q4_K_M)", e.Message);
        Assert.Equal("only.Q4_0.gguf", Assert.Single(Select("o/r", [File("README.md"), File("only.Q4_0.gguf")]).Files).Path);
    }

    [Fact]
    public void FileSelector_TakesThatFile()
    {
        Assert.Equal("mistral-7b-instruct-v0.2.Q6_K.gguf", Assert.Single(Select("TheBloke/Mistral-7B-Instruct-v0.2-GGUF:mistral-7b-instruct-v0.2.Q6_K.gguf", s_theBloke).Files).Path);
        var e = Assert.Throws<ModelStoreException>(() => Select("o/r:missing.gguf", s_theBloke));
        Assert.StartsWith("o/r has no file missing.gguf; its GGUF files are mistral-7b-instruct-v0.2.Q2_K.gguf", e.Message);
    }

    [Fact]
    public void Checkpoint_TakesConfigTokenizerAndSafetensors_NotTheDuplicates()
    {
        // mistralai/Mistral-7B-Instruct-v0.2's layout: sharded safetensors + index, the same weights as .bin shards and
        // as consolidated.* for mistral-inference.
        HubFileEntry[] files =
        [
            File(".gitattributes"), File("README.md"), File("config.json"), File("generation_config.json"),
            File("model-00001-of-00003.safetensors"), File("model-00002-of-00003.safetensors"), File("model-00003-of-00003.safetensors"),
            File("model.safetensors.index.json"), File("pytorch_model-00001-of-00003.bin"), File("pytorch_model.bin.index.json"),
            File("consolidated.safetensors"), File("consolidated.00.pth"), File("params.json"),
            File("special_tokens_map.json"), File("tokenizer.json"), File("tokenizer.model"), File("tokenizer_config.json"),
            File("original/model.safetensors"),
        ];
        FileSelection s = Select("mistralai/Mistral-7B-Instruct-v0.2", files);
        Assert.Equal(ModelKind.SafeTensors, s.Kind);
        Assert.Equal(".", s.LoadPath);
        Assert.Equal(
            ["config.json", "generation_config.json", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
             "model.safetensors.index.json", "special_tokens_map.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json"],
            s.Files.Select(f => f.Path).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Checkpoint_WithoutConfigOrTokenizer_IsAnError()
    {
        Assert.Contains("no config.json", Assert.Throws<ModelStoreException>(() => Select("o/r", [File("model.safetensors"), File("tokenizer.model")])).Message);
        Assert.Contains("no tokenizer.model or tokenizer.json", Assert.Throws<ModelStoreException>(() => Select("o/r", [File("model.safetensors"), File("config.json")])).Message);
        Assert.Contains("neither a safetensors checkpoint nor GGUF files", Assert.Throws<ModelStoreException>(() => Select("o/r", [File("pytorch_model.bin"), File("config.json")])).Message);
    }
}
