// Loading a llama.cpp LoRA adapter (convert_lora_to_gguf.py output, read by llama.cpp's llama-adapter.cpp):
// general.type = "adapter", adapter.type = "lora", adapter.lora.alpha (f32), and per adapted matrix the tensors
// blk.N.attn_q.weight.lora_a with ggml dimensions [in, r] (PyTorch [r, in]) and .lora_b with [r, out] (PyTorch
// [out, r]), B's q/k rows already in GGUF order. llama.cpp scales by alpha/r, or by 1 when alpha is absent or 0.

using Sirocco.Engine.Formats;
using Sirocco.Engine.Formats.Gguf;
using Sirocco.Engine.Model;
using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Reference;

namespace Sirocco.Engine.Lora;

public sealed partial class LoraAdapter
{
    /// <summary>Tensor types accepted in a GGUF adapter: the converter's output types.</summary>
    private static readonly GgmlType[] s_ggufTypes = [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0];

    /// <summary>Loads a llama.cpp GGUF LoRA adapter for <paramref name="baseModel"/>.</summary>
    /// <exception cref="LoraFormatException">See <see cref="LoadPeft"/>; also a GGUF file that is not a LoRA adapter or
    /// is for another architecture.</exception>
    public static LoraAdapter LoadGguf(string path, ModelWeights baseModel, LoraLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(baseModel);
        limits ??= LoraLimits.Default;
        if (!File.Exists(path))
        {
            throw new LoraFormatException(LoraErrorKind.MissingFile, path, $"no such file{(Path.GetDirectoryName(path) is { Length: > 0 } dir ? $" in {dir}" : "")}");
        }
        long bytes = new FileInfo(path).Length;
        if (bytes > limits.MaxFileBytes)
        {
            throw new LoraFormatException(LoraErrorKind.FileTooLarge, path, "size", $"at most {limits.MaxFileBytes} bytes", $"{bytes} bytes");
        }
        GgufFile file;
        try
        {
            file = GgufFile.Open(path);
        }
        catch (ModelFormatException e)
        {
            throw new LoraFormatException(LoraErrorKind.MalformedFile, path, StripFileName(e.Message), e);
        }
        catch (UnsupportedModelException e)
        {
            throw new LoraFormatException(LoraErrorKind.Unsupported, path, StripPath(e.Message, path), e);
        }
        using (file)
        {
            double alpha = ReadGgufHeader(file, path);
            ModelConfig model = baseModel.Config;
            var pairs = new Dictionary<(int Layer, LoraModule Module), (GgufTensorInfo? A, GgufTensorInfo? B)>();
            foreach (GgufTensorInfo tensor in file.Tensors)
            {
                if (!LoraModules.TryParseGguf(tensor.Name, out int layer, out LoraModule? module, out bool isA))
                {
                    throw UnknownGgufTensor(tensor.Name, path);
                }
                if (layer >= model.LayerCount)
                {
                    throw new LoraFormatException(LoraErrorKind.TargetMismatch, path, $"tensor {tensor.Name}",
                        $"layers 0 … {model.LayerCount - 1} (the base model has {model.LayerCount})", $"layer {layer}");
                }
                if (!s_ggufTypes.Contains(tensor.Type))
                {
                    throw new LoraFormatException(LoraErrorKind.UnsupportedDtype, path, $"tensor {tensor.Name}", "F32, F16, BF16 or Q8_0", $"{tensor.Type} {tensor.ShapeText}");
                }
                pairs.TryGetValue((layer, module), out var pair);
                pairs[(layer, module)] = isA ? (tensor, pair.B) : (pair.A, tensor);
            }

            var builder = new Builder(baseModel, limits, path, isHuggingFaceOrder: false);
            var checkedPairs = new List<(int Layer, LoraModule Module, GgufTensorInfo A, GgufTensorInfo B, int Rank)>();
            foreach (((int layer, LoraModule module), (GgufTensorInfo? a, GgufTensorInfo? b)) in pairs.OrderBy(p => p.Key.Layer).ThenBy(p => LoraModules.IndexOf(p.Key.Module.Role)))
            {
                if (a is null || b is null)
                {
                    throw new LoraFormatException(LoraErrorKind.MissingTensor, path, $"tensor {module.GgufTensor(layer, isA: a is null)}",
                        $"a partner for {(a ?? b)!.Name}", "none");
                }
                // ggml dimensions are innermost first; reversed they are PyTorch's [r, in] and [out, r].
                long[] shapeA = [.. a.Dimensions.Reverse()], shapeB = [.. b.Dimensions.Reverse()];
                int rank = builder.CheckShapes(layer, module, a.Name, shapeA, b.Name, shapeB, configuredRank: null);
                checkedPairs.Add((layer, module, a, b, rank));
            }
            foreach ((int layer, LoraModule module, GgufTensorInfo a, GgufTensorInfo b, int rank) in checkedPairs)
            {
                // llama-adapter.h get_scale: alpha ? alpha / rank : 1 (rank = lora_b's ne[0]).
                double scale = alpha != 0 ? alpha / rank : 1;
                builder.Add(layer, module, rank, scale, a.Name, ReadGgufFloats(file, a), b.Name, ReadGgufFloats(file, b));
            }
            return builder.Build("GGUF", alpha != 0 ? FormatScaling("s=alpha/r", alpha) : "no alpha (s=1)");
        }
    }

    /// <summary>Checks the adapter keys llama.cpp checks and returns adapter.lora.alpha (0 when absent).</summary>
    private static double ReadGgufHeader(GgufFile file, string path)
    {
        try
        {
            string? type = file.FindString("general.type");
            if (type != "adapter")
            {
                throw new LoraFormatException(LoraErrorKind.MalformedFile, path, "general.type", "\"adapter\" (a LoRA adapter file, not a model)",
                    type is null ? "no general.type key" : $"\"{type}\"");
            }
            string? adapterType = file.FindString("adapter.type");
            if (adapterType != "lora")
            {
                throw new LoraFormatException(LoraErrorKind.Unsupported, path, "adapter.type", "\"lora\"",
                    adapterType is null ? "no adapter.type key" : $"\"{adapterType}\"");
            }
            // llama.cpp converts Mistral with the llama architecture; accept the family's own name too.
            string? architecture = file.FindString("general.architecture");
            if (architecture is not ("llama" or "mistral"))
            {
                throw new LoraFormatException(LoraErrorKind.WrongModelType, path, "general.architecture", "\"llama\" (Mistral as llama.cpp converts it)",
                    architecture is null ? "no general.architecture key" : $"\"{architecture}\"");
            }
            double alpha = file.GetFloat("adapter.lora.alpha", 0f);
            if (!double.IsFinite(alpha))
            {
                throw new LoraFormatException(LoraErrorKind.NonFiniteValue, path, "adapter.lora.alpha", "a finite number", alpha.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            return alpha;
        }
        catch (ModelFormatException e)
        {
            throw new LoraFormatException(LoraErrorKind.MalformedFile, path, StripFileName(e.Message), e);
        }
    }

    private static LoraFormatException UnknownGgufTensor(string name, string path)
    {
        if (name.EndsWith("_norm.weight", StringComparison.Ordinal))
        {
            return new LoraFormatException(LoraErrorKind.Unsupported, path, $"tensor {name}", "LoRA matrices only", "a norm weight (adapters that retrain norms are not supported)");
        }
        if (name.EndsWith(".lora_a", StringComparison.Ordinal) || name.EndsWith(".lora_b", StringComparison.Ordinal))
        {
            return new LoraFormatException(LoraErrorKind.TargetMismatch, path, $"tensor {name}",
                $"a layer projection blk.N.{{{string.Join(",", LoraModules.All.Select(m => m.GgufName))}}}.weight", "another tensor (Sirocco adapts the seven layer projections only)");
        }
        return new LoraFormatException(LoraErrorKind.UnknownTensor, path, $"tensor {name}", "blk.N.<projection>.weight.lora_a or .lora_b", "an unknown name");
    }

    /// <summary>A whole tensor widened to f32 (rows are contiguous, so one dequantization covers them all).</summary>
    private static float[] ReadGgufFloats(GgufFile file, GgufTensorInfo tensor)
    {
        var values = new float[tensor.ElementCount];
        Dequantize.Row(tensor.Type, file.TensorData(tensor), values);
        return values;
    }

    private static string StripPath(string message, string path) =>
        message.StartsWith(path + ": ", StringComparison.Ordinal) ? message[(path.Length + 2)..] : message;
}
