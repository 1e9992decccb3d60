// Checks the float64 reference forward pass against itself: the GGUF and Hugging Face copies of one synthetic model
// agree (which validates both RoPE pairings and llama.cpp's q/k row permutation), attention is causal, the output is
// sane, and a Q8_0 copy stays close to F32.

using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Model;
using Sirocco.Engine.Synthesis;
using Xunit.Abstractions;

namespace Sirocco.Engine.Tests.Model;

/// <summary>One tiny synthetic model (seed 11) written as GGUF F32, GGUF Q8_0 and a Hugging Face F32 directory, each
/// loaded once on first use and shared by the tests of <see cref="ReferenceForwardTests"/>.</summary>
public sealed class TinyReferenceModels : IDisposable
{
    public const ulong Seed = 11;

    private readonly TempDir _dir = new();
    private readonly Lazy<ReferenceForward> _ggufF32;
    private readonly Lazy<ReferenceForward> _ggufQ8_0;
    private readonly Lazy<ReferenceForward> _hfF32;

    public TinyReferenceModels()
    {
        _ggufF32 = new(() => Gguf(ModelFileType.F32));
        _ggufQ8_0 = new(() => Gguf(ModelFileType.Q8_0));
        _hfF32 = new(() =>
        {
            string directory = _dir.File("hf-f32");
            SyntheticModelWriter.WriteHuggingFace(directory, Config, SafeTensorDtype.F32, SyntheticTokenizers.Mistral(), Seed);
            return ReferenceForward.Load(directory);
        });
    }

    /// <summary>The Tiny preset (256 wide, 2 layers, 4 query heads over 2 KV heads, the real 32000-piece vocabulary).</summary>
    public static ModelConfig Config => SyntheticPresets.Tiny;

    public ReferenceForward GgufF32 => _ggufF32.Value;

    public ReferenceForward GgufQ8_0 => _ggufQ8_0.Value;

    public ReferenceForward HfF32 => _hfF32.Value;

    private ReferenceForward Gguf(ModelFileType type)
    {
        string path = _dir.File($"tiny-{type}.gguf");
        SyntheticModelWriter.WriteGguf(path, Config, type, SyntheticTokenizers.Mistral(), Seed);
        return ReferenceForward.Load(path);
    }

    public void Dispose() => _dir.Dispose();
}

public class ReferenceForwardTests(TinyReferenceModels models, ITestOutputHelper output) : IClassFixture<TinyReferenceModels>
{
    /// <summary>Twelve ids spread over the vocabulary, BOS first, one repeated (so two positions share a token).</summary>
    private static readonly int[] s_tokens = [1, 22557, 1526, 28705, 4, 31999, 1000, 22557, 7, 15000, 2, 300];

    /// <summary>GGUF and HF hold bit-identical F32 weights, only q/k rows permuted; the two passes differ only in the
    /// order of float64 sums (q·k over a head), so they agree to about 1e-15 of the logit scale. 1e-9 leaves room
    /// without hiding a wrong pairing, which changes logits at the 1e-1 scale.</summary>
    private const double LayoutTolerance = 1e-9;

    /// <summary>Q8_0 keeps each weight within half a step of 1/127 of its block's largest magnitude (≈0.4 % relative
    /// RMS); through two layers and the output head the largest logit error is about 1.3 % of the largest logit
    /// (0.062 of 4.8 at seed 11). 5 % leaves room for other seeds and still catches a broken dequantizer or a mixed-up
    /// tensor, which move logits by their whole scale.</summary>
    private const double Q8_0Tolerance = 0.05;

    [Fact]
    public void GgufAndHuggingFaceCopies_GiveTheSameLogits()
    {
        double[][] gguf = models.GgufF32.Logits(s_tokens);
        double[][] hf = models.HfF32.Logits(s_tokens);

        Assert.Equal(RopePairing.Adjacent, models.GgufF32.Pairing);
        Assert.Equal(RopePairing.HalfSplit, models.HfF32.Pairing);
        Assert.Equal(TinyReferenceModels.Config, models.GgufF32.Config);
        Assert.Equal(TinyReferenceModels.Config, models.HfF32.Config);
        double scale = MaxAbs(gguf);
        double relative = MaxAbsDifference(gguf, hf) / scale;
        output.WriteLine($"GGUF F32 vs HF F32: max |Δ| / max |logit| = {relative:E2} (max |logit| {scale:F3})");
        Assert.True(relative < LayoutTolerance, $"relative difference {relative:E2}");
    }

    [Fact]
    public void LogitsOfAPrefix_AreTheFirstPositionsOfTheLongerSequence()
    {
        var model = models.GgufF32;
        double[][] full = model.Logits(s_tokens);
        double[][] prefix = model.Logits(s_tokens[..5]);
        Assert.Equal(s_tokens.Length, full.Length);
        Assert.Equal(5, prefix.Length);
        for (int t = 0; t < prefix.Length; t++)
        {
            // Same operations in the same order: causality means bit-identical, not merely close.
            Assert.Equal(prefix[t], full[t]);
        }
    }

    [Fact]
    public void Logits_AreFiniteAndVaryAcrossTokensAndPositions()
    {
        double[][] logits = models.HfF32.Logits(s_tokens);
        Assert.Equal(s_tokens.Length, logits.Length);
        foreach (double[] row in logits)
        {
            Assert.Equal(TinyReferenceModels.Config.VocabSize, row.Length);
            Assert.All(row, v => Assert.True(double.IsFinite(v)));
            double mean = row.Average();
            double std = Math.Sqrt(row.Average(v => (v - mean) * (v - mean)));
            // Unit-scale weights and unit-RMS activations give logits of unit-scale spread; a dead pass gives ~0.
            Assert.True(std > 0.1, $"logit standard deviation {std}");
        }
        // Positions 1 and 7 hold the same token; attention to different contexts must make their logits differ.
        Assert.NotEqual(logits[1], logits[7]);
    }

    [Fact]
    public void Q8_0Copy_IsCloseToF32()
    {
        double[][] f32 = models.GgufF32.Logits(s_tokens);
        double[][] q8 = models.GgufQ8_0.Logits(s_tokens);
        double scale = MaxAbs(f32);
        double error = MaxAbsDifference(f32, q8);
        output.WriteLine($"GGUF Q8_0 vs F32: max |Δlogit| = {error:F5}, max |logit| = {scale:F3}, ratio {error / scale:E2}");
        Assert.True(error > 0, "Q8_0 should not be bit-identical to F32");
        Assert.True(error < Q8_0Tolerance * scale, $"max abs error {error} exceeds {Q8_0Tolerance} × {scale}");
    }

    [Fact]
    public void Logits_RejectTokensOutsideTheVocabulary()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => models.GgufF32.Logits([1, 32000]));
        Assert.Throws<ArgumentOutOfRangeException>(() => models.GgufF32.Logits([-1]));
    }

    private static double MaxAbs(double[][] values) => values.Max(row => row.Max(Math.Abs));

    private static double MaxAbsDifference(double[][] a, double[][] b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (int t = 0; t < a.Length; t++)
        {
            Assert.Equal(a[t].Length, b[t].Length);
            for (int i = 0; i < a[t].Length; i++)
            {
                max = Math.Max(max, Math.Abs(a[t][i] - b[t][i]));
            }
        }
        return max;
    }
}
