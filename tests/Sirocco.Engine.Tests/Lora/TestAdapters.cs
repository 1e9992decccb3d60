// Test adapters with seeded random A and B, written as PEFT directories (adapter_config.json + safetensors through
// SafeTensorWriter) or llama.cpp GGUF files (through GgufWriter), plus raw writers for hostile files. The values stay in
// memory in Hugging Face (PEFT) row order, so MergedModels can fold them into a model independently of the loader.

using System.Text.Json;
using System.Text.Json.Nodes;
using Sirocco.Engine.Formats.Gguf;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;
using Sirocco.Kernels.Quant;

namespace Sirocco.Engine.Tests.Lora;

/// <summary>One adapted projection: A [Rank × in] and B [out × Rank] row-major, B in Hugging Face row order, and the
/// scale the test expects the loader to derive.</summary>
internal sealed record TestModule(int Layer, LoraModule Module, int Rank, double Scale, float[] A, float[] B);

/// <summary>A tensor written as given (hostile files).</summary>
internal sealed record RawTensor(string Name, SafeTensorDtype Dtype, long[] Shape, float[] Values);

/// <summary>A random LoRA adapter for a model shape, and its files.</summary>
internal sealed class TestAdapter
{
    private TestAdapter(ModelConfig model, JsonObject config, List<TestModule> modules, double alpha, bool useRsLora)
    {
        Model = model;
        Config = config;
        Modules = modules;
        Alpha = alpha;
        UseRsLora = useRsLora;
    }

    public ModelConfig Model { get; }

    /// <summary>adapter_config.json as it will be written (tests edit it).</summary>
    public JsonObject Config { get; }

    public List<TestModule> Modules { get; }

    public double Alpha { get; }

    public bool UseRsLora { get; }

    /// <summary>An adapter of rank <paramref name="rank"/> on <paramref name="roles"/> in every layer (or
    /// <paramref name="layers"/>), with α = <paramref name="alpha"/>. <paramref name="rankPattern"/> and
    /// <paramref name="alphaPattern"/> are written into the config; <paramref name="resolve"/> gives each module's
    /// (rank, alpha) as the test expects PEFT to resolve those patterns.</summary>
    public static TestAdapter Random(ModelConfig model, IEnumerable<LlamaTensorRole> roles, ulong seed, int rank = 8, double alpha = 16,
        bool useRsLora = false, int[]? layers = null, Dictionary<string, int>? rankPattern = null, Dictionary<string, double>? alphaPattern = null,
        Func<int, LoraModule, (int Rank, double Alpha)>? resolve = null, double relativeDelta = 0.1)
    {
        LoraModule[] modules = [.. LoraModules.All.Where(m => roles.Contains(m.Role))];
        var random = new Random((int)seed);
        var list = new List<TestModule>();
        for (int layer = 0; layer < model.LayerCount; layer++)
        {
            if (layers is not null && !layers.Contains(layer))
            {
                continue;
            }
            foreach (LoraModule module in modules)
            {
                (int r, double a) = resolve?.Invoke(layer, module) ?? (rank, alpha);
                double scale = useRsLora ? a / Math.Sqrt(r) : a / r;
                (int outputs, int inputs) = Shape(model, module.Role);
                // A ~ U(±√3/√in): unit-variance rows of A·x for a unit-RMS x. B sized so that s·B·A·x ≈ relativeDelta.
                float[] a1 = Uniform(random, r * inputs, Math.Sqrt(3.0 / inputs));
                float[] b1 = Uniform(random, outputs * r, relativeDelta * Math.Sqrt(3.0 / r) / scale);
                list.Add(new TestModule(layer, module, r, scale, a1, b1));
            }
        }
        var config = new JsonObject
        {
            ["base_model_name_or_path"] = "mistralai/Mistral-7B-Instruct-v0.2",
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["layers_to_transform"] = layers is null ? null : new JsonArray([.. layers.Select(l => (JsonNode)l)]),
            ["lora_alpha"] = alpha,
            ["lora_dropout"] = 0.05,
            ["model_type"] = "mistral",
            ["peft_type"] = "LORA",
            ["r"] = rank,
            ["rank_pattern"] = JsonSerializer.SerializeToNode(rankPattern ?? []),
            ["alpha_pattern"] = JsonSerializer.SerializeToNode(alphaPattern ?? []),
            ["target_modules"] = new JsonArray([.. modules.Select(m => (JsonNode)m.PeftName)]),
            ["task_type"] = "CAUSAL_LM",
            ["use_rslora"] = useRsLora,
        };
        return new TestAdapter(model, config, list, alpha, useRsLora);
    }

    /// <summary>The PEFT tensors: lora_A [r, in] and lora_B [out, r] of every module.</summary>
    public List<RawTensor> PeftTensors(SafeTensorDtype dtype = SafeTensorDtype.F32) =>
    [
        .. Modules.SelectMany(m => new[]
        {
            new RawTensor(m.Module.PeftTensor(m.Layer, isA: true), dtype, [m.Rank, m.A.Length / m.Rank], m.A),
            new RawTensor(m.Module.PeftTensor(m.Layer, isA: false), dtype, [m.B.Length / m.Rank, m.Rank], m.B),
        }),
    ];

    /// <summary>Writes adapter_config.json and adapter_model.safetensors into <paramref name="directory"/>.</summary>
    public string WritePeft(string directory, SafeTensorDtype dtype = SafeTensorDtype.F32) =>
        WritePeft(directory, Config, PeftTensors(dtype));

    /// <summary>Writes a PEFT directory from a config and tensors as given.</summary>
    public static string WritePeft(string directory, JsonNode config, IEnumerable<RawTensor> tensors)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "adapter_config.json"), config.ToJsonString());
        WriteSafeTensors(Path.Combine(directory, LoraAdapter.PeftWeightsFileName), tensors);
        return directory;
    }

    public static void WriteSafeTensors(string path, IEnumerable<RawTensor> tensors)
    {
        RawTensor[] all = [.. tensors];
        using var writer = SafeTensorWriter.Create(path, all.Select(t => new SafeTensorDeclaration(t.Name, t.Dtype, t.Shape)));
        foreach (RawTensor t in all)
        {
            if (t.Dtype.IsSupportedWeight())
            {
                writer.WriteTensorFloats(t.Name, t.Values);
            }
            else
            {
                writer.WriteTensor(t.Name, new byte[t.Dtype.ByteCount(t.Values.Length)]);
            }
        }
        writer.Complete();
    }

    /// <summary>Writes the adapter as llama.cpp does: lora_a ggml [in, r], lora_b ggml [r, out] with B's q/k rows in
    /// GGUF order, and adapter.lora.alpha. Only uniform-rank, non-rsLoRA adapters map onto GGUF's α/r exactly.</summary>
    public string WriteGguf(string path, GgmlType type = GgmlType.F32)
    {
        Assert.False(UseRsLora);
        Assert.Single(Modules.Select(m => m.Rank).Distinct());
        var tensors = new List<(string, GgmlType, long[], float[])>();
        foreach (TestModule m in Modules)
        {
            int outputs = m.B.Length / m.Rank, inputs = m.A.Length / m.Rank;
            bool rotary = m.Module.Role is LlamaTensorRole.Query or LlamaTensorRole.Key;
            var b = new float[m.B.Length];
            for (int row = 0; row < outputs; row++)
            {
                long source = rotary ? RopeRowOrder.HfRowOfGgufRow(row, Model.HeadDim) : row;
                Array.Copy(m.B, source * m.Rank, b, row * m.Rank, m.Rank);
            }
            tensors.Add((m.Module.GgufTensor(m.Layer, isA: true), type, [inputs, m.Rank], m.A));
            tensors.Add((m.Module.GgufTensor(m.Layer, isA: false), type, [m.Rank, outputs], b));
        }
        WriteGguf(path, AdapterMetadata((float)Alpha), tensors);
        return path;
    }

    /// <summary>The metadata llama.cpp's converter writes for a LoRA adapter.</summary>
    public static List<(string Key, GgufValue Value)> AdapterMetadata(float? alpha, string architecture = "llama", string type = "adapter", string adapterType = "lora")
    {
        var metadata = new List<(string, GgufValue)>
        {
            ("general.architecture", GgufValue.Of(architecture)),
            ("general.type", GgufValue.Of(type)),
            ("adapter.type", GgufValue.Of(adapterType)),
        };
        if (alpha is float a)
        {
            metadata.Add(("adapter.lora.alpha", GgufValue.Of(a)));
        }
        return metadata;
    }

    /// <summary>Writes a GGUF file; dimensions in ggml order; values converted to each tensor's type.</summary>
    public static void WriteGguf(string path, IEnumerable<(string Key, GgufValue Value)> metadata, IEnumerable<(string Name, GgmlType Type, long[] Dimensions, float[] Values)> tensors)
    {
        var writer = new GgufWriter();
        foreach ((string key, GgufValue value) in metadata)
        {
            writer.Add(key, value);
        }
        var data = new Dictionary<string, byte[]>();
        foreach ((string name, GgmlType type, long[] dims, float[] values) in tensors)
        {
            writer.AddTensor(name, type, dims);
            var bytes = new byte[GgmlTypes.Get(type).RowBytes(values.Length)];
            Quantize.Row(type, values, bytes);
            data[name] = bytes;
        }
        writer.WriteFile(path, data);
    }

    /// <summary>(out, in) of a projection.</summary>
    public static (int Outputs, int Inputs) Shape(ModelConfig model, LlamaTensorRole role)
    {
        int qDim = model.HeadCount * model.HeadDim, kvDim = model.KvHeadCount * model.HeadDim;
        return role switch
        {
            LlamaTensorRole.Query => (qDim, model.ModelDim),
            LlamaTensorRole.Key or LlamaTensorRole.Value => (kvDim, model.ModelDim),
            LlamaTensorRole.AttentionOutput => (model.ModelDim, qDim),
            LlamaTensorRole.Gate or LlamaTensorRole.Up => (model.HiddenDim, model.ModelDim),
            _ => (model.ModelDim, model.HiddenDim),
        };
    }

    private static float[] Uniform(Random random, int count, double bound)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = (float)((random.NextDouble() * 2 - 1) * bound);
        }
        return values;
    }
}
