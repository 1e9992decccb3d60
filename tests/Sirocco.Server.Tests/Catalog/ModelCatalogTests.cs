// The catalog as loaded from the embedded seed entries: names, limits, lookup with the docs' alias, and
// /ai/models/search filtering and pagination (wrangler and the SDKs page until an empty page).

using System.Text.Json;
using System.Text.Json.Nodes;
using Sirocco.Server.Catalog;

namespace Sirocco.Server.Tests.Catalog;

public sealed class ModelCatalogTests
{
    private static readonly ModelCatalog s_catalog = ModelCatalog.Load(8192);

    [Fact]
    public void BothSeedEntries_AreEmbedded()
    {
        var names = typeof(ModelCatalog).Assembly.GetManifestResourceNames();
        Assert.Contains("Sirocco.Server.Catalog.mistral-7b-instruct-v0.2.json", names);
        Assert.Contains("Sirocco.Server.Catalog.mistral-7b-instruct-v0.2-lora.json", names);
    }

    [Fact]
    public void Load_HasBothModels_InCatalogOrder()
    {
        Assert.Equal([ModelCatalog.LoraModelName, ModelCatalog.HfModelName], s_catalog.Models.Select(m => m.Name));
        var lora = s_catalog.Models[0];
        var hf = s_catalog.Models[1];
        Assert.Equal("c58c317b-0c15-4bda-abb6-93e275f282d9", lora.Id);
        Assert.Equal("b97d7069-48d9-461c-80dd-445d20a632eb", hf.Id);
        Assert.Equal(1, lora.Source);
        Assert.Equal(2, hf.Source);
        Assert.Equal("Text Generation", hf.TaskName);
        Assert.Equal("mistral", hf.Author);
        Assert.Equal("4096", hf.Properties["max_total_tokens"]);
    }

    [Fact]
    public void Limits_ComeFromTheSeeds()
    {
        var hf = s_catalog.Find(ModelCatalog.HfModelName)!;
        var lora = s_catalog.Find(ModelCatalog.LoraModelName)!;
        Assert.Equal(new ModelLimits(6144, 3072, 4096, 4096), hf.Limits);
        Assert.Equal(new ModelLimits(131072, null, null, 8192), lora.Limits);
        Assert.Equal(2048, ModelCatalog.Load(2048).Find(ModelCatalog.LoraModelName)!.Limits.ContextWindow);
        Assert.Equal(4096, ModelCatalog.Load(2048).Find(ModelCatalog.HfModelName)!.Limits.ContextWindow);
    }

    [Fact]
    public void SupportsTools_OnlyTheHfModel()
    {
        Assert.True(s_catalog.Find(ModelCatalog.HfModelName)!.SupportsTools);
        Assert.False(s_catalog.Find(ModelCatalog.LoraModelName)!.SupportsTools);
    }

    [Fact]
    public void Load_NonPositiveWindow_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ModelCatalog.Load(0));
    }

    [Fact]
    public void Entry_IsTheItemWithoutSchema_AndACopy()
    {
        var hf = s_catalog.Find(ModelCatalog.HfModelName)!;
        var entry = hf.Entry;
        Assert.Equal(["id", "source", "name", "description", "task", "tags", "properties"], entry.Select(p => p.Key));
        entry["name"] = "changed";
        Assert.Equal(ModelCatalog.HfModelName, hf.Entry["name"]!.GetValue<string>());
    }

    [Fact]
    public void Schemas_AreTheSeedSchemas()
    {
        using var stream = typeof(ModelCatalog).Assembly.GetManifestResourceStream("Sirocco.Server.Catalog.mistral-7b-instruct-v0.2.json")!;
        var seed = JsonNode.Parse(stream)!;
        var hf = s_catalog.Find(ModelCatalog.HfModelName)!;
        Assert.True(JsonNode.DeepEquals(seed["schema"]!["input"], hf.InputSchema));
        Assert.True(JsonNode.DeepEquals(seed["schema"]!["output"], hf.OutputSchema));
        // The served schema is not the augmented validation schema.
        Assert.Null(hf.InputSchema["oneOf"]![1]!["properties"]!["lora"]);
        Assert.NotNull(hf.ValidationSchema["oneOf"]![1]!["properties"]!["lora"]);
    }

    [Fact]
    public void Find_ExactNameOrAlias()
    {
        Assert.Same(s_catalog.Models[0], s_catalog.Find("@cf/mistral/mistral-7b-instruct-v0.2-lora"));
        Assert.Same(s_catalog.Models[0], s_catalog.Find("@cf/mistralai/mistral-7b-instruct-v0.2-lora"));
        Assert.Same(s_catalog.Models[1], s_catalog.Find("@hf/mistral/mistral-7b-instruct-v0.2"));
        Assert.Null(s_catalog.Find("@cf/meta/llama-3.1-8b-instruct"));
        Assert.Null(s_catalog.Find("@HF/mistral/mistral-7b-instruct-v0.2"));
        Assert.Null(s_catalog.Find(""));
    }

    [Fact]
    public void Search_NoFilters_ReturnsEverything()
    {
        var page = s_catalog.Search(null, null, null, null, 1, 50);
        Assert.Equal(2, page.Items.Count);
        Assert.Equal(new CatalogResultInfo(1, 50, 2, 2), page.ResultInfo);
    }

    [Theory]
    [InlineData("LoRA", new[] { ModelCatalog.LoraModelName })]
    [InlineData("mistral-7b", new[] { ModelCatalog.LoraModelName, ModelCatalog.HfModelName })]
    [InlineData("ROPE-THETA", new[] { ModelCatalog.HfModelName })] // description only
    [InlineData("llama", new string[0])]
    [InlineData("", new[] { ModelCatalog.LoraModelName, ModelCatalog.HfModelName })]
    public void Search_BySubstringOfNameOrDescription(string search, string[] expected)
    {
        var page = s_catalog.Search(search, null, null, null, 1, 10);
        Assert.Equal(expected, page.Items.Select(i => i["name"]!.GetValue<string>()));
        Assert.Equal(expected.Length, page.ResultInfo.TotalCount);
    }

    [Theory]
    [InlineData("Text Generation", 2)]
    [InlineData("text generation", 2)]
    [InlineData("c329a1f9-323d-4e91-b2aa-582dd4188d34", 2)]
    [InlineData("Translation", 0)]
    [InlineData("Text", 0)] // a task matches by whole name, not substring
    public void Search_ByTaskNameOrId(string task, int expected)
    {
        Assert.Equal(expected, s_catalog.Search(null, task, null, null, 1, 10).ResultInfo.TotalCount);
    }

    [Fact]
    public void Search_ByAuthorAndSource()
    {
        Assert.Equal(2, s_catalog.Search(null, null, "Mistral", null, 1, 10).ResultInfo.TotalCount);
        Assert.Equal(0, s_catalog.Search(null, null, "meta", null, 1, 10).ResultInfo.TotalCount);
        var cf = s_catalog.Search(null, null, null, 1, 1, 10);
        Assert.Equal(ModelCatalog.LoraModelName, Assert.Single(cf.Items)["name"]!.GetValue<string>());
        var hf = s_catalog.Search("lora", null, null, 2, 1, 10);
        Assert.Empty(hf.Items);
    }

    [Fact]
    public void Search_PagesHonourPerPage_AndPastTheEndIsEmpty()
    {
        var first = s_catalog.Search(null, null, null, null, 1, 1);
        var second = s_catalog.Search(null, null, null, null, 2, 1);
        var third = s_catalog.Search(null, null, null, null, 3, 1);
        Assert.Equal(ModelCatalog.LoraModelName, Assert.Single(first.Items)["name"]!.GetValue<string>());
        Assert.Equal(ModelCatalog.HfModelName, Assert.Single(second.Items)["name"]!.GetValue<string>());
        Assert.Empty(third.Items);
        Assert.Equal(new CatalogResultInfo(3, 1, 0, 2), third.ResultInfo);
        Assert.Empty(s_catalog.Search(null, null, null, null, int.MaxValue, int.MaxValue).Items);
        Assert.Equal(2, s_catalog.Search(null, null, null, null, 1, int.MaxValue).Items.Count);
    }

    [Fact]
    public void Search_BadPaging_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => s_catalog.Search(null, null, null, null, 0, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => s_catalog.Search(null, null, null, null, 1, 0));
    }

    [Fact]
    public void ResultInfo_SerializesWithWireNames()
    {
        string json = JsonSerializer.Serialize(new CatalogResultInfo(2, 50, 0, 2));
        Assert.Equal("""{"page":2,"per_page":50,"count":0,"total_count":2}""", json);
    }
}
