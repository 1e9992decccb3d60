// Parsing model arguments: local paths (existing ones always win), hub references with revision and selector, the
// default alias and its :QUANT form, SIROCCO_MODEL_ALIASES overrides, and one-line errors for malformed selectors.

using Sirocco.Cli.Models;

namespace Sirocco.Cli.Tests.Models;

public sealed class ModelReferenceTests
{
    private static readonly ModelAliases s_aliases = ModelAliases.BuiltIn();

    [Theory]
    [InlineData("TheBloke/Mistral-7B-Instruct-v0.2-GGUF:Q4_K_M", "TheBloke", "Mistral-7B-Instruct-v0.2-GGUF", "main", "Quant", "Q4_K_M")]
    [InlineData("TheBloke/Mistral-7B-Instruct-v0.2-GGUF:q4_k_m", "TheBloke", "Mistral-7B-Instruct-v0.2-GGUF", "main", "Quant", "Q4_K_M")]
    [InlineData("mistralai/Mistral-7B-Instruct-v0.2", "mistralai", "Mistral-7B-Instruct-v0.2", "main", "Default", null)]
    [InlineData("org/repo@v1.0:model.Q8_0.gguf", "org", "repo", "v1.0", "File", "model.Q8_0.gguf")]
    [InlineData("org/repo@refs/pr/1", "org", "repo", "refs/pr/1", "Default", null)]
    [InlineData("hf.co/org/repo:Q4_0", "org", "repo", "main", "Quant", "Q4_0")]
    [InlineData("huggingface.co/org/repo:sub/dir/x.gguf", "org", "repo", "main", "File", "sub/dir/x.gguf")]
    public void HubReferences_Parse(string text, string owner, string name, string revision, string kind, string? value)
    {
        var r = Assert.IsType<HubModelReference>(ModelReference.Parse(text, s_aliases));
        Assert.Equal((owner, name, revision, kind, value), (r.Owner, r.Name, r.Revision, r.Selector.Kind.ToString(), r.Selector.Value));
        Assert.Null(r.Alias);
    }

    [Theory]
    [InlineData("/nonexistent/model.gguf")]
    [InlineData("models/tiny.gguf")]
    [InlineData("./org/repo")]
    [InlineData("a/b/c")]
    [InlineData("C:\\models\\x.gguf")]
    [InlineData("tiny-model")]
    public void PathLikeText_IsLocal(string text) =>
        Assert.Equal(text, Assert.IsType<LocalModelReference>(ModelReference.Parse(text, s_aliases)).Path);

    [Fact]
    public void AnExistingDirectory_WinsOverTheHubReading()
    {
        string cwd = Directory.GetCurrentDirectory();
        string root = Path.Combine(Path.GetTempPath(), "sirocco-ref-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(root, "org", "repo"));
        try
        {
            Directory.SetCurrentDirectory(root);
            Assert.IsType<LocalModelReference>(ModelReference.Parse("org/repo", s_aliases));
            Assert.IsType<HubModelReference>(ModelReference.Parse("hf.co/org/repo", s_aliases));
        }
        finally
        {
            Directory.SetCurrentDirectory(cwd);
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void DefaultAlias_IsTheQ4KMGgufOfTheBloke()
    {
        var r = Assert.IsType<HubModelReference>(ModelReference.Parse("mistral-7b-instruct-v0.2", s_aliases));
        Assert.Equal("TheBloke/Mistral-7B-Instruct-v0.2-GGUF:Q4_K_M", r.ToString());
        Assert.Equal("mistral-7b-instruct-v0.2 (TheBloke/Mistral-7B-Instruct-v0.2-GGUF:Q4_K_M)", r.Display);
        var q8 = Assert.IsType<HubModelReference>(ModelReference.Parse("Mistral-7B-Instruct-v0.2:Q8_0", s_aliases));
        Assert.Equal("TheBloke/Mistral-7B-Instruct-v0.2-GGUF:Q8_0", q8.ToString());
    }

    [Fact]
    public void EnvironmentAliases_AddAndReplace()
    {
        var aliases = ModelAliases.WithOverrides("mistral-7b-instruct-v0.2=test-org/Tiny-GGUF:Q4_K_M; other = a/b");
        Assert.Equal("test-org/Tiny-GGUF:Q4_K_M", aliases.Find("mistral-7b-instruct-v0.2")!.ToString());
        Assert.Equal("a/b", aliases.Find("OTHER")!.ToString());
        Assert.Equal(["mistral-7b-instruct-v0.2"], aliases.NamesFor(PullTests.HubRef("test-org/tiny-gguf:q4_k_m")));
    }

    [Theory]
    [InlineData("noequals", "is not name=owner/repo[:QUANT]")]
    [InlineData("x=not a reference", "the target is not owner/repo")]
    [InlineData("a/b=c/d", "must be a plain name")]
    public void EnvironmentAliases_Malformed_SayWhich(string value, string message)
    {
        var e = Assert.Throws<ModelStoreException>(() => ModelAliases.WithOverrides(value));
        Assert.StartsWith("SIROCCO_MODEL_ALIASES", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Theory]
    [InlineData("org/repo:Q4 K", "':Q4 K' is neither a quantization")]
    [InlineData("org/repo:../x.gguf", "is neither a quantization")]
    [InlineData("org/repo@a..b", "'@a..b' is not a revision")]
    [InlineData("hf.co/nothing", "not a Hugging Face reference")]
    public void MalformedHubReferences_GiveOneLine(string text, string message) =>
        Assert.Contains(message, Assert.Throws<ModelStoreException>(() => ModelReference.Parse(text, s_aliases)).Message);
}
