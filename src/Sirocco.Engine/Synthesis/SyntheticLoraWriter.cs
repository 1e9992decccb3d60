// Writes synthetic LoRA adapters with seeded random A and B for a model shape: a PEFT directory (adapter_config.json
// + adapter_model.safetensors) or a llama.cpp GGUF adapter. Like synthetic models, every row comes from (seed, tensor,
// row) alone and q/k rows of B are written in each format's own order, so the PEFT and GGUF copies of one seed are the
// same adapter. Called by `sirocco synth-lora`, benchmarks and tests.

using System.Globalization;
using System.Text.Json;
using Sirocco.Engine.Formats.Gguf;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;
using Sirocco.Kernels.Quant;

namespace Sirocco.Engine.Synthesis;

/// <summary>What synthetic adapter to write.</summary>
public sealed record SyntheticLoraOptions
{
    /// <summary>Rank r of every adapted module.</summary>
    public int Rank { get; init; } = 8;

    /// <summary>lora_alpha.</summary>
    public double Alpha { get; init; } = 16;

    /// <summary>Scale by α/√r (PEFT <c>use_rslora</c>).</summary>
    public bool UseRsLora { get; init; }

    /// <summary>Projections adapted in every layer.</summary>
    public IReadOnlyList<LlamaTensorRole> Targets { get; init; } = [LlamaTensorRole.Query, LlamaTensorRole.Value];

    /// <summary>Element type of A and B in the file (F32, F16 or BF16).</summary>
    public SafeTensorDtype Dtype { get; init; } = SafeTensorDtype.F16;

    public ulong Seed { get; init; } = 1;

    /// <summary>Typical size of the delta s·B·A·x relative to the base output W·x, for a unit-RMS input.</summary>
    public double RelativeDelta { get; init; } = 0.05;
}

/// <summary>Writes synthetic LoRA adapters.</summary>
public static class SyntheticLoraWriter
{
    /// <summary>Writes a PEFT adapter directory for a model of shape <paramref name="config"/>.</summary>
    /// <exception cref="ArgumentException">Invalid options (rank below 1, no targets, a role LoRA does not adapt,
    /// a dtype other than F32/F16/BF16).</exception>
    public static void WritePeft(string directory, ModelConfig config, SyntheticLoraOptions options)
    {
        LoraModule[] modules = Check(config, options);
        Directory.CreateDirectory(directory);
        var declarations = new List<SafeTensorDeclaration>();
        for (int layer = 0; layer < config.LayerCount; layer++)
        {
            foreach (LoraModule module in modules)
            {
                (int outputs, int inputs) = Shape(config, module);
                declarations.Add(new(module.PeftTensor(layer, isA: true), options.Dtype, [options.Rank, inputs]));
                declarations.Add(new(module.PeftTensor(layer, isA: false), options.Dtype, [outputs, options.Rank]));
            }
        }
        var weights = new SyntheticWeights(options.Seed);
        string path = Path.Combine(directory, LoraAdapter.PeftWeightsFileName);
        using (var writer = SafeTensorWriter.Create(path, declarations))
        {
            for (int layer = 0; layer < config.LayerCount; layer++)
            {
                foreach (LoraModule module in modules)
                {
                    writer.WriteTensorFloats(module.PeftTensor(layer, isA: true), MatrixA(config, options, weights, module, layer));
                    writer.WriteTensorFloats(module.PeftTensor(layer, isA: false), MatrixB(config, options, weights, module, layer, ggufOrder: false));
                }
            }
            writer.Complete();
        }
        var json = new Dictionary<string, object?>
        {
            ["alpha_pattern"] = new Dictionary<string, object>(),
            ["base_model_name_or_path"] = "mistralai/Mistral-7B-Instruct-v0.2",
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["layers_pattern"] = null,
            ["layers_to_transform"] = null,
            ["lora_alpha"] = options.Alpha,
            ["lora_dropout"] = 0.0,
            ["model_type"] = "mistral",
            ["modules_to_save"] = null,
            ["peft_type"] = "LORA",
            ["r"] = options.Rank,
            ["rank_pattern"] = new Dictionary<string, object>(),
            ["target_modules"] = modules.Select(m => m.PeftName).ToArray(),
            ["task_type"] = "CAUSAL_LM",
            ["use_dora"] = false,
            ["use_rslora"] = options.UseRsLora,
        };
        File.WriteAllText(Path.Combine(directory, "adapter_config.json"), JsonSerializer.Serialize(json, s_indented) + "\n");
    }

    /// <summary>Writes a llama.cpp GGUF adapter for a model of shape <paramref name="config"/>. GGUF adapters have no
    /// rsLoRA flag (llama.cpp always scales by α/r), so with <see cref="SyntheticLoraOptions.UseRsLora"/> the file
    /// stores α·√r, which gives the same scale α/√r.</summary>
    public static void WriteGguf(string path, ModelConfig config, SyntheticLoraOptions options)
    {
        LoraModule[] modules = Check(config, options);
        GgmlType type = options.Dtype switch
        {
            SafeTensorDtype.F32 => GgmlType.F32,
            SafeTensorDtype.BF16 => GgmlType.BF16,
            _ => GgmlType.F16,
        };
        double alpha = options.UseRsLora ? options.Alpha * Math.Sqrt(options.Rank) : options.Alpha;
        var writer = new GgufWriter();
        writer.Add("general.architecture", "llama");
        writer.Add("general.type", "adapter");
        writer.Add("general.name", "sirocco-synthetic-lora");
        writer.Add("adapter.type", "lora");
        writer.Add("adapter.lora.alpha", (float)alpha);
        for (int layer = 0; layer < config.LayerCount; layer++)
        {
            foreach (LoraModule module in modules)
            {
                (int outputs, int inputs) = Shape(config, module);
                writer.AddTensor(module.GgufTensor(layer, isA: true), type, inputs, options.Rank);
                writer.AddTensor(module.GgufTensor(layer, isA: false), type, options.Rank, outputs);
            }
        }
        var weights = new SyntheticWeights(options.Seed);
        using GgufDataWriter data = writer.Begin(path);
        for (int layer = 0; layer < config.LayerCount; layer++)
        {
            foreach (LoraModule module in modules)
            {
                foreach (float[] values in (float[][])[MatrixA(config, options, weights, module, layer), MatrixB(config, options, weights, module, layer, ggufOrder: true)])
                {
                    var bytes = new byte[GgmlTypes.Get(type).RowBytes(values.Length)];
                    Quantize.Row(type, values, bytes);
                    data.Write(bytes);
                }
            }
        }
        data.Complete();
    }

    private static readonly JsonSerializerOptions s_indented = new() { WriteIndented = true };

    /// <summary>A [r × in], rows ~ N(0, 1/in) like the model's own projections, so A·x has unit-scale entries.</summary>
    private static float[] MatrixA(ModelConfig config, SyntheticLoraOptions options, SyntheticWeights weights, LoraModule module, int layer)
    {
        (_, int inputs) = Shape(config, module);
        var spec = new LlamaTensor(module.GgufTensor(layer, true), module.PeftTensor(layer, true), module.Role, layer, options.Rank, inputs);
        var values = new float[options.Rank * inputs];
        for (int j = 0; j < options.Rank; j++)
        {
            weights.FillRow(spec, j, values.AsSpan(j * inputs, inputs));
        }
        return values;
    }

    /// <summary>B [out × r], rows ~ N(0, 1/r) scaled so that s·B·(A·x) is about <see cref="SyntheticLoraOptions.RelativeDelta"/>
    /// of W·x; row o of the file is Hugging Face row o, or for q/k in GGUF order the HF row it holds.</summary>
    private static float[] MatrixB(ModelConfig config, SyntheticLoraOptions options, SyntheticWeights weights, LoraModule module, int layer, bool ggufOrder)
    {
        (int outputs, _) = Shape(config, module);
        int r = options.Rank;
        double scale = options.UseRsLora ? options.Alpha / Math.Sqrt(r) : options.Alpha / r;
        float factor = (float)(options.RelativeDelta / Math.Max(Math.Abs(scale), 1e-30));
        var spec = new LlamaTensor(module.GgufTensor(layer, false), module.PeftTensor(layer, false), module.Role, layer, outputs, r);
        bool rotary = module.Role is LlamaTensorRole.Query or LlamaTensorRole.Key;
        var values = new float[outputs * r];
        for (int row = 0; row < outputs; row++)
        {
            long source = ggufOrder && rotary ? RopeRowOrder.HfRowOfGgufRow(row, config.HeadDim) : row;
            Span<float> destination = values.AsSpan(row * r, r);
            weights.FillRow(spec, source, destination);
            for (int j = 0; j < r; j++)
            {
                destination[j] *= factor;
            }
        }
        return values;
    }

    private static LoraModule[] Check(ModelConfig config, SyntheticLoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Rank, 1, nameof(options));
        if (options.Targets.Count == 0 || options.Targets.Any(role => LoraModules.IndexOf(role) < 0))
        {
            throw new ArgumentException($"targets must be among {LoraModules.PeftNames}: {string.Join(", ", options.Targets)}", nameof(options));
        }
        if (!options.Dtype.IsSupportedWeight())
        {
            throw new ArgumentException($"adapter tensors are F32, F16 or BF16, not {options.Dtype}", nameof(options));
        }
        return [.. LoraModules.All.Where(m => options.Targets.Contains(m.Role))];
    }

    /// <summary>(out, in) of a projection in a model of shape <paramref name="config"/>.</summary>
    internal static (int Outputs, int Inputs) Shape(ModelConfig config, LoraModule module)
    {
        int qDim = config.HeadCount * config.HeadDim, kvDim = config.KvHeadCount * config.HeadDim;
        return module.Role switch
        {
            LlamaTensorRole.Query => (qDim, config.ModelDim),
            LlamaTensorRole.Key or LlamaTensorRole.Value => (kvDim, config.ModelDim),
            LlamaTensorRole.AttentionOutput => (config.ModelDim, qDim),
            LlamaTensorRole.Gate or LlamaTensorRole.Up => (config.HiddenDim, config.ModelDim),
            _ => (config.ModelDim, config.HiddenDim),
        };
    }

    /// <summary>Parses "q,k,v,o", "qkvo", "all", "attn", "mlp" or PEFT names ("q_proj,v_proj") into roles.</summary>
    /// <exception cref="ArgumentException">An unknown name.</exception>
    public static IReadOnlyList<LlamaTensorRole> ParseTargets(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var roles = new List<LlamaTensorRole>();
        foreach (string raw in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string part = raw.ToLowerInvariant();
            IEnumerable<LlamaTensorRole> found = part switch
            {
                "all" or "all-linear" => LoraModules.All.Select(m => m.Role),
                "attn" or "attention" or "qkvo" => [LlamaTensorRole.Query, LlamaTensorRole.Key, LlamaTensorRole.Value, LlamaTensorRole.AttentionOutput],
                "mlp" or "ffn" => [LlamaTensorRole.Gate, LlamaTensorRole.Up, LlamaTensorRole.Down],
                "q" => [LlamaTensorRole.Query],
                "k" => [LlamaTensorRole.Key],
                "v" => [LlamaTensorRole.Value],
                "o" => [LlamaTensorRole.AttentionOutput],
                "gate" => [LlamaTensorRole.Gate],
                "up" => [LlamaTensorRole.Up],
                "down" => [LlamaTensorRole.Down],
                _ => LoraModules.FindPeft(part) is { } module ? [module.Role]
                    : throw new ArgumentException($"unknown target \"{raw}\": use q, k, v, o, gate, up, down, attn, mlp, all or {LoraModules.PeftNames}", nameof(text)),
            };
            roles.AddRange(found);
        }
        if (roles.Count == 0)
        {
            throw new ArgumentException("no targets given", nameof(text));
        }
        return [.. LoraModules.All.Select(m => m.Role).Where(roles.Contains)];
    }
}
