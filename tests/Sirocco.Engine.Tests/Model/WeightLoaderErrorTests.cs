using System.Text.Json.Nodes;
using Sirocco.Engine.Formats;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Model;
using Sirocco.Tests;

namespace Sirocco.Engine.Tests.Model;

/// <summary>A model directory whose config disagrees with its weights, or asks for something the engine does not run,
/// fails at load with a message naming the tensor or setting — never later with garbage.</summary>
public class WeightLoaderErrorTests
{
    [Theory]
    [InlineData("intermediate_size", 1024, "model.layers.0.mlp.gate_proj.weight")]
    [InlineData("num_key_value_heads", 4, "model.layers.0.self_attn.k_proj.weight")]
    [InlineData("vocab_size", 32001, "lm_head.weight")] // the output head is checked first
    public void ConfigDisagreeingWithTensors_NamesTheTensor(string key, int value, string tensor)
    {
        using var dir = CopyWithConfig(c => c[key] = value);
        var e = Assert.Throws<ModelFormatException>(() => WeightLoader.Load(dir.FullPath));
        Assert.Contains(tensor, e.Message);
    }

    [Fact]
    public void MoreLayersThanTheCheckpointHolds_NamesTheMissingTensor()
    {
        using var dir = CopyWithConfig(c => c["num_hidden_layers"] = 3);
        var e = Assert.ThrowsAny<Exception>(() => WeightLoader.Load(dir.FullPath));
        Assert.True(e is ModelFormatException or UnsupportedModelException, e.GetType().Name);
        Assert.Contains("model.layers.2", e.Message);
    }

    [Fact]
    public void SlidingWindowShorterThanContext_IsUnsupported()
    {
        using var dir = CopyWithConfig(c => c["sliding_window"] = 128);
        var e = Assert.Throws<UnsupportedModelException>(() => WeightLoader.Load(dir.FullPath));
        Assert.Contains("sliding-window", e.Message);
    }

    [Fact]
    public void MissingPath_SaysSo()
    {
        var e = Assert.Throws<FileNotFoundException>(() => WeightLoader.Load("/nonexistent/model.gguf"));
        Assert.Contains("/nonexistent/model.gguf", e.Message);
    }

    private static TempDir CopyWithConfig(Action<JsonObject> edit)
    {
        string source = TinyModels.HuggingFace(SafeTensorDtype.F16);
        var dir = new TempDir();
        foreach (string file in Directory.GetFiles(source))
        {
            File.Copy(file, dir.File(Path.GetFileName(file)));
        }
        var config = JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!.AsObject();
        edit(config);
        File.WriteAllText(dir.File("config.json"), config.ToJsonString());
        return dir;
    }
}
