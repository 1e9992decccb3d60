// Loading a Hugging Face PEFT LoRA adapter: adapter_config.json (PeftAdapterConfig) plus adapter_model.safetensors
// holding base_model.model.model.layers.N.{self_attn,mlp}.X.lora_A.weight [r, in] and .lora_B.weight [out, r] in
// F32, F16 or BF16. The safetensors header is validated by the existing reader (lengths, offsets, overlaps).

using Sirocco.Engine.Formats;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Model;

namespace Sirocco.Engine.Lora;

public sealed partial class LoraAdapter
{
    /// <summary>The weights file name PEFT (and Workers AI) use.</summary>
    public const string PeftWeightsFileName = "adapter_model.safetensors";

    /// <summary>Loads a PEFT adapter for <paramref name="baseModel"/>.</summary>
    /// <exception cref="LoraFormatException">See <see cref="LoraErrorKind"/>: a missing file, a config or weights file
    /// that is malformed, too large, for another model type, over the rank limit, targeting modules or layers the
    /// model does not have, or with tensors that are unknown, unpaired, of the wrong shape or dtype, or non-finite.</exception>
    public static LoraAdapter LoadPeft(string configPath, string weightsPath, ModelWeights baseModel, LoraLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(configPath);
        ArgumentException.ThrowIfNullOrEmpty(weightsPath);
        ArgumentNullException.ThrowIfNull(baseModel);
        limits ??= LoraLimits.Default;
        foreach (string required in (string[])[configPath, weightsPath])
        {
            if (!File.Exists(required))
            {
                throw new LoraFormatException(LoraErrorKind.MissingFile, required, $"no such file{(Path.GetDirectoryName(required) is { Length: > 0 } dir ? $" in {dir}" : "")}");
            }
        }
        long weightBytes = new FileInfo(weightsPath).Length;
        if (weightBytes > limits.MaxFileBytes)
        {
            throw new LoraFormatException(LoraErrorKind.FileTooLarge, weightsPath, "size", $"at most {limits.MaxFileBytes} bytes", $"{weightBytes} bytes");
        }
        ModelConfig model = baseModel.Config;
        PeftAdapterConfig config = PeftAdapterConfig.Load(configPath, model.LayerCount, limits);

        SafeTensorFile file;
        try
        {
            file = SafeTensorFile.Open(weightsPath);
        }
        catch (ModelFormatException e)
        {
            throw new LoraFormatException(LoraErrorKind.MalformedFile, weightsPath, StripFileName(e.Message), e);
        }
        using (file)
        {
            // Pair the tensors up by (layer, module); everything must be a lora_A or lora_B of a layer projection.
            var pairs = new Dictionary<(int Layer, LoraModule Module), (SafeTensorInfo? A, SafeTensorInfo? B)>();
            foreach (SafeTensorInfo tensor in file.Tensors)
            {
                if (!LoraModules.TryParsePeft(tensor.Name, out int layer, out LoraModule? module, out bool isA))
                {
                    throw new LoraFormatException(LoraErrorKind.UnknownTensor, weightsPath, $"tensor {tensor.Name}",
                        "base_model.model.model.layers.N.{self_attn|mlp}.{" + LoraModules.PeftNames.Replace(" ", "", StringComparison.Ordinal) + "}.lora_{A|B}.weight",
                        "an unknown name");
                }
                if (layer >= model.LayerCount)
                {
                    throw new LoraFormatException(LoraErrorKind.TargetMismatch, weightsPath, $"tensor {tensor.Name}",
                        $"layers 0 … {model.LayerCount - 1} (the base model has {model.LayerCount})", $"layer {layer}");
                }
                if (!tensor.Dtype.IsSupportedWeight())
                {
                    throw new LoraFormatException(LoraErrorKind.UnsupportedDtype, weightsPath, $"tensor {tensor.Name}", "F32, F16 or BF16", tensor.Describe());
                }
                pairs.TryGetValue((layer, module), out var pair);
                pairs[(layer, module)] = isA ? (tensor, pair.B) : (pair.A, tensor);
            }

            var builder = new Builder(baseModel, limits, weightsPath, isHuggingFaceOrder: true);
            var checkedPairs = new List<(int Layer, LoraModule Module, SafeTensorInfo A, SafeTensorInfo B, int Rank)>();
            foreach (((int layer, LoraModule module), (SafeTensorInfo? a, SafeTensorInfo? b)) in pairs.OrderBy(p => p.Key.Layer).ThenBy(p => LoraModules.IndexOf(p.Key.Module.Role)))
            {
                if (a is null || b is null)
                {
                    string present = (a ?? b)!.Name;
                    string missing = module.PeftTensor(layer, isA: a is null);
                    throw new LoraFormatException(LoraErrorKind.MissingTensor, weightsPath, $"tensor {missing}", $"a partner for {present}", "none");
                }
                if (!config.IsTargeted(layer, module))
                {
                    string layers = config.LayersToTransform is null ? "" : $", layers_to_transform [{string.Join(", ", config.LayersToTransform)}]";
                    throw new LoraFormatException(LoraErrorKind.TargetMismatch, weightsPath, $"tensor {a.Name}",
                        $"only modules {PeftAdapterConfig.FileName} targets (target_modules {config.DescribeTargets()}{layers})", $"a tensor for {module.ModulePath(layer)}");
                }
                int rank = builder.CheckShapes(layer, module, a.Name, a.Shape, b.Name, b.Shape, config.RankOf(layer, module));
                checkedPairs.Add((layer, module, a, b, rank));
            }
            for (int layer = 0; layer < model.LayerCount; layer++)
            {
                foreach (LoraModule module in LoraModules.All)
                {
                    if (config.IsTargeted(layer, module) && !pairs.ContainsKey((layer, module)))
                    {
                        throw new LoraFormatException(LoraErrorKind.MissingTensor, weightsPath, $"tensor {module.PeftTensor(layer, isA: true)}",
                            $"lora_A and lora_B for every module {PeftAdapterConfig.FileName} targets", "none");
                    }
                }
            }

            // Shapes are all good: read the values (widened to f32).
            foreach ((int layer, LoraModule module, SafeTensorInfo a, SafeTensorInfo b, int rank) in checkedPairs)
            {
                builder.Add(layer, module, rank, config.ScaleOf(layer, module), a.Name, file.ReadFloats(a.Name), b.Name, file.ReadFloats(b.Name));
            }
            string rule = config.UseRsLora ? "rsLoRA s=alpha/sqrt(r)" : "s=alpha/r";
            return builder.Build("PEFT", FormatScaling(rule, config.Alpha));
        }
    }

    /// <summary>ModelFormatException messages start with the file name, which LoraFormatException adds again.</summary>
    private static string StripFileName(string message)
    {
        int colon = message.IndexOf(": ", StringComparison.Ordinal);
        return colon >= 0 ? message[(colon + 2)..] : message;
    }
}
