// config.json → ModelConfig and back: the published Mistral-7B-Instruct-v0.2 config, defaults, unsupported features,
// and malformed values, each failing with an exception that names the file and the key.

using System.Text.Json;
using System.Text.Json.Nodes;
using Sirocco.Engine.Formats;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Model;
using static Sirocco.Engine.Tests.Formats.SafeTensors.SafeTensorTestFiles;

namespace Sirocco.Engine.Tests.Formats.SafeTensors;

public sealed class HfConfigTests
{
    /// <summary>config.json of mistralai/Mistral-7B-Instruct-v0.2 on the Hugging Face Hub (keys and values as published;
    /// transformers_version differs between revisions of the repository).</summary>
    private const string Mistral7BInstructV02 = """
        {
          "architectures": [
            "MistralForCausalLM"
          ],
          "attention_dropout": 0.0,
          "bos_token_id": 1,
          "eos_token_id": 2,
          "hidden_act": "silu",
          "hidden_size": 4096,
          "initializer_range": 0.02,
          "intermediate_size": 14336,
          "max_position_embeddings": 32768,
          "model_type": "mistral",
          "num_attention_heads": 32,
          "num_hidden_layers": 32,
          "num_key_value_heads": 8,
          "rms_norm_eps": 1e-05,
          "rope_theta": 1000000.0,
          "sliding_window": null,
          "tie_word_embeddings": false,
          "torch_dtype": "bfloat16",
          "transformers_version": "4.36.0",
          "use_cache": true,
          "vocab_size": 32000
        }
        """;

    /// <summary>The Mistral config with <paramref name="edit"/> applied to its JSON object.</summary>
    private static string Edited(Action<JsonObject> edit)
    {
        JsonObject root = JsonNode.Parse(Mistral7BInstructV02)!.AsObject();
        edit(root);
        return root.ToJsonString();
    }

    [Fact]
    public void Mistral7BInstructV02_MapsOntoModelConfig()
    {
        ModelConfig config = HfConfig.Parse(Mistral7BInstructV02);
        Assert.Equal(4096, config.ModelDim);
        Assert.Equal(14336, config.HiddenDim);
        Assert.Equal(32, config.LayerCount);
        Assert.Equal(32, config.HeadCount);
        Assert.Equal(8, config.KvHeadCount);
        Assert.Equal(128, config.HeadDim);
        Assert.Equal(128, config.RopeDim);
        Assert.Equal(32000, config.VocabSize);
        Assert.Equal(32768, config.ContextLength);
        Assert.Equal(1_000_000f, config.RopeTheta);
        Assert.Equal(1e-5f, config.RmsNormEps);
        Assert.Null(config.SlidingWindow);
        Assert.False(config.TiedEmbeddings);
        Assert.Equal(1, config.BosId);
        Assert.Equal(2, config.EosId);
        Assert.Equal("llama", config.Architecture);
        Assert.Equal(ModelConfig.Mistral7B, config);
    }

    [Fact]
    public void Load_AcceptsAFileOrItsDirectory()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), Mistral7BInstructV02);
        Assert.Equal(ModelConfig.Mistral7B, HfConfig.Load(dir.FullPath));
        Assert.Equal(ModelConfig.Mistral7B, HfConfig.Load(dir.File("config.json")));
        Assert.Throws<FileNotFoundException>(() => HfConfig.Load(dir.File("nope.json")));
    }

    [Fact]
    public void ToJson_Mistral7B_ReproducesThePublishedFile()
    {
        string json = HfConfig.ToJson(ModelConfig.Mistral7B);
        Assert.Equal(Mistral7BInstructV02.ReplaceLineEndings("\n") + "\n", json);
        Assert.Equal(ModelConfig.Mistral7B, HfConfig.Parse(json));
    }

    [Fact]
    public void ToJson_TinySyntheticModel_RoundTrips()
    {
        var tiny = new ModelConfig
        {
            ModelDim = 64,
            HiddenDim = 172,
            LayerCount = 2,
            HeadCount = 4,
            KvHeadCount = 2,
            HeadDim = 32, // not ModelDim / HeadCount: written as head_dim
            RopeDim = 32,
            VocabSize = 300,
            ContextLength = 256,
            RopeTheta = 10000f,
            RmsNormEps = 1e-6f,
            SlidingWindow = 128,
            TiedEmbeddings = true,
            BosId = 5,
            EosId = 6,
        };
        using var dir = new TempDir();
        HfConfig.Save(tiny, dir.FullPath, torchDtype: "float32");
        string json = File.ReadAllText(dir.File("config.json"));
        Assert.Contains("\"head_dim\": 32", json);
        Assert.Contains("\"torch_dtype\": \"float32\"", json);
        Assert.Equal(tiny, HfConfig.Load(dir.FullPath));
    }

    [Fact]
    public void ToJson_RejectsAnInvalidConfig() =>
        Assert.Throws<ArgumentException>(() => HfConfig.ToJson(ModelConfig.Mistral7B with { KvHeadCount = 5 }));

    [Fact]
    public void Defaults_ApplyWhenOptionalKeysAreAbsent()
    {
        string json = Edited(root =>
        {
            foreach (string key in (string[])["num_key_value_heads", "rope_theta", "sliding_window", "tie_word_embeddings", "bos_token_id", "eos_token_id", "hidden_act"])
            {
                root.Remove(key);
            }
        });
        ModelConfig config = HfConfig.Parse(json);
        Assert.Equal(32, config.KvHeadCount);
        Assert.Equal(10000f, config.RopeTheta);
        Assert.Null(config.SlidingWindow);
        Assert.False(config.TiedEmbeddings);
        Assert.Equal(1, config.BosId);
        Assert.Equal(2, config.EosId);
    }

    [Fact]
    public void LlamaConfig_WithNullsAndEosList_IsAccepted()
    {
        string json = Edited(root =>
        {
            root["architectures"] = new JsonArray("LlamaForCausalLM");
            root["model_type"] = "llama";
            root["rope_scaling"] = null;
            root["head_dim"] = null;
            root["num_key_value_heads"] = null;
            root["attention_bias"] = false;
            root["eos_token_id"] = new JsonArray(7, 8);
            root["sliding_window"] = 4096;
        });
        ModelConfig config = HfConfig.Parse(json);
        Assert.Equal(128, config.HeadDim);
        Assert.Equal(32, config.KvHeadCount);
        Assert.Equal(7, config.EosId);
        Assert.Equal(4096, config.SlidingWindow);
    }

    [Theory]
    [InlineData("architectures", """["GPT2LMHeadModel"]""", "GPT2LMHeadModel")]
    [InlineData("architectures", """["MixtralForCausalLM"]""", "MixtralForCausalLM")]
    [InlineData("model_type", "\"mixtral\"", "mixtral")]
    [InlineData("rope_scaling", """{"type":"linear","factor":2.0}""", "rope_scaling")]
    [InlineData("rope_scaling", """{"rope_type":"llama3","factor":8.0}""", "llama3")]
    [InlineData("hidden_act", "\"gelu\"", "gelu")]
    [InlineData("attention_bias", "true", "attention_bias")]
    [InlineData("mlp_bias", "true", "mlp_bias")]
    public void UnsupportedFeatures_AreReportedAsUnsupported(string key, string value, string mention)
    {
        string json = Edited(root => root[key] = JsonNode.Parse(value));
        var e = Assert.Throws<UnsupportedModelException>(() => HfConfig.Parse(json, "/models/m/config.json"));
        AssertMentions(e, "config.json", mention);
    }

    [Theory]
    [InlineData("hidden_size")]
    [InlineData("intermediate_size")]
    [InlineData("num_hidden_layers")]
    [InlineData("num_attention_heads")]
    [InlineData("vocab_size")]
    [InlineData("max_position_embeddings")]
    [InlineData("rms_norm_eps")]
    [InlineData("architectures")]
    [InlineData("model_type")]
    public void MissingRequiredKey_FailsNamingIt(string key)
    {
        string json = Edited(root => root.Remove(key));
        var e = Assert.Throws<ModelFormatException>(() => HfConfig.Parse(json, "/models/m/config.json"));
        AssertMentions(e, "config.json", key, "no such key");
        Assert.Equal(key, e.Field);
    }

    [Theory]
    [InlineData("hidden_size", "\"4096\"")]
    [InlineData("hidden_size", "4096.5")]
    [InlineData("hidden_size", "40960000000")]
    [InlineData("num_hidden_layers", "true")]
    [InlineData("num_key_value_heads", "[8]")]
    [InlineData("rope_theta", "\"1e6\"")]
    [InlineData("rms_norm_eps", "{}")]
    [InlineData("sliding_window", "\"none\"")]
    [InlineData("sliding_window", "0")]
    [InlineData("tie_word_embeddings", "0")]
    [InlineData("bos_token_id", "-1")]
    [InlineData("eos_token_id", "[\"eos\"]")]
    [InlineData("architectures", "\"MistralForCausalLM\"")]
    [InlineData("architectures", "[1]")]
    [InlineData("model_type", "7")]
    [InlineData("hidden_act", "5")]
    public void WrongType_FailsNamingTheKey(string key, string value)
    {
        string json = Edited(root => root[key] = JsonNode.Parse(value));
        var e = Assert.Throws<ModelFormatException>(() => HfConfig.Parse(json, "/models/m/config.json"));
        AssertMentions(e, "config.json", key, value);
        Assert.Equal(key, e.Field);
    }

    [Theory]
    [InlineData("num_attention_heads", "0", "num_attention_heads")]
    [InlineData("num_key_value_heads", "5", "KvHeadCount")]
    [InlineData("hidden_size", "-4096", "ModelDim")]
    [InlineData("rms_norm_eps", "0", "RmsNormEps")]
    [InlineData("rope_theta", "-1", "RopeTheta")]
    [InlineData("head_dim", "127", "HeadDim")]
    public void ImpossibleNumbers_FailValidation(string key, string value, string mention)
    {
        string json = Edited(root => root[key] = JsonNode.Parse(value));
        var e = Assert.Throws<ModelFormatException>(() => HfConfig.Parse(json, "/models/m/config.json"));
        AssertMentions(e, "config.json", mention);
    }

    [Theory]
    [InlineData("{")]
    [InlineData("[]")]
    [InlineData("")]
    [InlineData("""{"hidden_size": 1, "hidden_size": 2}""")]
    [InlineData("""{"a": 1,}""")]
    public void MalformedJson_Fails(string json)
    {
        var e = Assert.Throws<ModelFormatException>(() => HfConfig.Parse(json, "/models/m/config.json"));
        AssertMentions(e, "config.json");
    }

    [Fact]
    public void InvalidUtf8_Fails()
    {
        byte[] bytes = [.. System.Text.Encoding.UTF8.GetBytes(Mistral7BInstructV02)];
        bytes[10] = 0xFE;
        var e = Assert.Throws<ModelFormatException>(() => HfConfig.Parse(bytes, "/models/m/config.json"));
        AssertMentions(e, "config.json", "UTF-8");
    }
}
