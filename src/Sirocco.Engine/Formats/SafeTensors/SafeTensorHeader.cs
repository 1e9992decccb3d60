// Parses and validates the JSON header of one .safetensors file (format: huggingface/safetensors README, "Format").
// SafeTensorFile calls it once per file; everything a hostile header could lie about is checked here, so that
// later code can trust every SafeTensorInfo to lie inside the file and to match its dtype and shape.

using System.Text;
using System.Text.Json;

namespace Sirocco.Engine.Formats.SafeTensors;

/// <summary>The validated content of a safetensors header.</summary>
internal sealed class SafeTensorHeader
{
    /// <summary>Key of the optional string-to-string metadata object in the header.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>The header (JSON) begins after the 8-byte length.</summary>
    private const long JsonStart = 8;

    /// <summary>
    /// Most dimensions a shape may have. The format sets no limit, but real tensors have at most a handful, and a
    /// 100 MB header of one shape array would otherwise cost gigabytes of longs.
    /// </summary>
    private const int MaxRank = 64;

    private SafeTensorHeader(List<SafeTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>Tensors in header order.</summary>
    public List<SafeTensorInfo> Tensors { get; }

    /// <summary>The <c>__metadata__</c> strings; empty when the header has none.</summary>
    public Dictionary<string, string> Metadata { get; }

    /// <summary>
    /// Parses <paramref name="json"/> (the header bytes, which start at file offset 8) for a file whose data region
    /// starts at <paramref name="dataStart"/> and is <paramref name="dataBytes"/> long.
    /// </summary>
    /// <exception cref="ModelFormatException">The header is not valid UTF-8 JSON of the expected shape, names an
    /// unknown dtype, or describes tensors whose byte ranges disagree with their shapes, leave the data region, overlap,
    /// leave gaps or leave trailing bytes (the reference reader rejects gaps and trailing bytes too).</exception>
    public static SafeTensorHeader Parse(string path, ReadOnlySpan<byte> json, long dataStart, long dataBytes)
    {
        int invalidAt = FirstInvalidUtf8(json);
        if (invalidAt >= 0)
        {
            throw new ModelFormatException(path, "header", JsonStart + invalidAt, "UTF-8 text", $"byte 0x{json[invalidAt]:X2}");
        }

        var tensors = new List<SafeTensorInfo>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw Fail(path, "header", ref reader, "a JSON object");
            }
            var names = new HashSet<string>(StringComparer.Ordinal);
            bool hasMetadata = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                long nameOffset = JsonStart + reader.TokenStartIndex;
                string name = reader.GetString()!;
                if (name == MetadataKey)
                {
                    if (hasMetadata)
                    {
                        throw new ModelFormatException(path, MetadataKey, nameOffset, "one __metadata__ object", "a second one");
                    }
                    hasMetadata = true;
                    ReadMetadata(path, ref reader, metadata);
                    continue;
                }
                if (!names.Add(name))
                {
                    throw new ModelFormatException(path, $"tensor {name}", nameOffset, "unique tensor names", "a second tensor of that name");
                }
                tensors.Add(ReadTensor(path, ref reader, name, nameOffset, dataStart, dataBytes));
            }
            if (reader.TokenType != JsonTokenType.EndObject)
            {
                throw Fail(path, "header", ref reader, "a tensor name or the end of the header object");
            }
            if (reader.Read())
            {
                throw Fail(path, "header", ref reader, "nothing after the header object");
            }
        }
        catch (JsonException e)
        {
            long offset = e.LineNumber == 0 && e.BytePositionInLine is long column ? JsonStart + column : -1;
            string line = e.LineNumber is > 0 ? $" (line {e.LineNumber + 1})" : "";
            throw new ModelFormatException(path, "header JSON", offset, "well-formed JSON", e.Message + line);
        }
        catch (InvalidOperationException e)
        {
            // Utf8JsonReader.GetString throws this for escapes that decode to invalid UTF-16 (a lone surrogate).
            throw new ModelFormatException(path, "header JSON", JsonStart + reader.TokenStartIndex, "a valid JSON string", e.Message);
        }

        CheckLayout(path, tensors, dataStart, dataBytes);
        return new SafeTensorHeader(tensors, metadata);
    }

    private static void ReadMetadata(string path, ref Utf8JsonReader reader, Dictionary<string, string> metadata)
    {
        reader.Read();
        if (reader.TokenType == JsonTokenType.Null)
        {
            return;
        }
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw Fail(path, MetadataKey, ref reader, "an object of strings");
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            long keyOffset = JsonStart + reader.TokenStartIndex;
            string key = reader.GetString()!;
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
            {
                throw Fail(path, $"{MetadataKey}.{key}", ref reader, "a string");
            }
            if (!metadata.TryAdd(key, reader.GetString()!))
            {
                throw new ModelFormatException(path, $"{MetadataKey}.{key}", keyOffset, "unique metadata keys", "a second entry of that key");
            }
        }
        if (reader.TokenType != JsonTokenType.EndObject)
        {
            throw Fail(path, MetadataKey, ref reader, "a metadata key or the end of the object");
        }
    }

    private static SafeTensorInfo ReadTensor(string path, ref Utf8JsonReader reader, string name, long nameOffset, long dataStart, long dataBytes)
    {
        string field = $"tensor {name}";
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw Fail(path, field, ref reader, "an object with dtype, shape and data_offsets");
        }
        string? dtypeName = null;
        long dtypeOffset = -1;
        long[]? shape = null;
        long[]? offsets = null;
        long offsetsOffset = -1;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            long keyOffset = JsonStart + reader.TokenStartIndex;
            string key = reader.GetString()!;
            bool duplicate;
            switch (key)
            {
                case "dtype":
                    duplicate = dtypeName is not null;
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        throw Fail(path, $"{field} dtype", ref reader, "a dtype string");
                    }
                    dtypeOffset = JsonStart + reader.TokenStartIndex;
                    dtypeName = reader.GetString()!;
                    break;
                case "shape":
                    duplicate = shape is not null;
                    shape = ReadIntegers(path, ref reader, $"{field} shape", exactCount: -1);
                    break;
                case "data_offsets":
                    duplicate = offsets is not null;
                    offsetsOffset = JsonStart + reader.BytesConsumed;
                    offsets = ReadIntegers(path, ref reader, $"{field} data_offsets", exactCount: 2);
                    break;
                default:
                    // Unknown keys are skipped, as the reference reader (serde, without deny_unknown_fields) does.
                    duplicate = false;
                    reader.Skip();
                    break;
            }
            if (duplicate)
            {
                throw new ModelFormatException(path, $"{field} {key}", keyOffset, "one value", "a second one");
            }
        }
        if (reader.TokenType != JsonTokenType.EndObject)
        {
            throw Fail(path, field, ref reader, "a key or the end of the tensor object");
        }
        if (dtypeName is null || shape is null || offsets is null)
        {
            string missing = dtypeName is null ? "dtype" : shape is null ? "shape" : "data_offsets";
            throw new ModelFormatException(path, $"{field} {missing}", nameOffset, $"a {missing} entry", "none");
        }
        if (!SafeTensorDtypes.TryParse(dtypeName, out SafeTensorDtype dtype))
        {
            throw new ModelFormatException(path, $"{field} dtype", dtypeOffset,
                "a safetensors dtype (F32, F16, BF16, I8, I32, I64, F64, BOOL, U8, F8_E4M3, …)", $"\"{dtypeName}\"");
        }

        long elementCount = SafeTensorDtypes.ElementCount(shape);
        long byteCount = elementCount < 0 ? -1 : dtype.ByteCount(elementCount);
        string shapeText = $"[{string.Join(", ", shape)}]";
        if (byteCount < 0)
        {
            throw new ModelFormatException(path, $"{field} shape", nameOffset,
                $"a shape whose {dtype} data fits in whole bytes below 2^63", shapeText);
        }
        long begin = offsets[0];
        long end = offsets[1];
        if (begin > end)
        {
            throw new ModelFormatException(path, $"{field} data_offsets", offsetsOffset, "begin <= end", $"[{begin}, {end}]");
        }
        if (end > dataBytes)
        {
            throw new ModelFormatException(path, $"{field} data_offsets", offsetsOffset,
                $"a range inside the data region of {dataBytes} bytes", $"[{begin}, {end}]");
        }
        if (end - begin != byteCount)
        {
            throw new ModelFormatException(path, $"{field} data_offsets", offsetsOffset,
                $"{byteCount} bytes for {dtype} {shapeText}", $"{end - begin} bytes [{begin}, {end}]");
        }
        return new SafeTensorInfo(path, name, dtype, shape, elementCount, dataStart + begin, byteCount);
    }

    /// <summary>Reads a JSON array of non-negative integers below 2^63; <paramref name="exactCount"/> ≥ 0 fixes its length.</summary>
    private static long[] ReadIntegers(string path, ref Utf8JsonReader reader, string field, int exactCount)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw Fail(path, field, ref reader, exactCount < 0 ? "an array of integers" : $"an array of {exactCount} integers");
        }
        var values = new List<long>();
        while (reader.Read() && reader.TokenType == JsonTokenType.Number)
        {
            if (!reader.TryGetInt64(out long value) || value < 0)
            {
                throw Fail(path, field, ref reader, "a non-negative integer below 2^63");
            }
            if (values.Count == MaxRank)
            {
                throw Fail(path, field, ref reader, $"at most {MaxRank} values", "more");
            }
            values.Add(value);
        }
        if (reader.TokenType != JsonTokenType.EndArray)
        {
            throw Fail(path, field, ref reader, "an integer or the end of the array");
        }
        if (exactCount >= 0 && values.Count != exactCount)
        {
            throw Fail(path, field, ref reader, $"exactly {exactCount} integers", $"{values.Count}");
        }
        return [.. values];
    }

    /// <summary>
    /// Sorted by offset, the tensors must tile the data region exactly: each begins where the previous one ended,
    /// and the last ends at the end of the file. This rules out overlapping tensors (two names for the same bytes),
    /// hidden gaps and trailing garbage.
    /// </summary>
    private static void CheckLayout(string path, List<SafeTensorInfo> tensors, long dataStart, long dataBytes)
    {
        var sorted = tensors.ToArray();
        // Stable order (offset, then length) so that zero-length tensors sit before a tensor starting at the same place.
        Array.Sort(sorted, (a, b) => a.DataOffset != b.DataOffset ? a.DataOffset.CompareTo(b.DataOffset) : a.ByteCount.CompareTo(b.ByteCount));
        long expected = dataStart;
        SafeTensorInfo? previous = null;
        foreach (SafeTensorInfo t in sorted)
        {
            if (t.DataOffset < expected)
            {
                throw new ModelFormatException(path, $"tensor {t.Name} data_offsets", t.DataOffset,
                    $"no overlap with tensor {previous!.Name} at [{previous.DataOffset - dataStart}, {expected - dataStart})",
                    $"[{t.DataOffset - dataStart}, {t.DataOffset - dataStart + t.ByteCount})");
            }
            if (t.DataOffset > expected)
            {
                string after = previous is null ? "the start of the data region" : $"tensor {previous.Name}";
                throw new ModelFormatException(path, $"tensor {t.Name} data_offsets", t.DataOffset,
                    $"data to start at {expected - dataStart}, right after {after}", $"a gap: it starts at {t.DataOffset - dataStart}");
            }
            expected = t.DataOffset + t.ByteCount;
            previous = t;
        }
        if (expected != dataStart + dataBytes)
        {
            string field = previous is null ? "data region" : $"data after tensor {previous.Name}";
            throw new ModelFormatException(path, field, expected, $"the file to end at offset {expected}",
                $"{dataStart + dataBytes - expected} trailing bytes that no tensor owns");
        }
    }

    /// <summary>Index of the first byte that does not start a valid UTF-8 sequence, or -1 when all of it is valid.</summary>
    private static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes))
        {
            return -1;
        }
        int index = 0;
        while (index < bytes.Length)
        {
            if (Rune.DecodeFromUtf8(bytes[index..], out _, out int consumed) != System.Buffers.OperationStatus.Done)
            {
                return index;
            }
            index += consumed;
        }
        return -1;
    }

    private static ModelFormatException Fail(string path, string field, ref Utf8JsonReader reader, string expected, string? found = null) =>
        new(path, field, JsonStart + reader.TokenStartIndex, expected, found ?? Describe(ref reader));

    /// <summary>The current token as an error message shows it: a value's text (shortened), or the token kind.</summary>
    private static string Describe(ref Utf8JsonReader reader)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Number:
            case JsonTokenType.True:
            case JsonTokenType.False:
            case JsonTokenType.Null:
                return Encoding.UTF8.GetString(reader.ValueSpan);
            case JsonTokenType.String:
            case JsonTokenType.PropertyName:
                string text = Encoding.UTF8.GetString(reader.ValueSpan);
                return $"\"{(text.Length > 60 ? text[..60] + "…" : text)}\"";
            case JsonTokenType.StartObject:
                return "an object";
            case JsonTokenType.StartArray:
                return "an array";
            case JsonTokenType.EndArray:
                return "the end of an array";
            case JsonTokenType.EndObject:
                return "the end of an object";
            default:
                return reader.TokenType.ToString();
        }
    }
}
