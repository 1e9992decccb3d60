// Writes synthetic models: Mistral's exact architecture at any size with seeded random weights, as a GGUF file (F32,
// F16, BF16, Q8_0, Q4_0, Q4_K_M, …) or as a Hugging Face directory (safetensors in HF names and q/k row order, plus
// config and tokenizer files). Data streams to disk in row chunks generated and quantized in parallel, so a 7B model
// never sits in memory. Called by `sirocco synth`, tests and benchmarks.

using System.Buffers;
using System.Text.Json;
using Sirocco.Engine.Formats.Gguf;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Model;
using Sirocco.Kernels.Quant;

namespace Sirocco.Engine.Synthesis;

/// <summary>Progress of a synthetic-model write: bytes of tensor data written of the total, and the current tensor.</summary>
public readonly record struct SynthesisProgress(long BytesWritten, long TotalBytes, string CurrentTensor);

/// <summary>The tokenizer a synthetic model carries: the vocabulary arrays (for GGUF) and the files (for HF).</summary>
/// <param name="TokenTypes">Per piece, GGUF/llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.</param>
/// <param name="TokenizerModel">The SentencePiece tokenizer.model bytes.</param>
/// <param name="TokenizerJson">A Hugging Face tokenizer.json for the same vocabulary.</param>
public sealed record SyntheticTokenizer(string[] Pieces, float[] Scores, int[] TokenTypes, int BosId, int EosId, int UnkId,
    byte[] TokenizerModel, string TokenizerJson);

/// <summary>Writes synthetic models to disk.</summary>
public static class SyntheticModelWriter
{
    /// <summary>Target bytes of output generated per parallel chunk: large enough to keep both cores busy, small enough
    /// to keep memory flat (two chunk buffers at most).</summary>
    private const int ChunkBytes = 8 << 20;

    /// <summary>Plans a GGUF file without writing it: the header writer with every tensor declared.</summary>
    public static GgufWriter PlanGguf(ModelConfig config, ModelFileType fileType, SyntheticTokenizer tokenizer, string name)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(tokenizer);
        CheckConfig(config, tokenizer);
        var writer = new GgufWriter();
        LlamaGgufMetadata.WriteConfig(writer, config, name, fileType);
        LlamaGgufMetadata.WriteTokenizer(writer, tokenizer.Pieces, tokenizer.Scores, tokenizer.TokenTypes,
            tokenizer.BosId, tokenizer.EosId, tokenizer.UnkId, LlamaGgufMetadata.MistralChatTemplate);
        writer.Add("sirocco.synthetic", true);
        foreach (var t in LlamaTensors.For(config))
        {
            writer.AddTensor(t.GgufName, QuantizationScheme.TypeFor(fileType, t, config), t.GgufDimensions);
        }
        return writer;
    }

    /// <summary>Writes a GGUF synthetic model to <paramref name="path"/> (atomically: temporary file, then rename).</summary>
    public static void WriteGguf(string path, ModelConfig config, ModelFileType fileType, SyntheticTokenizer tokenizer,
        ulong seed, IProgress<SynthesisProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var plan = PlanGguf(config, fileType, tokenizer, $"sirocco-synthetic-{fileType}".ToLowerInvariant());
        var weights = new SyntheticWeights(seed);
        var tensors = LlamaTensors.For(config);
        long total = plan.Tensors.Sum(t => t.ByteCount);
        long written = 0;
        using var data = plan.Begin(path);
        for (int i = 0; i < tensors.Count; i++)
        {
            var spec = tensors[i];
            var info = plan.Tensors[i];
            int headDim = spec.RotaryHeadCount(config) > 0 ? config.HeadDim : 0;
            // GGUF row r of q/k holds HF row HfRowOfGgufRow(r): the same numbers as the HF copy, in llama.cpp's order.
            Func<long, long> sourceRow = headDim > 0 ? r => RopeRowOrder.HfRowOfGgufRow(r, headDim) : r => r;
            WriteTensorRows(spec, info.Type, weights, sourceRow, chunk =>
            {
                data.Write(chunk);
                written += chunk.Length;
                progress?.Report(new SynthesisProgress(written, total, spec.GgufName));
            }, cancellationToken);
        }
        data.Complete();
    }

    /// <summary>Generates every row of <paramref name="spec"/>, converts it to <paramref name="type"/>, and hands the bytes
    /// to <paramref name="sink"/> in row order, chunk by chunk. Rows within a chunk are produced in parallel.</summary>
    internal static void WriteTensorRows(LlamaTensor spec, GgmlType type, SyntheticWeights weights, Func<long, long> sourceRow,
        Action<ReadOnlySpan<byte>> sink, CancellationToken cancellationToken)
    {
        long rowBytes = GgmlTypes.Get(type).RowBytes(spec.Columns);
        int rowsPerChunk = (int)Math.Clamp(ChunkBytes / Math.Max(rowBytes, 1), 1, spec.Rows);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(checked((int)(rowsPerChunk * rowBytes)));
        try
        {
            for (long first = 0; first < spec.Rows; first += rowsPerChunk)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int count = (int)Math.Min(rowsPerChunk, spec.Rows - first);
                long chunkFirst = first;
                Parallel.For(0, count, new ParallelOptions { CancellationToken = cancellationToken },
                    () => new float[spec.Columns],
                    (r, _, row) =>
                    {
                        weights.FillRow(spec, sourceRow(chunkFirst + r), row);
                        Quantize.Row(type, row, buffer.AsSpan((int)(r * rowBytes), (int)rowBytes));
                        return row;
                    },
                    _ => { });
                sink(buffer.AsSpan(0, (int)(count * rowBytes)));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void CheckConfig(ModelConfig config, SyntheticTokenizer tokenizer)
    {
        var problems = config.Problems().ToList();
        if (config.VocabSize != tokenizer.Pieces.Length)
        {
            problems.Add($"VocabSize {config.VocabSize} differs from the tokenizer's {tokenizer.Pieces.Length} pieces");
        }
        if (problems.Count > 0)
        {
            throw new ArgumentException("synthetic model shape is invalid: " + string.Join("; ", problems), nameof(config));
        }
    }

    /// <summary>Largest safetensors shard, as transformers' default <c>max_shard_size="5GB"</c>.</summary>
    public const long MaxShardBytes = 5_000_000_000;

    /// <summary>Writes a Hugging Face-style model directory: config.json, generation_config.json, tokenizer files, and
    /// the weights as safetensors (sharded with an index past <see cref="MaxShardBytes"/>), HF tensor names and HF q/k
    /// row order. <paramref name="dtype"/> is F32, F16 or BF16.</summary>
    /// <param name="maxShardBytes">Tensor bytes per shard; defaults to <see cref="MaxShardBytes"/>.</param>
    public static void WriteHuggingFace(string directory, ModelConfig config, SafeTensorDtype dtype, SyntheticTokenizer tokenizer,
        ulong seed, IProgress<SynthesisProgress>? progress = null, long maxShardBytes = MaxShardBytes,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(tokenizer);
        CheckConfig(config, tokenizer);
        var type = dtype switch
        {
            SafeTensorDtype.F32 => GgmlType.F32,
            SafeTensorDtype.F16 => GgmlType.F16,
            SafeTensorDtype.BF16 => GgmlType.BF16,
            _ => throw new ArgumentException($"Hugging Face synthetic models are F32, F16 or BF16, not {dtype}", nameof(dtype)),
        };
        Directory.CreateDirectory(directory);
        var tensors = LlamaTensors.For(config);
        var declarations = tensors.Select(t => new SafeTensorDeclaration(t.HfName, dtype, t.HfShape)).ToList();
        var weights = new SyntheticWeights(seed);
        long total = declarations.Sum(d => d.ByteCount);
        long written = 0;
        using (var writer = ShardedSafeTensorWriter.Create(directory, declarations, maxShardBytes))
        {
            foreach (var spec in tensors)
            {
                WriteTensorRows(spec, type, weights, r => r, chunk =>
                {
                    writer.WriteTensor(spec.HfName, chunk);
                    written += chunk.Length;
                    progress?.Report(new SynthesisProgress(written, total, spec.HfName));
                }, cancellationToken);
            }
            writer.Complete();
        }
        string torchDtype = dtype switch { SafeTensorDtype.F32 => "float32", SafeTensorDtype.F16 => "float16", _ => "bfloat16" };
        HfConfig.Save(config, directory, torchDtype);
        WriteText(Path.Combine(directory, "generation_config.json"),
            $"{{\n  \"_from_model_config\": true,\n  \"bos_token_id\": {config.BosId},\n  \"eos_token_id\": {config.EosId}\n}}\n");
        File.WriteAllBytes(Path.Combine(directory, "tokenizer.model"), tokenizer.TokenizerModel);
        WriteText(Path.Combine(directory, "tokenizer.json"), tokenizer.TokenizerJson);
        WriteText(Path.Combine(directory, "tokenizer_config.json"), TokenizerConfigJson(tokenizer));
        WriteText(Path.Combine(directory, "special_tokens_map.json"), JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["bos_token"] = tokenizer.Pieces[tokenizer.BosId],
            ["eos_token"] = tokenizer.Pieces[tokenizer.EosId],
            ["unk_token"] = tokenizer.Pieces[tokenizer.UnkId],
        }, s_indented));
    }

    private static readonly JsonSerializerOptions s_indented = new() { WriteIndented = true };

    private static string TokenizerConfigJson(SyntheticTokenizer tokenizer) => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["add_bos_token"] = true,
        ["add_eos_token"] = false,
        ["bos_token"] = tokenizer.Pieces[tokenizer.BosId],
        ["eos_token"] = tokenizer.Pieces[tokenizer.EosId],
        ["unk_token"] = tokenizer.Pieces[tokenizer.UnkId],
        ["pad_token"] = null!,
        ["legacy"] = true,
        ["model_max_length"] = 1000000000000000019884624838656.0,
        ["tokenizer_class"] = "LlamaTokenizer",
        ["chat_template"] = LlamaGgufMetadata.MistralChatTemplate,
    }, s_indented);

    /// <summary>Writes text through a temporary file and a rename, so a crash never leaves half a file.</summary>
    private static void WriteText(string path, string text)
    {
        string temp = path + ".partial";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }
}
