// Loads a model's weights from a GGUF file or a Hugging Face safetensors directory into ModelWeights. Matrices are
// views into the mapped file (no copy) unless the caller asks to quantize a float checkpoint at load, in which case
// the converted rows live in native buffers. Every tensor's presence, shape and type is checked against the config,
// so a broken or foreign file fails here with the tensor's name rather than later with garbage.

using Sirocco.Engine.Formats;
using Sirocco.Engine.Formats.Gguf;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Kernels;
using Sirocco.Kernels.Memory;
using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Reference;
using Sirocco.Kernels.Simd;

namespace Sirocco.Engine.Model;

/// <summary>Options for <see cref="WeightLoader.Load"/>.</summary>
/// <param name="QuantizeTo">For float (F32/F16/BF16) Hugging Face checkpoints: convert the layer matrices and output
/// head to this type at load (Q8_0 or Q4_K). Null keeps the checkpoint's type. Ignored for GGUF files.</param>
/// <param name="Progress">Receives (source bytes converted, source bytes to convert) while quantizing at load.</param>
public sealed record WeightLoadOptions(GgmlType? QuantizeTo = null, Action<long, long>? Progress = null);

/// <summary>Reads model weights from disk.</summary>
public static class WeightLoader
{
    /// <summary>Types a float checkpoint can be converted to at load.</summary>
    public static IReadOnlyList<GgmlType> LoadQuantizations { get; } = [GgmlType.Q8_0, GgmlType.Q4_K];

    /// <summary>Loads a GGUF file, or a Hugging Face directory (config.json + safetensors), or a safetensors file or
    /// index inside such a directory.</summary>
    /// <exception cref="ModelFormatException">The file is malformed or does not hold a Llama model.</exception>
    /// <exception cref="UnsupportedModelException">The model uses a type or architecture Sirocco does not run.</exception>
    /// <exception cref="FileNotFoundException">Nothing at <paramref name="path"/>.</exception>
    public static ModelWeights Load(string path, WeightLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new WeightLoadOptions();
        if (options.QuantizeTo is { } target && !LoadQuantizations.Contains(target))
        {
            throw new ArgumentException($"quantizing at load supports {string.Join(", ", LoadQuantizations)}, not {target}", nameof(options));
        }
        if (Directory.Exists(path) || path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)
            || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            return LoadHuggingFace(path, options);
        }
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path}: no such file or directory", path);
        }
        return LoadGguf(path);
    }

    private static ModelWeights LoadGguf(string path)
    {
        GgufFile file = GgufFile.Open(path);
        try
        {
            ModelConfig config = LlamaGgufMetadata.ReadConfig(file);
            CheckConfig(config, path);
            var types = new SortedSet<GgmlType>();

            WeightMatrix Matrix(LlamaTensor t)
            {
                GgufTensorInfo info = file.GetTensor(t.GgufName);
                CheckDimensions(path, t.GgufName, info.Dimensions, t.GgufDimensions);
                var matrix = new WeightMatrix(info.Type, file.Mapped.Address(file.DataOffset + info.Offset, info.ByteCount), (int)t.Rows, (int)t.Columns);
                ModelWeights.CheckMultipliable(matrix, t.GgufName, path);
                types.Add(info.Type);
                return matrix;
            }

            float[] Vector(LlamaTensor t)
            {
                GgufTensorInfo info = file.GetTensor(t.GgufName);
                CheckDimensions(path, t.GgufName, info.Dimensions, t.GgufDimensions);
                return ReadVector(file.TensorData(info), info.Type, (int)t.Columns, path, t.GgufName);
            }

            IReadOnlyList<LlamaTensor> tensors = LlamaTensors.For(config);
            WeightMatrix output = file.FindTensor("output.weight") is null
                ? Matrix(tensors[0]) // tied embeddings: the output head is the token embedding
                : Matrix(tensors[^1]);
            string fileType = file.Has("general.file_type") && Enum.IsDefined((ModelFileType)(uint)file.GetInt("general.file_type"))
                ? ((ModelFileType)(uint)file.GetInt("general.file_type")).ToString()
                : "mixed";
            return Assemble(config, path, tensors, Matrix, Vector, output, RopeStyle.Interleaved,
                () => $"GGUF {fileType} ({string.Join(", ", types)})", [file]);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static ModelWeights LoadHuggingFace(string path, WeightLoadOptions options)
    {
        string directory = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        ModelConfig config = HfConfig.Load(directory);
        CheckConfig(config, path);
        SafeTensorCheckpoint checkpoint = SafeTensorCheckpoint.Open(path);
        var owners = new List<IDisposable> { checkpoint };
        try
        {
            var types = new SortedSet<GgmlType>();
            IReadOnlyList<LlamaTensor> tensors = LlamaTensors.For(config);
            long bytesTotal = tensors.Where(t => !t.IsNorm && t.Role != LlamaTensorRole.TokenEmbedding && checkpoint.Contains(t.HfName))
                .Sum(t => checkpoint.GetTensor(t.HfName).ByteCount), bytesDone = 0;

            WeightMatrix Mapped(LlamaTensor t)
            {
                SafeTensorInfo info = checkpoint.GetTensor(t.HfName);
                CheckDimensions(path, t.HfName, info.Shape, t.HfShape);
                GgmlType type = ToGgml(info.Dtype, path, t.HfName);
                SafeTensorFile file = checkpoint.FileOf(t.HfName);
                return new WeightMatrix(type, file.Mapped.Address(info.DataOffset, info.ByteCount), (int)t.Rows, (int)t.Columns);
            }

            WeightMatrix Matrix(LlamaTensor t)
            {
                WeightMatrix source = Mapped(t);
                WeightMatrix result = source;
                if (options.QuantizeTo is { } target && t.Role != LlamaTensorRole.TokenEmbedding)
                {
                    result = Convert(source, target, owners);
                    bytesDone += source.ByteCount;
                    options.Progress?.Invoke(bytesDone, bytesTotal);
                }
                types.Add(result.Type);
                return result;
            }

            float[] Vector(LlamaTensor t)
            {
                SafeTensorInfo info = checkpoint.GetTensor(t.HfName);
                CheckDimensions(path, t.HfName, info.Shape, t.HfShape);
                return ReadVector(checkpoint.Data(t.HfName), ToGgml(info.Dtype, path, t.HfName), (int)t.Columns, path, t.HfName);
            }

            WeightMatrix output = checkpoint.Contains("lm_head.weight") ? Matrix(tensors[^1]) : Mapped(tensors[0]);
            string source = options.QuantizeTo is { } q ? $"Hugging Face safetensors, quantized at load to {q}" : "Hugging Face safetensors";
            return Assemble(config, path, tensors, Matrix, Vector, output, RopeStyle.HalfRotated,
                () => $"{source} ({string.Join(", ", types)})", owners);
        }
        catch
        {
            foreach (IDisposable owner in owners)
            {
                owner.Dispose();
            }
            throw;
        }
    }

    private static ModelWeights Assemble(ModelConfig config, string path, IReadOnlyList<LlamaTensor> tensors,
        Func<LlamaTensor, WeightMatrix> matrix, Func<LlamaTensor, float[]> vector, WeightMatrix output, RopeStyle rope,
        Func<string> describe, List<IDisposable> owners)
    {
        // owners is read only at the end: converting the layer matrices below adds their buffers to it.
        WeightMatrix embedding = matrix(tensors[0]);
        if (!Dequantize.IsSupported(embedding.Type))
        {
            throw new UnsupportedModelException($"{path}: the token embedding is {embedding.Type}, which Sirocco cannot read");
        }
        var layers = new LayerWeights[config.LayerCount];
        for (int layer = 0; layer < config.LayerCount; layer++)
        {
            LlamaTensor Find(LlamaTensorRole role) => tensors.First(t => t.Layer == layer && t.Role == role);
            layers[layer] = new LayerWeights
            {
                AttentionNorm = vector(Find(LlamaTensorRole.AttentionNorm)),
                Query = matrix(Find(LlamaTensorRole.Query)),
                Key = matrix(Find(LlamaTensorRole.Key)),
                Value = matrix(Find(LlamaTensorRole.Value)),
                AttentionOutput = matrix(Find(LlamaTensorRole.AttentionOutput)),
                FeedForwardNorm = vector(Find(LlamaTensorRole.FeedForwardNorm)),
                Gate = matrix(Find(LlamaTensorRole.Gate)),
                Up = matrix(Find(LlamaTensorRole.Up)),
                Down = matrix(Find(LlamaTensorRole.Down)),
            };
        }
        float[] outputNorm = vector(tensors.First(t => t.Role == LlamaTensorRole.OutputNorm));
        return new ModelWeights(config, path, describe(), rope, embedding, layers, outputNorm, output, [.. owners]);
    }

    private static WeightMatrix Convert(WeightMatrix source, GgmlType target, List<IDisposable> owners)
    {
        long rowBytes = GgmlTypes.Get(target).RowBytes(source.Columns);
        if (source.Columns % GgmlTypes.Get(target).BlockSize != 0)
        {
            throw new UnsupportedModelException($"cannot quantize a matrix of {source.Columns} columns to {target} (blocks of {GgmlTypes.Get(target).BlockSize})");
        }
        var buffer = new NativeBuffer<byte>(rowBytes * source.Rows);
        owners.Add(buffer);
        Parallel.For(0, source.Rows, () => new float[source.Columns], (row, _, floats) =>
        {
            Dequantize.Row(source.Type, source.Row(row), floats);
            Quantize.Row(target, floats, buffer.Slice(row * rowBytes, (int)rowBytes));
            return floats;
        }, _ => { });
        return new WeightMatrix(target, buffer.Address, source.Rows, source.Columns);
    }

    private static float[] ReadVector(ReadOnlySpan<byte> data, GgmlType type, int length, string path, string name)
    {
        if (type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16))
        {
            throw new UnsupportedModelException($"{path}: norm weight {name} is {type}; expected F32, F16 or BF16");
        }
        var values = new float[length];
        Dequantize.Row(type, data, values);
        foreach (float v in values)
        {
            if (!float.IsFinite(v))
            {
                throw new ModelFormatException($"{path}: norm weight {name} holds a non-finite value ({v})");
            }
        }
        return values;
    }

    private static GgmlType ToGgml(SafeTensorDtype dtype, string path, string name) => dtype switch
    {
        SafeTensorDtype.F32 => GgmlType.F32,
        SafeTensorDtype.F16 => GgmlType.F16,
        SafeTensorDtype.BF16 => GgmlType.BF16,
        _ => throw new UnsupportedModelException($"{path}: tensor {name} is {dtype}; Sirocco reads F32, F16 and BF16 checkpoints"),
    };

    private static void CheckDimensions(string path, string name, long[] found, long[] expected)
    {
        if (!found.AsSpan().SequenceEqual(expected))
        {
            throw new ModelFormatException(path, $"tensor {name}", -1, $"dimensions [{string.Join(", ", expected)}] from the model's config", $"[{string.Join(", ", found)}]");
        }
    }

    private static void CheckConfig(ModelConfig config, string path)
    {
        if (config.Architecture is not ("llama" or "mistral"))
        {
            throw new UnsupportedModelException($"{path}: architecture {config.Architecture}; Sirocco runs llama/mistral models");
        }
        IReadOnlyList<string> problems = config.Problems();
        if (problems.Count > 0)
        {
            throw new ModelFormatException($"{path}: {string.Join("; ", problems)}");
        }
        if (config.SlidingWindow is { } window && window < config.ContextLength)
        {
            throw new UnsupportedModelException($"{path}: sliding-window attention ({window} of {config.ContextLength}) is not supported; Mistral-7B-v0.2 has none");
        }
    }
}
