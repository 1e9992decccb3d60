// Every way an adapter can be unusable gives one LoraFormatException of the right kind whose message names the file,
// the key or tensor, and what was expected versus found: missing files, wrong model type, rank over the limit,
// targets and shapes that do not fit the model, unknown or unpaired tensors, unsupported dtypes, oversized files,
// malformed headers, non-finite values and unsupported PEFT features, in PEFT directories and GGUF files.

using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Sirocco.Engine.Formats.Gguf;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;
using Sirocco.Engine.Tests.Model;
using Sirocco.Kernels.Quant;

namespace Sirocco.Engine.Tests.Lora;

/// <summary>The tiny F32 model's weights, loaded once for the validation tests (only shapes are read).</summary>
public sealed class TinyWeightsFixture : IDisposable
{
    public ModelWeights Weights { get; } = WeightLoader.Load(TinyModels.Gguf(ModelFileType.F32));

    public void Dispose() => Weights.Dispose();
}

public sealed class LoraValidationTests(TinyWeightsFixture fixture) : IClassFixture<TinyWeightsFixture>, IDisposable
{
    private static readonly LlamaTensorRole[] s_qv = [LlamaTensorRole.Query, LlamaTensorRole.Value];

    private readonly TempDir _dir = new();
    private readonly ModelWeights _model = fixture.Weights;
    private int _count;

    public void Dispose() => _dir.Dispose();

    // ---- missing files ----

    [Fact]
    public void MissingWeightsFile()
    {
        string dir = WritePeft();
        File.Delete(Path.Combine(dir, "adapter_model.safetensors"));
        Fails(LoraErrorKind.MissingFile, () => LoraAdapter.Load(dir, _model), "adapter_model.safetensors", "no such file");
    }

    [Fact]
    public void MissingConfigFile()
    {
        string dir = WritePeft();
        File.Delete(Path.Combine(dir, "adapter_config.json"));
        Fails(LoraErrorKind.MissingFile, () => LoraAdapter.Load(dir, _model), "adapter_config.json", "no such file");
    }

    [Fact]
    public void MissingDirectoryOrGguf()
    {
        Fails(LoraErrorKind.MissingFile, () => LoraAdapter.Load(_dir.File("nothing-here"), _model), "nothing-here");
        Fails(LoraErrorKind.MissingFile, () => LoraAdapter.LoadGguf(_dir.File("nothing.gguf"), _model), "nothing.gguf");
    }

    // ---- model type ----

    [Fact]
    public void ModelTypeNotMistral()
    {
        Fails(LoraErrorKind.WrongModelType, () => LoadPeft(config: c => c["model_type"] = "llama"), "adapter_config.json", "model_type", "\"mistral\"", "\"llama\"");
    }

    [Fact]
    public void ModelTypeMissing_IsRequiredByDefault_AndCanBeRelaxed()
    {
        string dir = WritePeft(config: c => c.Remove("model_type"));
        Fails(LoraErrorKind.WrongModelType, () => LoraAdapter.Load(dir, _model), "model_type", "no model_type key");
        Assert.Equal(4, LoraAdapter.Load(dir, _model, new LoraLimits(RequireModelType: false)).ModuleCount);
    }

    [Fact]
    public void GgufForAnotherArchitecture()
    {
        string path = WriteGguf(TestAdapter.AdapterMetadata(16, architecture: "gemma"));
        Fails(LoraErrorKind.WrongModelType, () => LoraAdapter.LoadGguf(path, _model), "general.architecture", "\"gemma\"");
    }

    // ---- rank ----

    [Fact]
    public void RankOverTheLimit_SaysRankAndLimit_AndTheLimitCanBeRaised()
    {
        string dir = WritePeft(TestAdapter.Random(_model.Config, s_qv, seed: 3, rank: 16));
        Fails(LoraErrorKind.RankTooLarge, () => LoraAdapter.Load(dir, _model), "adapter_config.json", "r:", "at most 8", "16");
        Assert.Equal(16, LoraAdapter.Load(dir, _model, new LoraLimits(MaxRank: 16)).Rank);
    }

    [Fact]
    public void RankPatternOverTheLimit()
    {
        Fails(LoraErrorKind.RankTooLarge, () => LoadPeft(config: c => c["rank_pattern"] = new JsonObject { ["v_proj"] = 32 }), "rank_pattern.v_proj", "at most 8", "32");
    }

    [Fact]
    public void GgufRankOverTheLimit()
    {
        string path = TestAdapter.Random(_model.Config, s_qv, seed: 3, rank: 12).WriteGguf(_dir.File("r12.gguf"));
        Fails(LoraErrorKind.RankTooLarge, () => LoraAdapter.LoadGguf(path, _model), "r12.gguf", "blk.0.attn_q.weight.lora_a", "at most 8", "rank 12");
    }

    // ---- targets and layers ----

    [Fact]
    public void TargetModuleNotAmongTheSeven()
    {
        Fails(LoraErrorKind.TargetMismatch, () => LoadPeft(config: c => c["target_modules"] = new JsonArray("q_proj", "v_proj", "lm_head")),
            "target_modules", "q_proj, k_proj", "\"lm_head\"");
    }

    [Fact]
    public void TensorForAModuleTheConfigDoesNotTarget()
    {
        TestAdapter adapter = TestAdapter.Random(_model.Config, [.. s_qv, LlamaTensorRole.Key], seed: 4);
        adapter.Config["target_modules"] = new JsonArray("q_proj", "v_proj");
        Fails(LoraErrorKind.TargetMismatch, () => LoraAdapter.Load(WritePeft(adapter), _model),
            "adapter_model.safetensors", "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight", "target_modules [q_proj, v_proj]");
    }

    [Fact]
    public void LayersToTransformOutsideTheModel()
    {
        Fails(LoraErrorKind.TargetMismatch, () => LoadPeft(config: c => c["layers_to_transform"] = new JsonArray(0, 5)),
            "layers_to_transform", "layers 0 … 1", "5");
    }

    [Fact]
    public void TensorForALayerTheModelDoesNotHave()
    {
        TestAdapter adapter = Adapter();
        List<RawTensor> tensors = adapter.PeftTensors();
        tensors.AddRange(tensors.Take(2).Select(t => t with { Name = t.Name.Replace("layers.0.", "layers.7.", StringComparison.Ordinal) }));
        Fails(LoraErrorKind.TargetMismatch, () => Load(TestAdapter.WritePeft(NewDir(), adapter.Config, tensors)), "layers.7.", "layer 7");
    }

    [Fact]
    public void GgufTensorForTheEmbeddingOrAMissingLayer()
    {
        float[] a = new float[8 * 256], b = new float[8 * 32000];
        string embedding = WriteGguf(TestAdapter.AdapterMetadata(16), [("token_embd.weight.lora_a", GgmlType.F32, [256, 8], a), ("token_embd.weight.lora_b", GgmlType.F32, [8, 32000], b)]);
        Fails(LoraErrorKind.TargetMismatch, () => LoraAdapter.LoadGguf(embedding, _model), "token_embd.weight.lora_a", "seven layer projections");
        string layer = WriteGguf(TestAdapter.AdapterMetadata(16), [("blk.9.attn_v.weight.lora_a", GgmlType.F32, [256, 8], a)]);
        Fails(LoraErrorKind.TargetMismatch, () => LoraAdapter.LoadGguf(layer, _model), "blk.9.attn_v.weight.lora_a", "layer 9");
    }

    // ---- shapes ----

    [Fact]
    public void LoraAWithTheWrongInputWidth()
    {
        Fails(LoraErrorKind.ShapeMismatch, () => LoadPeft(tensors: t => Replace(t, "layers.1.self_attn.v_proj.lora_A", t => t with { Shape = [8, 255], Values = new float[8 * 255] })),
            "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight", "[r, 256]", "[8, 255]");
    }

    [Fact]
    public void LoraBWithTheWrongOutputWidth()
    {
        Fails(LoraErrorKind.ShapeMismatch, () => LoadPeft(tensors: t => Replace(t, "layers.0.self_attn.q_proj.lora_B", t => t with { Shape = [128, 8], Values = new float[128 * 8] })),
            "q_proj.lora_B.weight", "[256, 8]", "[128, 8]");
    }

    [Fact]
    public void LoraBWithAnotherRankThanLoraA()
    {
        Fails(LoraErrorKind.ShapeMismatch, () => LoadPeft(tensors: t => Replace(t, "layers.0.self_attn.v_proj.lora_B", t => t with { Shape = [128, 4], Values = new float[128 * 4] })),
            "v_proj.lora_B.weight", "[128, 8]", "[128, 4]");
    }

    [Fact]
    public void RankDisagreeingWithTheConfig()
    {
        Fails(LoraErrorKind.ShapeMismatch, () => LoadPeft(config: c => c["rank_pattern"] = new JsonObject { ["q_proj"] = 4 }),
            "q_proj.lora_A.weight", "rank 4", "[8, 256]");
    }

    [Fact]
    public void GgufLoraAStoredUntransposed()
    {
        // llama.cpp's "lora_a tensor is not transposed" case: lora_a written as ggml [r, in] instead of [in, r].
        string path = WriteGguf(TestAdapter.AdapterMetadata(16),
            [("blk.0.attn_q.weight.lora_a", GgmlType.F32, [8, 256], new float[2048]), ("blk.0.attn_q.weight.lora_b", GgmlType.F32, [8, 256], new float[2048])]);
        Fails(LoraErrorKind.ShapeMismatch, () => LoraAdapter.LoadGguf(path, _model), "blk.0.attn_q.weight.lora_a", "[r, 256]", "[256, 8]");
    }

    // ---- tensor names and pairs ----

    [Fact]
    public void UnknownTensorNames()
    {
        Fails(LoraErrorKind.UnknownTensor, () => LoadPeft(tensors: t => t.Add(new("base_model.model.lm_head.lora_A.weight", SafeTensorDtype.F32, [8, 256], new float[2048]))),
            "base_model.model.lm_head.lora_A.weight", "unknown name");
        Fails(LoraErrorKind.UnknownTensor, () => LoadPeft(tensors: t => t.Add(new("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", SafeTensorDtype.F32, [256], new float[256]))),
            "lora_magnitude_vector");
        string gguf = WriteGguf(TestAdapter.AdapterMetadata(16), [("blk.0.attn_q.weight.lora_c", GgmlType.F32, [256, 8], new float[2048])]);
        Fails(LoraErrorKind.UnknownTensor, () => LoraAdapter.LoadGguf(gguf, _model), "blk.0.attn_q.weight.lora_c");
    }

    [Fact]
    public void LoraAWithoutLoraB()
    {
        Fails(LoraErrorKind.MissingTensor, () => LoadPeft(tensors: t => t.RemoveAll(x => x.Name.Contains("layers.1.self_attn.q_proj.lora_B", StringComparison.Ordinal))),
            "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight", "a partner for base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight");
        string gguf = WriteGguf(TestAdapter.AdapterMetadata(16), [("blk.0.attn_q.weight.lora_a", GgmlType.F32, [256, 8], new float[2048])]);
        Fails(LoraErrorKind.MissingTensor, () => LoraAdapter.LoadGguf(gguf, _model), "blk.0.attn_q.weight.lora_b");
    }

    [Fact]
    public void TargetedModuleWithoutTensors()
    {
        Fails(LoraErrorKind.MissingTensor, () => LoadPeft(tensors: t => t.RemoveAll(x => x.Name.Contains("layers.1.self_attn.v_proj", StringComparison.Ordinal))),
            "layers.1.self_attn.v_proj.lora_A.weight", "every module adapter_config.json targets");
    }

    // ---- dtypes ----

    [Theory]
    [InlineData(SafeTensorDtype.F64)]
    [InlineData(SafeTensorDtype.I32)]
    [InlineData(SafeTensorDtype.F8_E4M3)]
    public void UnsupportedSafeTensorDtypes(SafeTensorDtype dtype)
    {
        Fails(LoraErrorKind.UnsupportedDtype, () => LoadPeft(tensors: t => Replace(t, "layers.0.self_attn.q_proj.lora_A", t => t with { Dtype = dtype })),
            "q_proj.lora_A.weight", "F32, F16 or BF16", dtype.ToString());
    }

    [Fact]
    public void UnsupportedGgufType()
    {
        string path = WriteGguf(TestAdapter.AdapterMetadata(16), [("blk.0.attn_q.weight.lora_a", GgmlType.Q4_0, [256, 8], new float[2048])]);
        Fails(LoraErrorKind.UnsupportedDtype, () => LoraAdapter.LoadGguf(path, _model), "blk.0.attn_q.weight.lora_a", "Q4_0");
    }

    // ---- sizes ----

    [Fact]
    public void WeightsFileOverTheSizeLimit()
    {
        string dir = WritePeft();
        long size = new FileInfo(Path.Combine(dir, "adapter_model.safetensors")).Length;
        Fails(LoraErrorKind.FileTooLarge, () => LoraAdapter.Load(dir, _model, new LoraLimits(MaxFileBytes: 10_000)), "adapter_model.safetensors", "at most 10000 bytes", $"{size} bytes");
        string gguf = Adapter().WriteGguf(_dir.File("big.gguf"));
        Fails(LoraErrorKind.FileTooLarge, () => LoraAdapter.Load(gguf, _model, new LoraLimits(MaxFileBytes: 10_000)), "big.gguf", "at most 10000 bytes");
    }

    [Fact]
    public void ConfigOverTheSizeLimit()
    {
        string dir = WritePeft();
        File.AppendAllText(Path.Combine(dir, "adapter_config.json"), new string(' ', 1 << 20));
        Fails(LoraErrorKind.FileTooLarge, () => LoraAdapter.Load(dir, _model), "adapter_config.json", "size");
    }

    // ---- malformed files ----

    [Fact]
    public void MalformedSafeTensorsHeaders()
    {
        string dir = WritePeft();
        string weights = Path.Combine(dir, "adapter_model.safetensors");
        byte[] bytes = File.ReadAllBytes(weights);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)bytes.Length);
        File.WriteAllBytes(weights, bytes);
        Fails(LoraErrorKind.MalformedFile, () => LoraAdapter.Load(dir, _model), "adapter_model.safetensors", "header length");

        // Two tensors claiming the same bytes: the reader's overlap check.
        string a = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", b = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
        byte[] header = Encoding.UTF8.GetBytes($"{{\"{a}\":{{\"dtype\":\"F32\",\"shape\":[8,256],\"data_offsets\":[0,8192]}},\"{b}\":{{\"dtype\":\"F32\",\"shape\":[256,8],\"data_offsets\":[0,8192]}}}}");
        var file = new byte[8 + header.Length + 8192];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        File.WriteAllBytes(weights, file);
        Fails(LoraErrorKind.MalformedFile, () => LoraAdapter.Load(dir, _model), "adapter_model.safetensors", "overlap");

        File.WriteAllBytes(weights, [1, 2, 3]);
        Fails(LoraErrorKind.MalformedFile, () => LoraAdapter.Load(dir, _model), "adapter_model.safetensors", "8-byte");
    }

    [Fact]
    public void MalformedConfigs()
    {
        string dir = WritePeft();
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), "{\"r\": 8,");
        Fails(LoraErrorKind.MalformedFile, () => LoraAdapter.Load(dir, _model), "adapter_config.json", "well-formed JSON");
        Fails(LoraErrorKind.MalformedFile, () => LoadPeft(config: c => c["r"] = "eight"), "adapter_config.json", "r:", "an integer", "\"eight\"");
        Fails(LoraErrorKind.MalformedFile, () => LoadPeft(config: c => c["use_rslora"] = 1), "use_rslora", "true or false");
        Fails(LoraErrorKind.MalformedFile, () => LoadPeft(config: c => c["target_modules"] = "(q_proj"), "target_modules", "regular expression");
        Fails(LoraErrorKind.MalformedFile, () => LoadPeft(config: c => c["layers_to_transform"] = "all"), "layers_to_transform", "a layer index");
    }

    [Fact]
    public void MalformedOrForeignGgufFiles()
    {
        string garbage = _dir.File("garbage.gguf");
        File.WriteAllBytes(garbage, Encoding.ASCII.GetBytes("GGUF\x03\x00\x00\x00 truncated"));
        Fails(LoraErrorKind.MalformedFile, () => LoraAdapter.Load(garbage, _model), "garbage.gguf");
        string model = WriteGguf(TestAdapter.AdapterMetadata(16, type: "model"));
        Fails(LoraErrorKind.MalformedFile, () => LoraAdapter.LoadGguf(model, _model), "general.type", "\"adapter\"", "\"model\"");
    }

    // ---- values ----

    [Fact]
    public void NonFiniteValues()
    {
        Fails(LoraErrorKind.NonFiniteValue, () => LoadPeft(tensors: t => Replace(t, "layers.0.self_attn.v_proj.lora_A", t => t with { Values = Poke(t.Values, 17, float.NaN) })),
            "v_proj.lora_A.weight", "finite", "NaN at element 17");
        Fails(LoraErrorKind.NonFiniteValue, () => LoadPeft(tensors: t => Replace(t, "layers.1.self_attn.q_proj.lora_B", t => t with { Values = Poke(t.Values, 5, float.PositiveInfinity) })),
            "q_proj.lora_B.weight", "at element 5");
        // 1e6 overflows f16 to infinity: the file holds an infinity.
        Fails(LoraErrorKind.NonFiniteValue, () => LoadPeft(tensors: t => Replace(t, "layers.0.self_attn.q_proj.lora_A", t => t with { Dtype = SafeTensorDtype.F16, Values = Poke(t.Values, 3, 1e6f) })),
            "q_proj.lora_A.weight", "Infinity at element 3");
        string gguf = WriteGguf(TestAdapter.AdapterMetadata(float.NaN));
        Fails(LoraErrorKind.NonFiniteValue, () => LoraAdapter.LoadGguf(gguf, _model), "adapter.lora.alpha");
    }

    // ---- unsupported features ----

    [Fact]
    public void UnsupportedPeftFeatures()
    {
        Fails(LoraErrorKind.Unsupported, () => LoadPeft(config: c => c["use_dora"] = true), "use_dora", "DoRA");
        Fails(LoraErrorKind.Unsupported, () => LoadPeft(config: c => c["bias"] = "all"), "bias", "\"none\"", "\"all\"");
        Fails(LoraErrorKind.Unsupported, () => LoadPeft(config: c => c["modules_to_save"] = new JsonArray("lm_head")), "modules_to_save", "lm_head");
        Fails(LoraErrorKind.Unsupported, () => LoadPeft(config: c => c["peft_type"] = "IA3"), "peft_type", "\"IA3\"");
        Fails(LoraErrorKind.Unsupported, () => LoadPeft(config: c => c["layers_pattern"] = "h"), "layers_pattern", "\"h\"");
    }

    [Fact]
    public void UnsupportedGgufFeatures()
    {
        string cvec = WriteGguf(TestAdapter.AdapterMetadata(16, adapterType: "cvec"));
        Fails(LoraErrorKind.Unsupported, () => LoraAdapter.LoadGguf(cvec, _model), "adapter.type", "\"lora\"", "\"cvec\"");
        string norm = WriteGguf(TestAdapter.AdapterMetadata(16), [("blk.0.attn_norm.weight", GgmlType.F32, [256], new float[256])]);
        Fails(LoraErrorKind.Unsupported, () => LoraAdapter.LoadGguf(norm, _model), "norm");
    }

    // ---- helpers ----

    private TestAdapter Adapter() => TestAdapter.Random(_model.Config, s_qv, seed: 1);

    private string NewDir() => _dir.File($"adapter-{_count++}");

    private string WritePeft(TestAdapter? adapter = null, Action<JsonObject>? config = null, Action<List<RawTensor>>? tensors = null)
    {
        adapter ??= Adapter();
        config?.Invoke(adapter.Config);
        List<RawTensor> list = adapter.PeftTensors();
        tensors?.Invoke(list);
        return TestAdapter.WritePeft(NewDir(), adapter.Config, list);
    }

    private LoraAdapter LoadPeft(Action<JsonObject>? config = null, Action<List<RawTensor>>? tensors = null) =>
        Load(WritePeft(null, config, tensors));

    private LoraAdapter Load(string dir) => LoraAdapter.Load(dir, _model);

    private string WriteGguf(List<(string Key, GgufValue Value)> metadata, (string Name, GgmlType Type, long[] Dimensions, float[] Values)[]? tensors = null)
    {
        string path = _dir.File($"adapter-{_count++}.gguf");
        TestAdapter.WriteGguf(path, metadata, tensors ?? []);
        return path;
    }

    private static void Replace(List<RawTensor> tensors, string fragment, Func<RawTensor, RawTensor> change)
    {
        int index = tensors.FindIndex(t => t.Name.Contains(fragment, StringComparison.Ordinal));
        Assert.True(index >= 0, fragment);
        tensors[index] = change(tensors[index]);
    }

    private static float[] Poke(float[] values, int index, float value)
    {
        float[] copy = (float[])values.Clone();
        copy[index] = value;
        return copy;
    }

    /// <summary>Loading throws exactly a LoraFormatException of <paramref name="kind"/> whose message contains each
    /// of <paramref name="mentions"/>.</summary>
    internal static LoraFormatException Fails(LoraErrorKind kind, Func<object> load, params string[] mentions)
    {
        var e = Assert.Throws<LoraFormatException>(() => load());
        Assert.True(e.Kind == kind, $"expected {kind}, got {e.Kind}: {e.Message}");
        foreach (string mention in mentions)
        {
            Assert.True(e.Message.Contains(mention, StringComparison.Ordinal), $"\"{e.Message}\" does not mention \"{mention}\"");
        }
        return e;
    }
}
