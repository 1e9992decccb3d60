// The unmerged adapter is the merged model: logits of base + LoraAdapter (y = W·x + s·B·(A·x)) equal the logits of a
// tiny F32 model whose weights were merged (W + s·B·A) in double, for PEFT and GGUF adapters on Hugging Face and GGUF
// bases (q/k rows permuted either way), plain and rsLoRA scaling, rank/alpha patterns, attention-only and all
// projections. Also: the same adapter on both layouts, several adapters in one batch, and a base left untouched.

using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;
using Sirocco.Engine.Tests.Model;

namespace Sirocco.Engine.Tests.Lora;

public sealed class LoraEquivalenceTests : IDisposable
{
    /// <summary>Unmerged against merged, relative to the largest logit. Both are f32 forward passes over the same
    /// numbers up to rounding: W' is W + s·B·A rounded once to f32, the adapter adds s·B·(A·x) after W·x; the
    /// difference is a few float roundings per product, amplified through two layers. Measured ≈ 4e-7; a wrong q/k
    /// order or scale moves logits by more than 1e-2.</summary>
    private const double MergedTolerance = 2e-5;

    /// <summary>An adapter must move the logits by at least this (relative), or the comparison above proves nothing.</summary>
    private const double MinimumEffect = 1e-2;

    internal static readonly int[] Prompt = [1, 415, 2936, 9060, 285, 1142, 28705, 28770, 28723, 13, 2, 28740, 28750];

    private static readonly LlamaTensorRole[] s_attention = [LlamaTensorRole.Query, LlamaTensorRole.Key, LlamaTensorRole.Value, LlamaTensorRole.AttentionOutput];
    private static readonly LlamaTensorRole[] s_all = [.. LoraModules.All.Select(m => m.Role)];

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public enum Case
    {
        AttentionPlain,
        AllRsLora,
        AllPatterns,
        AttentionLayerOne,
    }

    [Theory]
    [InlineData("hf", Case.AttentionPlain)]
    [InlineData("gguf", Case.AttentionPlain)]
    [InlineData("hf", Case.AllRsLora)]
    [InlineData("gguf", Case.AllRsLora)]
    [InlineData("gguf", Case.AllPatterns)]
    [InlineData("hf", Case.AttentionLayerOne)]
    public void PeftAdapter_Unmerged_EqualsMergedModel(string layout, Case which)
    {
        string basePath = BasePath(layout);
        TestAdapter adapter = Make(which);
        string adapterDir = adapter.WritePeft(_dir.File($"peft-{layout}-{which}"));
        AssertUnmergedEqualsMerged(basePath, adapter, adapterDir, $"{layout}-{which}");
    }

    [Theory]
    [InlineData("gguf")]
    [InlineData("hf")]
    public void GgufAdapter_Unmerged_EqualsMergedModel(string layout)
    {
        string basePath = BasePath(layout);
        TestAdapter adapter = TestAdapter.Random(TinyModels.Config, s_all, seed: 31, rank: 4, alpha: 8);
        string adapterPath = adapter.WriteGguf(_dir.File($"adapter-{layout}.gguf"));
        AssertUnmergedEqualsMerged(basePath, adapter, adapterPath, $"gguf adapter on {layout}");
    }

    /// <summary>The q/k row order test: a PEFT adapter (HF row order) gives the same logits on the GGUF-layout model
    /// (where its q/k rows are permuted at load) as on the HF-layout model (where they are not).</summary>
    [Fact]
    public void PeftAdapter_OnGgufLayout_EqualsOnHuggingFaceLayout()
    {
        TestAdapter adapter = TestAdapter.Random(TinyModels.Config, s_all, seed: 5);
        string dir = adapter.WritePeft(_dir.File("both-layouts"));
        var (gguf, poolG) = TinyModels.Load(TinyModels.Gguf(ModelFileType.F32));
        var (hf, poolH) = TinyModels.Load(TinyModels.HuggingFace(SafeTensorDtype.F32));
        using (gguf)
        using (poolG)
        using (hf)
        using (poolH)
        {
            LoraAdapter onGguf = LoraAdapter.Load(dir, gguf.Weights), onHf = LoraAdapter.Load(dir, hf.Weights);
            float[][] a = Logits(gguf, poolG, Prompt, onGguf), b = Logits(hf, poolH, Prompt, onHf);
            for (int i = 0; i < Prompt.Length; i++)
            {
                LlamaModelTests.AssertClose(a[i], b[i], 1e-5, $"position {i}");
            }
            // Without the permutation the GGUF model's q/k deltas would land on the wrong dimensions.
            Assert.True(MaxRelativeDifference(a[^1], Logits(gguf, poolG, Prompt, null)[^1]) > MinimumEffect);
        }
    }

    /// <summary>Sequences with different adapters (and one without) share one Forward call; each row equals the
    /// sequence run alone, for a prefill batch and a following decode step.</summary>
    [Fact]
    public void DifferentAdaptersInOneBatch_EqualEachSequenceAlone()
    {
        var (model, pool) = TinyModels.Load(TinyModels.Gguf(ModelFileType.F32));
        using (model)
        using (pool)
        {
            LoraAdapter x = LoraAdapter.Load(TestAdapter.Random(model.Config, s_attention, seed: 1).WritePeft(_dir.File("x")), model.Weights);
            LoraAdapter y = LoraAdapter.Load(TestAdapter.Random(model.Config, s_all, seed: 2, useRsLora: true).WritePeft(_dir.File("y")), model.Weights);
            int[] a = Prompt[..9], b = Prompt[2..], c = Prompt[4..11];
            float[][] aloneA = Logits(model, pool, [.. a, 851], x), aloneB = Logits(model, pool, [.. b, 349], y), aloneC = Logits(model, pool, [.. c, 22557], null);

            using KvSequence sa = pool.CreateSequence(), sb = pool.CreateSequence(), sc = pool.CreateSequence();
            model.Forward([new SequenceInput(sa, a, Adapter: x), new SequenceInput(sb, b, Adapter: y), new SequenceInput(sc, c)]);
            LlamaModelTests.AssertClose(aloneA[a.Length - 1], model.Logits(0), 1e-5, "adapter x, prefill");
            LlamaModelTests.AssertClose(aloneB[b.Length - 1], model.Logits(1), 1e-5, "adapter y, prefill");
            LlamaModelTests.AssertClose(aloneC[c.Length - 1], model.Logits(2), 1e-5, "no adapter, prefill");
            model.Forward([new SequenceInput(sc, new[] { 22557 }), new SequenceInput(sb, new[] { 349 }, Adapter: y), new SequenceInput(sa, new[] { 851 }, Adapter: x)]);
            LlamaModelTests.AssertClose(aloneC[^1], model.Logits(0), 1e-5, "no adapter, decode");
            LlamaModelTests.AssertClose(aloneB[^1], model.Logits(1), 1e-5, "adapter y, decode");
            LlamaModelTests.AssertClose(aloneA[^1], model.Logits(2), 1e-5, "adapter x, decode");
            Assert.True(MaxRelativeDifference(aloneA[^1], aloneB[^1]) > MinimumEffect);
        }
    }

    /// <summary>Loading and using an adapter leaves the base model as it was (nothing is merged into the mapped
    /// weights), and an adapter whose B is zero (PEFT's initial state) changes nothing at all.</summary>
    [Fact]
    public void BaseModel_IsUnchanged_AndZeroAdapterIsIdentity()
    {
        var (model, pool) = TinyModels.Load(TinyModels.HuggingFace(SafeTensorDtype.F32));
        using (model)
        using (pool)
        {
            float[][] before = Logits(model, pool, Prompt, null);
            TestAdapter random = TestAdapter.Random(model.Config, s_all, seed: 9);
            LoraAdapter adapter = LoraAdapter.Load(random.WritePeft(_dir.File("some")), model.Weights);
            Assert.True(MaxRelativeDifference(before[^1], Logits(model, pool, Prompt, adapter)[^1]) > MinimumEffect);
            float[][] after = Logits(model, pool, Prompt, null);
            for (int i = 0; i < Prompt.Length; i++)
            {
                Assert.Equal(before[i], after[i]);
            }

            foreach (TestModule m in random.Modules)
            {
                Array.Clear(m.B);
            }
            LoraAdapter zero = LoraAdapter.Load(random.WritePeft(_dir.File("zero")), model.Weights);
            float[][] withZero = Logits(model, pool, Prompt, zero);
            for (int i = 0; i < Prompt.Length; i++)
            {
                Assert.Equal(before[i], withZero[i]);
            }
        }
    }

    private TestAdapter Make(Case which) => which switch
    {
        Case.AttentionPlain => TestAdapter.Random(TinyModels.Config, s_attention, seed: 11),
        Case.AllRsLora => TestAdapter.Random(TinyModels.Config, s_all, seed: 12, rank: 6, alpha: 12, useRsLora: true),
        // rank_pattern and alpha_pattern keys are PEFT patterns matched against the end of the module path: a bare
        // name, a longer suffix, or a regular expression.
        Case.AllPatterns => TestAdapter.Random(TinyModels.Config, s_all, seed: 13, rank: 8, alpha: 16,
            rankPattern: new() { ["k_proj"] = 4, ["layers.1.mlp.down_proj"] = 2 },
            alphaPattern: new() { ["v_proj"] = 32, [@"layers\.0\.self_attn\.(q|o)_proj"] = 4 },
            resolve: (layer, m) => (
                m.PeftName == "k_proj" ? 4 : layer == 1 && m.PeftName == "down_proj" ? 2 : 8,
                m.PeftName == "v_proj" ? 32 : layer == 0 && m.PeftName is "q_proj" or "o_proj" ? 4 : 16)),
        _ => TestAdapter.Random(TinyModels.Config, s_attention, seed: 14, layers: [1]),
    };

    private void AssertUnmergedEqualsMerged(string basePath, TestAdapter adapter, string adapterPath, string what)
    {
        string mergedPath = MergedModels.Write(basePath, adapter, _dir.File("merged-" + Guid.NewGuid().ToString("N")[..8] + (Directory.Exists(basePath) ? "" : ".gguf")));
        var (model, pool) = TinyModels.Load(basePath);
        var (merged, poolM) = TinyModels.Load(mergedPath);
        using (model)
        using (pool)
        using (merged)
        using (poolM)
        {
            LoraAdapter lora = LoraAdapter.Load(adapterPath, model.Weights);
            Assert.Equal(adapter.Modules.Count, lora.ModuleCount);
            foreach (TestModule m in adapter.Modules)
            {
                Assert.Equal((float)m.Scale, lora.Find(m.Layer, m.Module.Role)!.Scale, 6);
                Assert.Equal(m.Rank, lora.Find(m.Layer, m.Module.Role)!.Rank);
            }
            float[][] unmerged = Logits(model, pool, Prompt, lora), expected = Logits(merged, poolM, Prompt, null), plain = Logits(model, pool, Prompt, null);
            for (int i = 0; i < Prompt.Length; i++)
            {
                LlamaModelTests.AssertClose(expected[i], unmerged[i], MergedTolerance, $"{what}: position {i}");
            }
            Assert.True(MaxRelativeDifference(plain[^1], unmerged[^1]) > MinimumEffect, $"{what}: the adapter barely changes the logits");
        }
        if (Directory.Exists(mergedPath))
        {
            Directory.Delete(mergedPath, recursive: true);
        }
        else
        {
            File.Delete(mergedPath);
        }
    }

    private static string BasePath(string layout) =>
        layout == "hf" ? TinyModels.HuggingFace(SafeTensorDtype.F32) : TinyModels.Gguf(ModelFileType.F32);

    /// <summary>Logits of every position of <paramref name="tokens"/> run as one fresh sequence with <paramref name="adapter"/>.</summary>
    internal static float[][] Logits(LlamaModel model, KvCachePool pool, int[] tokens, IProjectionAdapter? adapter)
    {
        using KvSequence sequence = pool.CreateSequence();
        model.Forward([new SequenceInput(sequence, tokens, LogitsWanted.All, adapter)]);
        return [.. Enumerable.Range(0, tokens.Length).Select(i => model.Logits(i).ToArray())];
    }

    internal static double MaxRelativeDifference(float[] a, float[] b)
    {
        double scale = a.Max(v => Math.Abs(v)), worst = 0;
        for (int i = 0; i < a.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
        }
        return worst / scale;
    }
}
