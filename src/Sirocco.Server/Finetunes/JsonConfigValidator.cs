// The basic adapter check, without the engine: adapter_config.json is a JSON object with "model_type": "mistral" and a
// rank `r` from 1 to the configured maximum, and adapter_model.safetensors has a well-formed safetensors header whose
// tensors lie inside the file. Enough to refuse a wrong or truncated upload; the engine's loader checks shapes.

using System.Buffers.Binary;
using System.Text.Json;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Finetunes;

/// <summary>Checks an adapter's configuration and the safetensors header. Thread-safe.</summary>
public sealed class JsonConfigValidator : IAdapterValidator
{
    /// <summary>Workers AI's rank limit (research §5.1: "r &lt;= 8").</summary>
    public const int DefaultMaxRank = 8;

    /// <summary>Largest safetensors header read (the header of a rank-8 Mistral adapter is about 30 KB).</summary>
    private const long MaxHeaderBytes = 16L << 20;

    /// <summary>Largest adapter_config.json parsed (real ones are under 1 KB).</summary>
    private const long MaxConfigBytes = 1L << 20;

    /// <param name="maxRank">Largest LoRA rank <c>r</c> accepted.</param>
    public JsonConfigValidator(int maxRank = DefaultMaxRank)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRank);
        MaxRank = maxRank;
    }

    /// <summary>Largest LoRA rank accepted.</summary>
    public int MaxRank { get; }

    public void Validate(string configPath, string weightsPath)
    {
        ValidateConfig(configPath);
        ValidateWeights(weightsPath);
    }

    /// <summary>Checks adapter_config.json alone (the CLI checks a folder before creating anything).</summary>
    /// <exception cref="ApiException">400/5006 naming the key and the value found.</exception>
    public void ValidateConfig(string configPath)
    {
        const string File = Finetune.ConfigFileName;
        long length = new FileInfo(configPath).Length;
        if (length > MaxConfigBytes)
        {
            throw Bad($"{File} is {length} bytes; an adapter configuration is a small JSON object (at most {MaxConfigBytes} bytes)");
        }
        JsonDocument document;
        try
        {
            using var stream = System.IO.File.OpenRead(configPath);
            document = JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = false });
        }
        catch (JsonException e)
        {
            throw Bad($"{File} is not valid JSON: {e.Message}");
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Bad($"{File} must be a JSON object, found {Kind(root)}");
            }
            if (!root.TryGetProperty("model_type", out JsonElement modelType))
            {
                throw Bad($"{File} has no \"model_type\"; add \"model_type\": \"mistral\" (Workers AI requires it, and this server serves Mistral adapters)");
            }
            if (modelType.ValueKind != JsonValueKind.String || modelType.GetString() != "mistral")
            {
                throw Bad($"{File}: \"model_type\" is {Show(modelType)}; this server serves Mistral adapters only (\"model_type\": \"mistral\")");
            }
            if (!root.TryGetProperty("r", out JsonElement rank))
            {
                throw Bad($"{File} has no \"r\" (the LoRA rank); expected an integer from 1 to {MaxRank}");
            }
            if (rank.ValueKind != JsonValueKind.Number || !rank.TryGetInt64(out long r) || r < 1 || r > MaxRank)
            {
                throw Bad($"{File}: \"r\" is {Show(rank)}; expected an integer from 1 to {MaxRank} (the largest LoRA rank this server accepts)");
            }
        }
    }

    /// <summary>Checks the safetensors header of adapter_model.safetensors: an 8-byte little-endian length N, then N
    /// bytes of a JSON object mapping tensor names to {dtype, shape, data_offsets} inside the data that follows.</summary>
    /// <exception cref="ApiException">400/5006 naming what is wrong and where.</exception>
    public static void ValidateWeights(string weightsPath)
    {
        const string File = Finetune.WeightsFileName;
        using var stream = System.IO.File.OpenRead(weightsPath);
        long fileBytes = stream.Length;
        Span<byte> prefix = stackalloc byte[8];
        if (fileBytes < 8)
        {
            throw Bad($"{File} is {fileBytes} bytes, too short for a safetensors header (8-byte length, then JSON)");
        }
        stream.ReadExactly(prefix);
        ulong headerBytes = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerBytes < 2 || headerBytes > (ulong)(fileBytes - 8) || headerBytes > MaxHeaderBytes)
        {
            throw Bad($"{File} is not a safetensors file: its header length at offset 0 is {headerBytes}, but the file has {fileBytes - 8} bytes after it");
        }
        byte[] header = new byte[(int)headerBytes];
        stream.ReadExactly(header);
        long dataBytes = fileBytes - 8 - (long)headerBytes;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw Bad($"{File} is not a safetensors file: the header (bytes 8 to {8 + (long)headerBytes}) is not JSON: {e.Message}");
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Bad($"{File}: the safetensors header must be a JSON object, found {Kind(root)}");
            }
            int tensorCount = 0;
            foreach (JsonProperty tensor in root.EnumerateObject())
            {
                if (tensor.Name == "__metadata__")
                {
                    continue;
                }
                tensorCount++;
                JsonElement t = tensor.Value;
                if (t.ValueKind != JsonValueKind.Object
                    || !t.TryGetProperty("dtype", out JsonElement dtype) || dtype.ValueKind != JsonValueKind.String
                    || !t.TryGetProperty("shape", out JsonElement shape) || shape.ValueKind != JsonValueKind.Array
                    || !t.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array
                    || offsets.GetArrayLength() != 2)
                {
                    throw Bad($"{File}: tensor {tensor.Name} needs \"dtype\", \"shape\" and \"data_offsets\": [begin, end]");
                }
                if (!offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end) || begin < 0 || end < begin || end > dataBytes)
                {
                    throw Bad($"{File}: tensor {tensor.Name} has data_offsets {offsets.GetRawText()}, outside the {dataBytes} data bytes (the file may be truncated)");
                }
            }
            if (tensorCount == 0)
            {
                throw Bad($"{File} holds no tensors");
            }
        }
    }

    private static ApiException Bad(string message) => ApiException.BadInput("Bad input: " + message);

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "an object",
    };

    private static string Show(JsonElement e)
    {
        string text = e.GetRawText();
        return text.Length <= 40 ? text : text[..40] + "…";
    }
}
