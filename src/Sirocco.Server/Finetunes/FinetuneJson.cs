// The on-disk form of a finetune (`finetunes/<id>.json`), and the timestamp format shared with the API:
// {"id","name","model","description","created_at","modified_at","public","account_id","files":{name:{sha256,size}}}.
// Reading checks every field, so a hand-edited file cannot point outside blobs/ or carry an impossible value.

using System.Globalization;
using System.Text.Json;

namespace Sirocco.Server.Finetunes;

internal static class FinetuneJson
{
    /// <summary>ISO 8601 in UTC with milliseconds, as JavaScript's toISOString writes it: 2024-04-02T18:31:46.925Z.</summary>
    public const string TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

    public static string FormatTimestamp(DateTimeOffset time) =>
        time.UtcDateTime.ToString(TimestampFormat, CultureInfo.InvariantCulture);

    /// <summary>The UTF-8 JSON of <paramref name="finetune"/>, indented for people reading the data directory.</summary>
    public static byte[] Serialize(Finetune finetune)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("id", finetune.Id);
            writer.WriteString("name", finetune.Name);
            writer.WriteString("model", finetune.Model);
            writer.WriteString("description", finetune.Description);
            writer.WriteString("created_at", FormatTimestamp(finetune.CreatedAt));
            writer.WriteString("modified_at", FormatTimestamp(finetune.ModifiedAt));
            writer.WriteBoolean("public", finetune.IsPublic);
            if (finetune.AccountId is null)
            {
                writer.WriteNull("account_id");
            }
            else
            {
                writer.WriteString("account_id", finetune.AccountId);
            }
            WriteFiles(writer, finetune);
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes <c>"files":{name:{sha256,size}}</c> in the required files' order: the manifest on disk and the
    /// API's upload answer share it.</summary>
    public static void WriteFiles(Utf8JsonWriter writer, Finetune finetune)
    {
        writer.WriteStartObject("files");
        foreach (string name in Finetune.RequiredFileNames)
        {
            if (finetune.Files.TryGetValue(name, out FinetuneFile? file))
            {
                writer.WriteStartObject(name);
                writer.WriteString("sha256", file.Sha256);
                writer.WriteNumber("size", file.SizeBytes);
                writer.WriteEndObject();
            }
        }
        writer.WriteEndObject();
    }

    /// <summary>Parses a metadata file.</summary>
    /// <exception cref="InvalidDataException">The JSON is malformed or a field is missing or invalid (the message names
    /// the field).</exception>
    public static Finetune Deserialize(ReadOnlySpan<byte> utf8)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(utf8.ToArray());
            JsonElement root = document.RootElement;
            string id = String(root, "id");
            if (!Guid.TryParseExact(id, "D", out _))
            {
                throw new InvalidDataException($"\"id\" is \"{id}\", not a UUID");
            }
            var files = new Dictionary<string, FinetuneFile>(StringComparer.Ordinal);
            if (root.TryGetProperty("files", out JsonElement fileMap) && fileMap.ValueKind == JsonValueKind.Object)
            {
                foreach (JsonProperty file in fileMap.EnumerateObject())
                {
                    if (!Finetune.RequiredFileNames.Contains(file.Name))
                    {
                        throw new InvalidDataException($"files: unknown file \"{file.Name}\"");
                    }
                    string sha = String(file.Value, "sha256");
                    if (!IsSha256Hex(sha))
                    {
                        throw new InvalidDataException($"files.{file.Name}.sha256 is \"{sha}\", not 64 lower-case hex digits");
                    }
                    long size = file.Value.GetProperty("size").GetInt64();
                    if (size <= 0)
                    {
                        throw new InvalidDataException($"files.{file.Name}.size is {size}");
                    }
                    files.Add(file.Name, new FinetuneFile(sha, size));
                }
            }
            JsonElement account = root.GetProperty("account_id");
            return new Finetune
            {
                Id = id,
                Name = String(root, "name"),
                Model = String(root, "model"),
                Description = root.TryGetProperty("description", out JsonElement d) && d.ValueKind == JsonValueKind.String ? d.GetString()! : "",
                CreatedAt = Timestamp(root, "created_at"),
                ModifiedAt = Timestamp(root, "modified_at"),
                IsPublic = root.GetProperty("public").GetBoolean(),
                AccountId = account.ValueKind == JsonValueKind.Null ? null : account.GetString(),
                Files = files,
            };
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException(e.Message, e);
        }
    }

    /// <summary>Whether <paramref name="text"/> is a SHA-256 digest as the store names blobs: 64 lower-case hex digits.</summary>
    public static bool IsSha256Hex(string text) =>
        text.Length == 64 && text.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));

    private static string String(JsonElement element, string name) =>
        element.GetProperty(name).GetString() ?? throw new InvalidDataException($"\"{name}\" is null");

    private static DateTimeOffset Timestamp(JsonElement element, string name) =>
        DateTimeOffset.ParseExact(String(element, name), TimestampFormat, CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
}
