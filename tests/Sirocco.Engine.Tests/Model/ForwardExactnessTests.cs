using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Model;

namespace Sirocco.Engine.Tests.Model;

/// <summary>The engine's forward pass against the plain float64 reference (ReferenceForward), and quantized models
/// against the F32 model within the bounds documented in docs/QUANTIZATION.md.</summary>
public class ForwardExactnessTests
{
    private static readonly int[] Prompt = [1, 733, 16289, 28793, 1824, 349, 272, 5565, 302, 4843, 28804, 733, 28748, 16289, 28793];

    [Theory]
    [InlineData("gguf")]
    [InlineData("hf")]
    public void F32Model_MatchesFloat64Reference(string layout)
    {
        string path = layout == "gguf" ? TinyModels.Gguf(ModelFileType.F32) : TinyModels.HuggingFace(SafeTensorDtype.F32);
        double[][] expected = ReferenceForward.Load(path).Logits(Prompt);
        var (model, pool) = TinyModels.Load(path);
        using (model)
        using (pool)
        {
            float[][] actual = LlamaModelTests.AllLogits(model, pool, Prompt);
            for (int i = 0; i < Prompt.Length; i++)
            {
                AssertRelative(expected[i], actual[i], 1e-4, $"{layout} position {i}");
            }
        }
    }

    [Fact]
    public void F16AndBF16Models_MatchTheReferenceOfTheSameFile()
    {
        foreach (string path in new[]
        {
            TinyModels.Gguf(ModelFileType.F16), TinyModels.Gguf(ModelFileType.BF16),
            TinyModels.HuggingFace(SafeTensorDtype.F16), TinyModels.HuggingFace(SafeTensorDtype.BF16),
        })
        {
            double[][] expected = ReferenceForward.Load(path).Logits(Prompt);
            var (model, pool) = TinyModels.Load(path);
            using (model)
            using (pool)
            {
                float[][] actual = LlamaModelTests.AllLogits(model, pool, Prompt);
                AssertRelative(expected[^1], actual[^1], 1e-4, path);
            }
        }
    }

    /// <summary>Quantized files run through the fused integer kernels (activations quantized to 8 bits per matmul)
    /// agree with the float64 reference of the same file (its weights dequantized, activations exact) within the
    /// activation quantization error, and with the F32 model within the bounds for each type. Bounds are documented in
    /// docs/QUANTIZATION.md with the measured values (about 70 % of each bound). Random synthetic weights give nearly
    /// tied logits (the top two often differ by a few percent), so top-1 agreement is a harsher test here than on a
    /// trained model.</summary>
    [Theory]
    [InlineData(ModelFileType.Q8_0, 0.03, 0.03, 1.0)]
    [InlineData(ModelFileType.Q6_K, 0.03, 0.08, 0.7)]
    [InlineData(ModelFileType.Q5_K_M, 0.03, 0.12, 0.6)]
    [InlineData(ModelFileType.Q4_K_M, 0.03, 0.25, 0.6)]
    [InlineData(ModelFileType.Q4_0, 0.03, 0.32, 0.6)]
    public void QuantizedModel_StaysWithinDocumentedBounds(ModelFileType type, double fusedVsDequantized, double vsF32, double top1Agreement)
    {
        string path = TinyModels.Gguf(type);
        double[][] dequantized = ReferenceForward.Load(path).Logits(Prompt);
        double[][] f32 = ReferenceForward.Load(TinyModels.Gguf(ModelFileType.F32)).Logits(Prompt);
        var (model, pool) = TinyModels.Load(path);
        using (model)
        using (pool)
        {
            float[][] actual = LlamaModelTests.AllLogits(model, pool, Prompt);
            int agree = 0;
            double worstVsF32 = 0;
            for (int i = 0; i < Prompt.Length; i++)
            {
                AssertRelative(dequantized[i], actual[i], fusedVsDequantized, $"{type} fused vs dequantized, position {i}");
                worstVsF32 = Math.Max(worstVsF32, MaxRelative(f32[i], actual[i]));
                agree += ArgMax(f32[i]) == ArgMax(actual[i]) ? 1 : 0;
            }
            Assert.True(worstVsF32 <= vsF32, $"{type}: max logit error vs F32 {worstVsF32:G3} of max |logit| exceeds {vsF32}");
            Assert.True(agree >= top1Agreement * Prompt.Length, $"{type}: top-1 agrees with F32 at {agree} of {Prompt.Length} positions");
        }
    }

    /// <summary>Quantizing a float checkpoint at load stays within the bound of the GGUF file type of that weight type
    /// (the embedding stays in float, so it is a little closer). A full collection between load and use proves the
    /// converted buffers are owned by the weights (an early bug freed them: NaN logits).</summary>
    [Theory]
    [InlineData(Kernels.Quant.GgmlType.Q8_0, 0.03)]
    [InlineData(Kernels.Quant.GgmlType.Q4_K, 0.25)]
    public void QuantizeAtLoad_StaysWithinTheTypesBound(Kernels.Quant.GgmlType type, double bound)
    {
        using var hf = new LlamaModel(WeightLoader.Load(TinyModels.HuggingFace(SafeTensorDtype.F32), new WeightLoadOptions(type)), 2, 64);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Contains($"quantized at load to {type}", hf.Weights.Description);
        using KvCachePool pool = hf.CreateCache(new KvCacheOptions(16L << 20, 8, KvCacheType.F32));
        double[][] f32 = ReferenceForward.Load(TinyModels.Gguf(ModelFileType.F32)).Logits(Prompt);
        float[][] actual = LlamaModelTests.AllLogits(hf, pool, Prompt);
        for (int i = 0; i < Prompt.Length; i++)
        {
            AssertRelative(f32[i], actual[i], bound, $"{type} position {i}");
        }
    }

    private static int ArgMax(double[] x) => Enumerable.Range(0, x.Length).MaxBy(i => x[i]);

    private static int ArgMax(float[] x) => Enumerable.Range(0, x.Length).MaxBy(i => x[i]);

    private static double MaxRelative(double[] expected, float[] actual)
    {
        double scale = expected.Max(Math.Abs), worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        }
        return worst / scale;
    }

    /// <summary>max |expected − actual| ≤ tolerance · max |expected| over the row.</summary>
    private static void AssertRelative(double[] expected, float[] actual, double tolerance, string what)
    {
        double relative = MaxRelative(expected, actual);
        Assert.True(relative <= tolerance, $"{what}: max error {relative:G3} of max |logit| exceeds {tolerance}");
    }
}
