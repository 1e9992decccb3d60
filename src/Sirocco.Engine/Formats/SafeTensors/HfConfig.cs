// Hugging Face config.json ⇄ ModelConfig for Mistral/Llama decoders (transformers MistralConfig / LlamaConfig keys).
// The safetensors model loader reads a checkpoint's config here; the synthetic-model builder writes one with ToJson.

using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Sirocco.Engine.Model;

namespace Sirocco.Engine.Formats.SafeTensors;

/// <summary>Reads and writes the <c>config.json</c> of a Hugging Face Mistral or Llama checkpoint.</summary>
public static class HfConfig
{
    /// <summary>The file name transformers uses.</summary>
    public const string FileName = "config.json";

    /// <summary>Largest config.json accepted; real ones are about a kilobyte.</summary>
    public const long MaxFileBytes = 16 << 20;

    private static readonly string[] s_architectures = ["MistralForCausalLM", "LlamaForCausalLM"];
    private static readonly string[] s_modelTypes = ["mistral", "llama"];

    /// <summary>Reads <paramref name="pathOrDirectory"/>: a config.json file, or a directory containing one.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="ModelFormatException">Malformed JSON, a required key missing, or a value of the wrong type
    /// or out of range; the message names the file and the key.</exception>
    /// <exception cref="UnsupportedModelException">Another architecture or model type, rope_scaling, an activation
    /// other than silu, or attention/MLP biases.</exception>
    public static ModelConfig Load(string pathOrDirectory)
    {
        string path = Directory.Exists(pathOrDirectory) ? Path.Combine(pathOrDirectory, FileName) : pathOrDirectory;
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new FileNotFoundException($"{path}: no such file", path);
        }
        if (info.Length > MaxFileBytes)
        {
            throw new ModelFormatException(path, "config", 0, $"at most {MaxFileBytes} bytes", $"{info.Length} bytes");
        }
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <inheritdoc cref="Parse(ReadOnlySpan{byte}, string)"/>
    public static ModelConfig Parse(string json, string path = FileName) => Parse(Encoding.UTF8.GetBytes(json), path);

    /// <summary>
    /// Maps config.json keys onto <see cref="ModelConfig"/>: hidden_size → ModelDim, intermediate_size → HiddenDim,
    /// num_hidden_layers → LayerCount, num_attention_heads → HeadCount, num_key_value_heads → KvHeadCount (default:
    /// HeadCount), head_dim (default: hidden_size / heads), vocab_size, max_position_embeddings → ContextLength,
    /// rope_theta (default 10000), rms_norm_eps, sliding_window (absent or null: none), tie_word_embeddings (default
    /// false), bos/eos_token_id (default 1/2; a list of eos ids yields the first). <paramref name="path"/> names the
    /// source in errors.
    /// </summary>
    /// <exception cref="ModelFormatException">Malformed JSON (duplicate keys included), a missing required key, a
    /// value of the wrong type, or numbers that fail <see cref="ModelConfig.Problems"/>.</exception>
    /// <exception cref="UnsupportedModelException">See <see cref="Load"/>.</exception>
    public static ModelConfig Parse(ReadOnlySpan<byte> json, string path = FileName)
    {
        if (json.StartsWith(Encoding.UTF8.Preamble))
        {
            json = json[Encoding.UTF8.Preamble.Length..];
        }
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            throw new ModelFormatException(path, "config", -1, "UTF-8 text", "invalid UTF-8");
        }
        JsonDocument document;
        try
        {
            // JsonDocument.Parse needs memory it can keep; the config is small, so copy it.
            document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { AllowDuplicateProperties = false, MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, "config JSON", -1, "well-formed JSON without duplicate keys", e.Message);
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new ModelFormatException(path, "config", -1, "a JSON object", root.ValueKind.ToString());
            }
            return Read(new Keys(path, root));
        }
    }

    /// <summary>
    /// A config.json for <paramref name="config"/> as a MistralForCausalLM, with the keys and formatting transformers
    /// writes (for Mistral-7B-Instruct-v0.2 it reproduces the published file), so a synthetic checkpoint looks real. <paramref name="torchDtype"/> is the dtype of the weights written
    /// beside it (<c>bfloat16</c>, <c>float16</c> or <c>float32</c>).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="config"/> has problems (<see cref="ModelConfig.Problems"/>).</exception>
    public static string ToJson(ModelConfig config, string torchDtype = "bfloat16")
    {
        ArgumentNullException.ThrowIfNull(config);
        IReadOnlyList<string> problems = config.Problems();
        if (problems.Count > 0)
        {
            throw new ArgumentException($"cannot write config.json: {string.Join("; ", problems)}", nameof(config));
        }
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, NewLine = "\n", Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            // Keys in the sorted order transformers writes them.
            json.WriteStartObject();
            json.WriteStartArray("architectures");
            json.WriteStringValue("MistralForCausalLM");
            json.WriteEndArray();
            WritePythonFloat(json, "attention_dropout", 0.0);
            json.WriteNumber("bos_token_id", config.BosId);
            json.WriteNumber("eos_token_id", config.EosId);
            if (config.HeadCount * config.HeadDim != config.ModelDim)
            {
                json.WriteNumber("head_dim", config.HeadDim);
            }
            json.WriteString("hidden_act", "silu");
            json.WriteNumber("hidden_size", config.ModelDim);
            WritePythonFloat(json, "initializer_range", 0.02);
            json.WriteNumber("intermediate_size", config.HiddenDim);
            json.WriteNumber("max_position_embeddings", config.ContextLength);
            json.WriteString("model_type", "mistral");
            json.WriteNumber("num_attention_heads", config.HeadCount);
            json.WriteNumber("num_hidden_layers", config.LayerCount);
            json.WriteNumber("num_key_value_heads", config.KvHeadCount);
            WritePythonFloat(json, "rms_norm_eps", config.RmsNormEps);
            WritePythonFloat(json, "rope_theta", config.RopeTheta);
            if (config.SlidingWindow is int window)
            {
                json.WriteNumber("sliding_window", window);
            }
            else
            {
                json.WriteNull("sliding_window");
            }
            json.WriteBoolean("tie_word_embeddings", config.TiedEmbeddings);
            json.WriteString("torch_dtype", torchDtype);
            json.WriteString("transformers_version", "4.36.0");
            json.WriteBoolean("use_cache", true);
            json.WriteNumber("vocab_size", config.VocabSize);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan) + "\n";
    }

    /// <summary>Writes <see cref="ToJson"/> to <paramref name="pathOrDirectory"/> (a directory gets config.json).</summary>
    public static void Save(ModelConfig config, string pathOrDirectory, string torchDtype = "bfloat16")
    {
        string path = Directory.Exists(pathOrDirectory) ? Path.Combine(pathOrDirectory, FileName) : pathOrDirectory;
        File.WriteAllText(path, ToJson(config, torchDtype), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
    }

    private static ModelConfig Read(Keys keys)
    {
        string path = keys.Path;
        string[] architectures = keys.RequiredStrings("architectures");
        if (!architectures.Any(a => s_architectures.Contains(a)))
        {
            throw new UnsupportedModelException(
                $"{Path.GetFileName(path)}: architectures [{string.Join(", ", architectures)}] is not supported; expected MistralForCausalLM or LlamaForCausalLM");
        }
        string modelType = keys.RequiredString("model_type");
        if (!s_modelTypes.Contains(modelType))
        {
            throw new UnsupportedModelException($"{Path.GetFileName(path)}: model_type \"{modelType}\" is not supported; expected mistral or llama");
        }
        if (keys.Has("rope_scaling"))
        {
            throw new UnsupportedModelException(
                $"{Path.GetFileName(path)}: rope_scaling {keys.Raw("rope_scaling")} is not supported; only plain RoPE (rope_scaling null)");
        }
        string activation = keys.OptionalString("hidden_act") ?? "silu";
        if (activation != "silu")
        {
            throw new UnsupportedModelException($"{Path.GetFileName(path)}: hidden_act \"{activation}\" is not supported; expected silu");
        }
        foreach (string bias in (string[])["attention_bias", "mlp_bias"])
        {
            if (keys.OptionalBool(bias) == true)
            {
                throw new UnsupportedModelException($"{Path.GetFileName(path)}: {bias} true is not supported; Mistral/Llama layers have no biases");
            }
        }

        int modelDim = keys.RequiredInt("hidden_size");
        int headCount = keys.RequiredInt("num_attention_heads");
        if (headCount <= 0)
        {
            throw new ModelFormatException(path, "num_attention_heads", -1, "a positive integer", $"{headCount}");
        }
        int headDim = keys.OptionalInt("head_dim") ?? modelDim / headCount;
        int? slidingWindow = keys.OptionalInt("sliding_window");
        if (slidingWindow <= 0)
        {
            throw new ModelFormatException(path, "sliding_window", -1, "null or a positive integer", $"{slidingWindow}");
        }
        var config = new ModelConfig
        {
            Architecture = "llama",
            ModelDim = modelDim,
            HiddenDim = keys.RequiredInt("intermediate_size"),
            LayerCount = keys.RequiredInt("num_hidden_layers"),
            HeadCount = headCount,
            KvHeadCount = keys.OptionalInt("num_key_value_heads") ?? headCount,
            HeadDim = headDim,
            RopeDim = headDim,
            VocabSize = keys.RequiredInt("vocab_size"),
            ContextLength = keys.RequiredInt("max_position_embeddings"),
            RopeTheta = (float)(keys.OptionalNumber("rope_theta") ?? 10000.0),
            RmsNormEps = (float)keys.RequiredNumber("rms_norm_eps"),
            SlidingWindow = slidingWindow,
            TiedEmbeddings = keys.OptionalBool("tie_word_embeddings") ?? false,
            BosId = keys.OptionalTokenId("bos_token_id") ?? 1,
            EosId = keys.OptionalTokenId("eos_token_id") ?? 2,
        };
        IReadOnlyList<string> problems = config.Problems();
        if (problems.Count > 0)
        {
            throw new ModelFormatException(path, "config", -1, "hyperparameters of a runnable model", string.Join("; ", problems));
        }
        return config;
    }

    /// <summary>
    /// Writes a float as Python's json module does (transformers writes config.json with it): the shortest decimal
    /// that round-trips the float32 value, with a ".0" on whole numbers and a lower-case exponent, so 1e-5f is
    /// written as 1e-05 and 1e6f as 1000000.0 rather than 9.99999974737875E-06 and 1000000.
    /// </summary>
    private static void WritePythonFloat(Utf8JsonWriter json, string key, double value)
    {
        string text = value.ToString("R", CultureInfo.InvariantCulture);
        text = text.Contains('E', StringComparison.Ordinal) ? text.Replace('E', 'e')
            : text.Contains('.', StringComparison.Ordinal) ? text
            : text + ".0";
        json.WritePropertyName(key);
        json.WriteRawValue(text);
    }

    private static void WritePythonFloat(Utf8JsonWriter json, string key, float value) =>
        WritePythonFloat(json, key, double.Parse(value.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture));

    /// <summary>Typed access to the keys of the config object; every failure names the file and the key.</summary>
    private readonly struct Keys(string path, JsonElement root)
    {
        public string Path { get; } = path;

        /// <summary>Present and not null.</summary>
        public bool Has(string key) => root.TryGetProperty(key, out JsonElement value) && value.ValueKind != JsonValueKind.Null;

        public string Raw(string key) => Shorten(root.GetProperty(key).GetRawText());

        public int RequiredInt(string key) => OptionalInt(key) ?? throw Missing(key, "an integer");

        public int? OptionalInt(string key)
        {
            if (!TryGet(key, out JsonElement value))
            {
                return null;
            }
            return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int result) ? result : throw Wrong(key, "an integer", value);
        }

        public double RequiredNumber(string key) => OptionalNumber(key) ?? throw Missing(key, "a number");

        public double? OptionalNumber(string key)
        {
            if (!TryGet(key, out JsonElement value))
            {
                return null;
            }
            return value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out double result) && double.IsFinite(result)
                ? result
                : throw Wrong(key, "a finite number", value);
        }

        public bool? OptionalBool(string key)
        {
            if (!TryGet(key, out JsonElement value))
            {
                return null;
            }
            return value.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Wrong(key, "true or false", value),
            };
        }

        public string RequiredString(string key) => OptionalString(key) ?? throw Missing(key, "a string");

        public string? OptionalString(string key)
        {
            if (!TryGet(key, out JsonElement value))
            {
                return null;
            }
            return value.ValueKind == JsonValueKind.String ? value.GetString()! : throw Wrong(key, "a string", value);
        }

        public string[] RequiredStrings(string key)
        {
            if (!TryGet(key, out JsonElement value))
            {
                throw Missing(key, "an array of strings");
            }
            if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
            {
                throw Wrong(key, "an array of strings", value);
            }
            return [.. value.EnumerateArray().Select(e => e.GetString()!)];
        }

        /// <summary>A token id, or the first of a list of them (newer configs list several eos ids).</summary>
        public int? OptionalTokenId(string key)
        {
            if (!TryGet(key, out JsonElement value))
            {
                return null;
            }
            JsonElement id = value.ValueKind == JsonValueKind.Array && value.GetArrayLength() > 0 ? value[0] : value;
            return id.ValueKind == JsonValueKind.Number && id.TryGetInt32(out int result) && result >= 0
                ? result
                : throw Wrong(key, "a non-negative integer or a list of them", value);
        }

        private bool TryGet(string key, out JsonElement value) =>
            root.TryGetProperty(key, out value) && value.ValueKind != JsonValueKind.Null;

        private ModelFormatException Missing(string key, string expected) => new(Path, key, -1, expected, "no such key");

        private ModelFormatException Wrong(string key, string expected, JsonElement value) =>
            new(Path, key, -1, expected, Shorten(value.GetRawText()));

        private static string Shorten(string text) => text.Length > 80 ? text[..80] + "…" : text;
    }
}
