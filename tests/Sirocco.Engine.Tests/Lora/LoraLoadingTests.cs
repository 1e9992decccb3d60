// What loads and how: the accepted spellings of target_modules (list, bare name, all-linear, regular expression),
// layers_to_transform as an int, exclude_modules, fan_in_fan_out, PEFT defaults, F16/BF16/Q8_0 tensors, the ways of
// naming an adapter path, the reported rank, size and description, and that the PEFT and GGUF files the synthetic
// writer makes from one seed load to the same adapter.

using System.Text.Json.Nodes;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;
using Sirocco.Engine.Synthesis;
using Sirocco.Kernels.Quant;

namespace Sirocco.Engine.Tests.Lora;

public sealed class LoraLoadingTests(TinyWeightsFixture fixture) : IClassFixture<TinyWeightsFixture>, IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ModelWeights _model = fixture.Weights;
    private int _count;

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("[\"q_proj\", \"v_proj\"]", "q_proj,v_proj")]
    [InlineData("\"v_proj\"", "v_proj")]
    [InlineData("\"all-linear\"", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")]
    [InlineData("\".*\\\\.(q_proj|down_proj)\"", "q_proj,down_proj")]
    [InlineData("[\"self_attn.o_proj\", \"mlp.up_proj\"]", "o_proj,up_proj")]
    public void TargetModules_Spellings(string json, string modules)
    {
        LlamaTensorRole[] roles = [.. modules.Split(',').Select(name => LoraModules.FindPeft(name)!.Role)];
        TestAdapter adapter = TestAdapter.Random(_model.Config, roles, seed: 2);
        adapter.Config["target_modules"] = JsonNode.Parse(json);
        LoraAdapter lora = LoraAdapter.Load(adapter.WritePeft(NewDir()), _model);
        Assert.Equal(roles, lora.TargetRoles);
        Assert.Equal(roles.Length * _model.Config.LayerCount, lora.ModuleCount);
    }

    [Fact]
    public void LayersToTransform_AsAnInt_AndExcludeModules()
    {
        TestAdapter adapter = TestAdapter.Random(_model.Config, [LlamaTensorRole.Query, LlamaTensorRole.Value], seed: 2, layers: [1]);
        adapter.Config["layers_to_transform"] = 1;
        LoraAdapter lora = LoraAdapter.Load(adapter.WritePeft(NewDir()), _model);
        Assert.False(lora.Targets(0, LlamaTensorRole.Query));
        Assert.True(lora.Targets(1, LlamaTensorRole.Query));
        Assert.False(lora.Targets(1, LlamaTensorRole.Key));

        TestAdapter excluded = TestAdapter.Random(_model.Config, [LlamaTensorRole.Query, LlamaTensorRole.Value], seed: 2);
        excluded.Modules.RemoveAll(m => m.Layer == 0 && m.Module.PeftName == "v_proj");
        excluded.Config["exclude_modules"] = new JsonArray("layers.0.self_attn.v_proj");
        LoraAdapter partial = LoraAdapter.Load(excluded.WritePeft(NewDir()), _model);
        Assert.False(partial.Targets(0, LlamaTensorRole.Value));
        Assert.True(partial.Targets(1, LlamaTensorRole.Value));
    }

    /// <summary>PEFT stores lora_A [r, in] and lora_B [out, r] for nn.Linear whatever fan_in_fan_out says (it resets the
    /// flag for Linear layers), so the flag changes nothing.</summary>
    [Fact]
    public void FanInFanOut_ChangesNothingForLinearLayers()
    {
        TestAdapter adapter = TestAdapter.Random(_model.Config, [LlamaTensorRole.Query], seed: 6);
        LoraAdapter plain = LoraAdapter.Load(adapter.WritePeft(NewDir()), _model);
        adapter.Config["fan_in_fan_out"] = true;
        LoraAdapter flagged = LoraAdapter.Load(adapter.WritePeft(NewDir()), _model);
        Assert.True(plain.Find(1, LlamaTensorRole.Query)!.BTransposed.SequenceEqual(flagged.Find(1, LlamaTensorRole.Query)!.BTransposed));
    }

    [Fact]
    public void MissingRankAndAlpha_UsePeftDefaults()
    {
        TestAdapter adapter = TestAdapter.Random(_model.Config, [LlamaTensorRole.Value], seed: 6, rank: 8, alpha: 8);
        adapter.Config.Remove("r");
        adapter.Config.Remove("lora_alpha");
        adapter.Config.Remove("target_modules"); // PEFT's Mistral default: q_proj and v_proj
        adapter.Modules.AddRange(TestAdapter.Random(_model.Config, [LlamaTensorRole.Query], seed: 7, rank: 8, alpha: 8).Modules);
        LoraAdapter lora = LoraAdapter.Load(adapter.WritePeft(NewDir()), _model);
        Assert.Equal(1f, lora.Find(0, LlamaTensorRole.Value)!.Scale);
        Assert.Equal([LlamaTensorRole.Query, LlamaTensorRole.Value], lora.TargetRoles);
    }

    [Theory]
    [InlineData(SafeTensorDtype.F16)]
    [InlineData(SafeTensorDtype.BF16)]
    public void HalfPrecisionTensors_AreWidenedToF32(SafeTensorDtype dtype)
    {
        TestAdapter adapter = TestAdapter.Random(_model.Config, [LlamaTensorRole.Down], seed: 8);
        LoraAdapter lora = LoraAdapter.Load(adapter.WritePeft(NewDir(), dtype), _model);
        TestModule m = adapter.Modules[0];
        var rounded = new byte[m.A.Length * 2];
        FloatConversion.FromSingle(m.A, dtype, rounded);
        var expected = new float[m.A.Length];
        FloatConversion.ToSingle(rounded, dtype, expected);
        Assert.True(lora.Find(0, LlamaTensorRole.Down)!.A.SequenceEqual(expected));
    }

    [Fact]
    public void GgufQ8_0Tensors_Load()
    {
        TestAdapter adapter = TestAdapter.Random(_model.Config, [LlamaTensorRole.Query, LlamaTensorRole.Up], seed: 9);
        // lora_b rows are r = 8 long, less than a Q8_0 block, so only lora_a can be Q8_0 (as in llama.cpp's converter).
        string path = _dir.File("q8.gguf");
        TestAdapter.WriteGguf(path, TestAdapter.AdapterMetadata(16), adapter.Modules.SelectMany(m => new[]
        {
            (m.Module.GgufTensor(m.Layer, true), GgmlType.Q8_0, new long[] { m.A.Length / 8, 8 }, m.A),
            (m.Module.GgufTensor(m.Layer, false), GgmlType.F32, new long[] { 8, m.B.Length / 8 }, m.B),
        }));
        LoraAdapter lora = LoraAdapter.LoadGguf(path, _model);
        Assert.Equal(4, lora.ModuleCount);
        Assert.Equal(2f, lora.Find(1, LlamaTensorRole.Up)!.Scale);
    }

    [Fact]
    public void Load_AcceptsTheDirectoryEitherFileOrAGguf()
    {
        TestAdapter adapter = TestAdapter.Random(_model.Config, [LlamaTensorRole.Value], seed: 10);
        string dir = adapter.WritePeft(NewDir());
        Assert.Equal(2, LoraAdapter.Load(Path.Combine(dir, "adapter_config.json"), _model).ModuleCount);
        Assert.Equal(2, LoraAdapter.Load(Path.Combine(dir, "adapter_model.safetensors"), _model).ModuleCount);
        Assert.Equal(2, LoraAdapter.Load(adapter.WriteGguf(_dir.File("a.gguf")), _model).ModuleCount);
    }

    [Fact]
    public void RankSizeRolesAndDescription()
    {
        TestAdapter adapter = TestAdapter.Random(_model.Config, [LlamaTensorRole.Query, LlamaTensorRole.Key, LlamaTensorRole.Down], seed: 11, rank: 8, alpha: 16,
            rankPattern: new() { ["k_proj"] = 2 }, resolve: (_, m) => (m.PeftName == "k_proj" ? 2 : 8, 16));
        LoraAdapter lora = LoraAdapter.Load(adapter.WritePeft(NewDir()), _model);
        Assert.Equal(8, lora.Rank);
        Assert.Equal([LlamaTensorRole.Query, LlamaTensorRole.Key, LlamaTensorRole.Down], lora.TargetRoles);
        long floats = adapter.Modules.Sum(m => (long)m.A.Length + m.B.Length);
        Assert.InRange(lora.SizeBytes, floats * 4, floats * 4 + 4096);
        Assert.Equal(8f, lora.Find(0, LlamaTensorRole.Key)!.Scale); // α/r with r = 2 from rank_pattern
        Assert.Contains("PEFT LoRA r≤8", lora.Description);
        Assert.Contains("q_proj, k_proj, down_proj in 2 of 2 layers", lora.Description);
        Assert.False(lora.Targets(0, LlamaTensorRole.Value));
        Assert.False(lora.Targets(2, LlamaTensorRole.Query));
        Assert.False(lora.Targets(0, LlamaTensorRole.OutputNorm));
        Assert.Throws<ArgumentException>(() => lora.AddDelta(0, LlamaTensorRole.Value, new float[256], new float[128]));
    }

    /// <summary>The synthetic writer's PEFT and GGUF files of one seed are one adapter: on a GGUF base both load to
    /// the same f32 factors (F16 rounding is the same in both), q/k rows included, rsLoRA included.</summary>
    [Fact]
    public void SyntheticPeftAndGguf_OfOneSeed_AreTheSameAdapter()
    {
        var options = new SyntheticLoraOptions { Rank = 4, Alpha = 8, UseRsLora = true, Targets = SyntheticLoraWriter.ParseTargets("all"), Seed = 42 };
        string dir = NewDir(), gguf = _dir.File("synthetic.gguf");
        SyntheticLoraWriter.WritePeft(dir, _model.Config, options);
        SyntheticLoraWriter.WriteGguf(gguf, _model.Config, options);
        LoraAdapter peft = LoraAdapter.Load(dir, _model), fromGguf = LoraAdapter.Load(gguf, _model);
        Assert.Equal(14, peft.ModuleCount);
        for (int layer = 0; layer < 2; layer++)
        {
            foreach (LoraModule module in LoraModules.All)
            {
                LoraProjection a = peft.Find(layer, module.Role)!, b = fromGguf.Find(layer, module.Role)!;
                Assert.True(a.A.SequenceEqual(b.A), $"{module.PeftName} A");
                Assert.True(a.BTransposed.SequenceEqual(b.BTransposed), $"{module.PeftName} B");
                Assert.Equal(a.Scale, b.Scale, 5);
                Assert.Equal(4f, a.Scale); // 8/√4
            }
        }
        Assert.Equal(["q", "k", "v", "o"], ParseNames("q,k,v,o"));
        Assert.Equal(["q", "v"], ParseNames("v_proj, q"));
        Assert.Throws<ArgumentException>(() => SyntheticLoraWriter.ParseTargets("lm_head"));
    }

    private static string[] ParseNames(string text) =>
        [.. SyntheticLoraWriter.ParseTargets(text).Select(r => LoraModules.Of(r).PeftName[..1])];

    private string NewDir() => _dir.File($"adapter-{_count++}");
}
