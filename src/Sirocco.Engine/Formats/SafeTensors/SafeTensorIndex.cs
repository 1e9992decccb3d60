// The index of a sharded checkpoint, model.safetensors.index.json: {"metadata": {"total_size": bytes}, "weight_map":
// {tensor name: shard file name}}. SafeTensorCheckpoint reads it; ShardedSafeTensorWriter writes it.

using System.Text;
using System.Text.Json;

namespace Sirocco.Engine.Formats.SafeTensors;

/// <summary>A parsed, validated <c>model.safetensors.index.json</c>.</summary>
internal sealed class SafeTensorIndex
{
    /// <summary>Largest index accepted; real ones are tens of kilobytes.</summary>
    public const long MaxIndexBytes = 100_000_000;

    private SafeTensorIndex(long? totalBytes, List<KeyValuePair<string, string>> weightMap)
    {
        TotalBytes = totalBytes;
        WeightMap = weightMap;
    }

    /// <summary><c>metadata.total_size</c>, when present: the bytes of tensor data over all shards.</summary>
    public long? TotalBytes { get; }

    /// <summary>Tensor name → shard file name, in file order. Names are unique; shard names are plain file names.</summary>
    public List<KeyValuePair<string, string>> WeightMap { get; }

    /// <summary>Reads and validates the index at <paramref name="path"/>.</summary>
    /// <exception cref="ModelFormatException">The index is malformed, or names a shard outside its directory.</exception>
    public static SafeTensorIndex Load(string path)
    {
        long length = new FileInfo(path).Length;
        if (length > MaxIndexBytes)
        {
            throw new ModelFormatException(path, "index", 0, $"at most {MaxIndexBytes} bytes", $"{length} bytes");
        }
        return Parse(path, File.ReadAllBytes(path));
    }

    /// <summary>Parses index JSON read from <paramref name="path"/>.</summary>
    /// <exception cref="ModelFormatException">The index is malformed, or names a shard outside its directory.</exception>
    public static SafeTensorIndex Parse(string path, ReadOnlySpan<byte> json)
    {
        if (json.StartsWith(Encoding.UTF8.Preamble))
        {
            json = json[Encoding.UTF8.Preamble.Length..];
        }
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            throw new ModelFormatException(path, "index", -1, "UTF-8 text", "invalid UTF-8");
        }
        long? totalBytes = null;
        List<KeyValuePair<string, string>>? weightMap = null;
        var reader = new Utf8JsonReader(json);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw Fail(path, "index", ref reader, "a JSON object");
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string key = reader.GetString()!;
                if (key == "metadata")
                {
                    totalBytes = ReadMetadata(path, ref reader);
                }
                else if (key == "weight_map")
                {
                    if (weightMap is not null)
                    {
                        throw Fail(path, "weight_map", ref reader, "one weight_map", "a second one");
                    }
                    weightMap = ReadWeightMap(path, ref reader);
                }
                else
                {
                    reader.Skip();
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                throw Fail(path, "index", ref reader, "a key or the end of the index object");
            }
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, "index JSON", -1, "well-formed JSON", e.Message);
        }
        catch (InvalidOperationException e)
        {
            throw new ModelFormatException(path, "index JSON", reader.TokenStartIndex, "a valid JSON string", e.Message);
        }
        if (weightMap is null)
        {
            throw new ModelFormatException(path, "weight_map", -1, "a weight_map object of tensor name → shard file", "none");
        }
        return new SafeTensorIndex(totalBytes, weightMap);
    }

    /// <summary>Writes an index in the layout transformers writes (two-space indent, sorted tensor names).</summary>
    public static void Write(string path, long totalBytes, IEnumerable<KeyValuePair<string, string>> weightMap)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions
        {
            Indented = true,
            NewLine = "\n",
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("metadata");
            writer.WriteNumber("total_size", totalBytes);
            writer.WriteEndObject();
            writer.WriteStartObject("weight_map");
            foreach (var (tensor, shard) in weightMap.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                writer.WriteString(tensor, shard);
            }
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        string temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(buffer.WrittenSpan);
            stream.WriteByte((byte)'\n');
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>
    /// True when <paramref name="shard"/> is a plain file name: no directory separators, no drive, no "..", so that an
    /// index can never make the reader open a file outside its own directory.
    /// </summary>
    public static bool IsPlainFileName(string shard) =>
        shard.Length > 0
        && shard != "."
        && !shard.Contains("..", StringComparison.Ordinal)
        && shard.IndexOfAny(['/', '\\', ':', '\0']) < 0
        && !Path.IsPathRooted(shard);

    private static long? ReadMetadata(string path, ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw Fail(path, "metadata", ref reader, "an object");
        }
        long? totalBytes = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            reader.Read();
            if (key != "total_size")
            {
                reader.Skip();
                continue;
            }
            // transformers writes an integer; some tools write a float such as 14483464192.0.
            if (reader.TokenType != JsonTokenType.Number)
            {
                throw Fail(path, "metadata.total_size", ref reader, "a byte count");
            }
            if (reader.TryGetInt64(out long integer) && integer >= 0)
            {
                totalBytes = integer;
            }
            else if (reader.TryGetDouble(out double real) && real >= 0 && real < 9e18 && real == Math.Floor(real))
            {
                totalBytes = (long)real;
            }
            else
            {
                throw Fail(path, "metadata.total_size", ref reader, "a non-negative whole byte count");
            }
        }
        return totalBytes;
    }

    private static List<KeyValuePair<string, string>> ReadWeightMap(string path, ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw Fail(path, "weight_map", ref reader, "an object of tensor name → shard file");
        }
        var map = new List<KeyValuePair<string, string>>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string tensor = reader.GetString()!;
            if (!seen.Add(tensor))
            {
                throw Fail(path, $"weight_map[{tensor}]", ref reader, "each tensor listed once", "a second entry");
            }
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
            {
                throw Fail(path, $"weight_map[{tensor}]", ref reader, "a shard file name");
            }
            string shard = reader.GetString()!;
            if (!IsPlainFileName(shard))
            {
                throw Fail(path, $"weight_map[{tensor}]", ref reader, "a file name in the index's directory (no '/', '\\', ':' or '..')", $"\"{shard}\"");
            }
            map.Add(new(tensor, shard));
        }
        return map;
    }

    private static ModelFormatException Fail(string path, string field, ref Utf8JsonReader reader, string expected, string? found = null) =>
        new(path, field, reader.TokenStartIndex, expected, found ?? reader.TokenType switch
        {
            JsonTokenType.String or JsonTokenType.Number or JsonTokenType.True or JsonTokenType.False or JsonTokenType.Null =>
                Encoding.UTF8.GetString(reader.ValueSpan),
            JsonTokenType.StartObject => "an object",
            JsonTokenType.StartArray => "an array",
            _ => reader.TokenType.ToString(),
        });
}
