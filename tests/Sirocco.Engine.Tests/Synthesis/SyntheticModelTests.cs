using Sirocco.Engine.Formats.Gguf;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Model;
using Sirocco.Engine.Synthesis;
using Sirocco.Engine.Tokenization;
using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Reference;

namespace Sirocco.Engine.Tests.Synthesis;

/// <summary>Runs alone: the streaming test measures process-wide allocations, which parallel tests would disturb.</summary>
[CollectionDefinition(nameof(NotParallel), DisableParallelization = true)]
public sealed class NotParallel;

/// <summary>Synthetic models: the right shapes, types, metadata, tokenizer and weights, identical across formats.</summary>
[Collection(nameof(NotParallel))]
public class SyntheticModelTests
{
    private const ulong Seed = 7;

    /// <summary>Real llama.cpp files for Mistral-7B-Instruct-v0.2 (TheBloke's GGUF conversions), in bytes.</summary>
    private const long RealQ4_0Bytes = 4_108_916_384;
    private const long RealQ4KMBytes = 4_368_439_584;
    private const long RealQ8_0Bytes = 7_695_857_952;

    /// <summary>Our synthetic files match the real ones' tensor data exactly; only metadata differs (names, template
    /// text), a few kilobytes, so 0.01 % is a tight bound that still allows it.</summary>
    private const double SizeTolerance = 1e-4;

    [Theory]
    [InlineData(ModelFileType.Q4_0, RealQ4_0Bytes)]
    [InlineData(ModelFileType.Q4_K_M, RealQ4KMBytes)]
    [InlineData(ModelFileType.Q8_0, RealQ8_0Bytes)]
    public void Plan7B_HasTheRealFilesSize(ModelFileType type, long realBytes)
    {
        var plan = SyntheticModelWriter.PlanGguf(SyntheticPresets.Mistral7B, type, SyntheticTokenizers.Mistral(), "x");
        double relative = Math.Abs(plan.FileBytes - realBytes) / (double)realBytes;
        Assert.True(relative < SizeTolerance, $"{type}: planned {plan.FileBytes:N0} bytes, real file {realBytes:N0} ({relative:P4} off)");
    }

    [Fact]
    public void Plan7B_Q4KM_PutsQ6KWhereLlamaCppDoes()
    {
        var config = SyntheticPresets.Mistral7B;
        var plan = SyntheticModelWriter.PlanGguf(config, ModelFileType.Q4_K_M, SyntheticTokenizers.Mistral(), "x");
        var types = plan.Tensors.ToDictionary(t => t.Name, t => t.Type);
        Assert.Equal(GgmlType.Q6_K, types["output.weight"]);
        Assert.Equal(GgmlType.Q4_K, types["token_embd.weight"]);
        Assert.Equal(GgmlType.F32, types["blk.0.attn_norm.weight"]);
        int[] moreBits = [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31];
        for (int i = 0; i < 32; i++)
        {
            var expected = moreBits.Contains(i) ? GgmlType.Q6_K : GgmlType.Q4_K;
            Assert.Equal(expected, types[$"blk.{i}.attn_v.weight"]);
            Assert.Equal(expected, types[$"blk.{i}.ffn_down.weight"]);
            Assert.Equal(GgmlType.Q4_K, types[$"blk.{i}.attn_q.weight"]);
            Assert.Equal(GgmlType.Q4_K, types[$"blk.{i}.ffn_up.weight"]);
        }
    }

    [Theory]
    [InlineData(ModelFileType.F32)]
    [InlineData(ModelFileType.F16)]
    [InlineData(ModelFileType.Q8_0)]
    [InlineData(ModelFileType.Q4_0)]
    [InlineData(ModelFileType.Q4_K_M)]
    public void TinyGguf_ReadsBackWithConfigTokenizerAndTypes(ModelFileType type)
    {
        using var dir = new TempDir();
        string path = dir.File("tiny.gguf");
        var config = SyntheticPresets.Tiny;
        SyntheticModelWriter.WriteGguf(path, config, type, SyntheticTokenizers.Mistral(), Seed);

        using var file = GgufFile.Open(path);
        Assert.Equal(config, LlamaGgufMetadata.ReadConfig(file));
        Assert.Equal((int)type, file.GetInt("general.file_type"));
        var specs = LlamaTensors.For(config);
        Assert.Equal(specs.Select(s => s.GgufName), file.Tensors.Select(t => t.Name));
        foreach (var spec in specs)
        {
            var t = file.GetTensor(spec.GgufName);
            Assert.Equal(QuantizationScheme.TypeFor(type, spec, config), t.Type);
            Assert.Equal(spec.GgufDimensions, t.Dimensions);
        }

        var tokenizer = TokenizerLoader.Load(path);
        Assert.Equal(new[] { 1, 22557, 1526 }, tokenizer.Encode("Hello world", addBos: true));
        Assert.Equal(LlamaGgufMetadata.MistralChatTemplate, file.GetString("tokenizer.chat_template"));
    }

    [Theory]
    [InlineData(ModelFileType.F16, 1e-3)]
    [InlineData(ModelFileType.Q8_0, 0.01)]
    [InlineData(ModelFileType.Q4_K_M, 0.12)]
    public void TinyGguf_WeightsAreTheGeneratedWeightsWithinQuantizationError(ModelFileType type, double maxRelativeRms)
    {
        using var dir = new TempDir();
        string path = dir.File("w.gguf");
        var config = SyntheticPresets.Tiny;
        SyntheticModelWriter.WriteGguf(path, config, type, SyntheticTokenizers.Mistral(), Seed);
        using var file = GgufFile.Open(path);
        var weights = new SyntheticWeights(Seed);
        foreach (var spec in LlamaTensors.For(config).Where(s => !s.IsNorm))
        {
            var info = file.GetTensor(spec.GgufName);
            var expected = new float[spec.Columns];
            var actual = new float[spec.Columns];
            double err = 0, norm = 0;
            foreach (long row in new long[] { 0, 1, spec.Rows / 2, spec.Rows - 1 })
            {
                long hfRow = spec.RotaryHeadCount(config) > 0 ? RopeRowOrder.HfRowOfGgufRow(row, config.HeadDim) : row;
                weights.FillRow(spec, hfRow, expected);
                Dequantize.Row(info.Type, file.TensorRows(info, row, 1), actual);
                for (int i = 0; i < actual.Length; i++)
                {
                    err += (actual[i] - expected[i]) * (double)(actual[i] - expected[i]);
                    norm += expected[i] * (double)expected[i];
                }
            }
            double relativeRms = Math.Sqrt(err / norm);
            Assert.True(relativeRms < maxRelativeRms, $"{spec.GgufName} ({info.Type}): relative RMS error {relativeRms:G3}");
        }
    }

    [Fact]
    public void Weights_AreNonZeroAndUnitScaled()
    {
        var weights = new SyntheticWeights(Seed);
        var config = SyntheticPresets.Tiny;
        foreach (var spec in LlamaTensors.For(config))
        {
            var row = new float[spec.Columns];
            weights.FillRow(spec, 0, row);
            double mean = row.Average(), rms = Math.Sqrt(row.Average(x => (double)x * x));
            Assert.DoesNotContain(0f, row.Take(16));
            if (spec.IsNorm)
            {
                Assert.InRange(mean, 0.9, 1.1);
            }
            else
            {
                double sigma = spec.Role == LlamaTensorRole.TokenEmbedding ? 1 : 1 / Math.Sqrt(spec.Columns);
                Assert.InRange(rms / sigma, 0.85, 1.15);
                Assert.InRange(Math.Abs(mean) / sigma, 0, 0.2);
            }
        }
    }

    [Fact]
    public void SameSeed_SameBytes_OtherSeed_OtherBytes()
    {
        using var dir = new TempDir();
        var config = SyntheticPresets.Tiny with { LayerCount = 1 };
        var tok = SyntheticTokenizers.Mistral();
        SyntheticModelWriter.WriteGguf(dir.File("a.gguf"), config, ModelFileType.Q8_0, tok, 1);
        SyntheticModelWriter.WriteGguf(dir.File("b.gguf"), config, ModelFileType.Q8_0, tok, 1);
        SyntheticModelWriter.WriteGguf(dir.File("c.gguf"), config, ModelFileType.Q8_0, tok, 2);
        byte[] a = File.ReadAllBytes(dir.File("a.gguf"));
        Assert.Equal(a, File.ReadAllBytes(dir.File("b.gguf")));
        Assert.NotEqual(a, File.ReadAllBytes(dir.File("c.gguf")));
    }

    [Fact]
    public void HuggingFaceLayout_HoldsTheSameWeightsInHfNamesAndRowOrder()
    {
        using var dir = new TempDir();
        var config = SyntheticPresets.Tiny;
        var tok = SyntheticTokenizers.Mistral();
        string hf = Path.Combine(dir.FullPath, "hf");
        SyntheticModelWriter.WriteHuggingFace(hf, config, SafeTensorDtype.F32, tok, Seed);
        SyntheticModelWriter.WriteGguf(dir.File("m.gguf"), config, ModelFileType.F32, tok, Seed);

        Assert.Equal(config with { RopeDim = 0 }, HfConfig.Load(hf) with { RopeDim = 0 });
        foreach (string name in new[] { "config.json", "generation_config.json", "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "model.safetensors" })
        {
            Assert.True(File.Exists(Path.Combine(hf, name)), name);
        }
        Assert.Equal(SyntheticTokenizers.MistralModelBytes(), File.ReadAllBytes(Path.Combine(hf, "tokenizer.model")));
        Assert.Equal(new[] { 22557, 1526 }, TokenizerLoader.Load(Path.Combine(hf, "tokenizer.json")).Encode("Hello world"));

        using var st = SafeTensorCheckpoint.Open(hf);
        using var gguf = GgufFile.Open(dir.File("m.gguf"));
        foreach (var spec in LlamaTensors.For(config))
        {
            var hfTensor = st.GetTensor(spec.HfName);
            Assert.Equal(spec.HfShape, hfTensor.Shape);
            float[] hfValues = st.ReadFloats(spec.HfName);
            var ggInfo = gguf.GetTensor(spec.GgufName);
            float[] ggValues = new float[ggInfo.ElementCount];
            Dequantize.Row(GgmlType.F32, gguf.TensorData(ggInfo), ggValues);
            int heads = spec.RotaryHeadCount(config);
            for (long r = 0; r < spec.Rows; r++)
            {
                long hfRow = heads > 0 ? RopeRowOrder.HfRowOfGgufRow(r, config.HeadDim) : r;
                Assert.True(ggValues.AsSpan((int)(r * spec.Columns), (int)spec.Columns)
                    .SequenceEqual(hfValues.AsSpan((int)(hfRow * spec.Columns), (int)spec.Columns)), $"{spec.GgufName} row {r}");
            }
            if (heads > 0)
            {
                // The permutation really moves rows: row 1 of a head comes from row D/2.
                Assert.Equal(config.HeadDim / 2, RopeRowOrder.HfRowOfGgufRow(1, config.HeadDim));
            }
        }
    }

    [Fact]
    public void HuggingFaceLayout_ShardsWithAnIndex_AndHoldsTheSameTensors()
    {
        using var dir = new TempDir();
        var config = SyntheticPresets.Tiny with { LayerCount = 1 };
        var tok = SyntheticTokenizers.Mistral();
        string single = Path.Combine(dir.FullPath, "single");
        string sharded = Path.Combine(dir.FullPath, "sharded");
        SyntheticModelWriter.WriteHuggingFace(single, config, SafeTensorDtype.BF16, tok, Seed);
        SyntheticModelWriter.WriteHuggingFace(sharded, config, SafeTensorDtype.BF16, tok, Seed, maxShardBytes: 8_000_000);

        Assert.True(File.Exists(Path.Combine(sharded, SafeTensorCheckpoint.IndexFileName)));
        using var a = SafeTensorCheckpoint.Open(single);
        using var b = SafeTensorCheckpoint.Open(sharded);
        Assert.False(a.IsSharded);
        Assert.True(b.IsSharded);
        Assert.True(b.Files.Count >= 3, $"{b.Files.Count} shards");
        Assert.Equal(a.Tensors.Select(t => t.Name), b.Tensors.Select(t => t.Name));
        foreach (var t in a.Tensors)
        {
            Assert.Equal(SafeTensorDtype.BF16, t.Dtype);
            Assert.True(a.Data(t.Name).SequenceEqual(b.Data(t.Name)), t.Name);
        }
    }

    [Fact]
    public void RopeRowOrder_IsABijectionAndItsInverse()
    {
        foreach (int headDim in new[] { 2, 8, 64, 128 })
        {
            var seen = new HashSet<long>();
            for (long r = 0; r < 3 * headDim; r++)
            {
                long hf = RopeRowOrder.HfRowOfGgufRow(r, headDim);
                Assert.True(seen.Add(hf));
                Assert.Equal(r / headDim, hf / headDim);
                Assert.Equal(r, RopeRowOrder.GgufRowOfHfRow(hf, headDim));
            }
        }
    }

    [Fact]
    public void Writing_StreamsInsteadOfHoldingTheModel()
    {
        using var dir = new TempDir();
        // ~70 MB of F32 data: allocations must stay far below it (chunks are rented and reused).
        var config = SyntheticPresets.Tiny;
        var tok = SyntheticTokenizers.Mistral();
        long before = GC.GetTotalAllocatedBytes(precise: true);
        SyntheticModelWriter.WriteGguf(dir.File("s.gguf"), config, ModelFileType.F32, tok, Seed);
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        long fileBytes = new FileInfo(dir.File("s.gguf")).Length;
        Assert.True(allocated < fileBytes / 3, $"allocated {allocated:N0} bytes to write {fileBytes:N0}");
    }
}
