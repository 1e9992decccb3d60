// Wire shapes of the finetunes API, as the Cloudflare SDKs type them (research §5.2): the create body
// {model, name, description?, public?}, and the finetune object {id, name, model, description, created_at,
// modified_at, public}, which upload answers extend with the stored files and whether the finetune is ready.

using System.Text.Json;
using Sirocco.Server.Finetunes;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Apis.Finetunes;

/// <summary>A validated POST /ai/finetunes body (the store checks the name, model and description further).</summary>
internal sealed record CreateFinetuneRequest(string Model, string Name, string? Description, bool IsPublic);

internal static class FinetunesProtocol
{
    /// <summary>Parses the create body: a JSON object with string <c>model</c> and <c>name</c>, optional string
    /// <c>description</c> and boolean <c>public</c> (null counts as absent). Other fields are ignored.</summary>
    /// <exception cref="ApiException">400/5006 naming the field.</exception>
    public static CreateFinetuneRequest ParseCreate(byte[] body)
    {
        if (body.Length == 0)
        {
            throw ApiException.BadInput("Bad input: /: the body is empty; send a JSON object with `model` and `name`", "/");
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            throw ApiException.BadInput($"Bad input: /: the body is not valid JSON: {e.Message}", "/");
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw ApiException.BadInput($"Bad input: /: the body must be a JSON object with `model` and `name`, found {Kind(root)}", "/");
            }
            string model = RequiredString(root, "model");
            string name = RequiredString(root, "name");
            string? description = null;
            if (root.TryGetProperty("description", out JsonElement d) && d.ValueKind != JsonValueKind.Null)
            {
                description = d.ValueKind == JsonValueKind.String
                    ? d.GetString()
                    : throw ApiException.BadInput($"Bad input: /description: expected a string, found {Kind(d)}", "/description");
            }
            bool isPublic = false;
            if (root.TryGetProperty("public", out JsonElement p) && p.ValueKind != JsonValueKind.Null)
            {
                isPublic = p.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw ApiException.BadInput($"Bad input: /public: expected a boolean, found {Kind(p)}", "/public"),
                };
            }
            return new CreateFinetuneRequest(model, name, description, isPublic);
        }
    }

    /// <summary>Writes <c>{id, name, model, description, created_at, modified_at, public}</c>.</summary>
    public static void WriteSummary(Utf8JsonWriter writer, Finetune finetune)
    {
        writer.WriteStartObject();
        WriteSummaryFields(writer, finetune);
        writer.WriteEndObject();
    }

    /// <summary>Writes the summary plus <c>ready</c> and <c>files: {name: {sha256, size}}</c>.</summary>
    public static void WriteDetail(Utf8JsonWriter writer, Finetune finetune)
    {
        writer.WriteStartObject();
        WriteSummaryFields(writer, finetune);
        writer.WriteBoolean("ready", finetune.IsReady);
        FinetuneJson.WriteFiles(writer, finetune);
        writer.WriteEndObject();
    }

    private static void WriteSummaryFields(Utf8JsonWriter writer, Finetune finetune)
    {
        writer.WriteString("id", finetune.Id);
        writer.WriteString("name", finetune.Name);
        writer.WriteString("model", finetune.Model);
        writer.WriteString("description", finetune.Description);
        writer.WriteString("created_at", FinetuneJson.FormatTimestamp(finetune.CreatedAt));
        writer.WriteString("modified_at", FinetuneJson.FormatTimestamp(finetune.ModifiedAt));
        writer.WriteBoolean("public", finetune.IsPublic);
    }

    private static string RequiredString(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            throw ApiException.BadInput($"Bad input: /: the required property `{name}` is missing", "/" + name);
        }
        return value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw ApiException.BadInput($"Bad input: /{name}: expected a string, found {Kind(value)}", "/" + name);
    }

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => $"the number {e.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "an object",
    };
}
