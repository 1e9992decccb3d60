// One model of the catalog, read from its embedded seed entry (Catalog/*.json): the item /ai/models/search serves, the
// input and output JSON schemas /ai/models/schema serves and RunRequestParser validates against, and its limits.

using System.Text.Json.Nodes;

namespace Sirocco.Server.Catalog;

/// <summary>A model the server can run, as Workers AI's catalog describes it. Immutable and thread-safe: the JSON
/// members hand out fresh copies.</summary>
public sealed class CatalogModel
{
    private readonly JsonObject _entry;
    private readonly JsonNode _inputSchema;
    private readonly JsonNode _outputSchema;

    internal CatalogModel(JsonObject catalogJson, int contextWindow)
    {
        Name = RequireString(catalogJson, "name");
        Id = RequireString(catalogJson, "id");
        Description = catalogJson["description"]?.GetValue<string>() ?? "";
        Source = catalogJson["source"]?.GetValue<int>() ?? 0;
        TaskId = catalogJson["task"]?["id"]?.GetValue<string>() ?? "";
        TaskName = catalogJson["task"]?["name"]?.GetValue<string>() ?? "";
        // "@hf/mistral/mistral-7b-instruct-v0.2" → "mistral": the catalog items carry no author field, the name does.
        string[] nameParts = Name.Split('/');
        Author = nameParts.Length >= 3 ? nameParts[1] : "";

        var schema = catalogJson["schema"] as JsonObject
            ?? throw new InvalidOperationException($"catalog entry {Name} has no schema object");
        _inputSchema = Frozen(schema["input"] ?? throw new InvalidOperationException($"catalog entry {Name} has no schema.input"));
        _outputSchema = Frozen(schema["output"] ?? throw new InvalidOperationException($"catalog entry {Name} has no schema.output"));

        var entry = (JsonObject)catalogJson.DeepClone();
        entry.Remove("schema");
        _entry = Frozen(entry).AsObject();

        Properties = ReadProperties(catalogJson);
        SupportsTools = Variants(_inputSchema).Any(v => v["properties"]?["tools"] is not null);
        ValidationSchema = Frozen(BuildValidationSchema(_inputSchema, SupportsTools));

        int maxPromptCharacters = Variants(_inputSchema)
            .Select(v => v["properties"]?["prompt"]?["maxLength"]?.GetValue<int>())
            .FirstOrDefault(n => n is not null) ?? int.MaxValue;
        int? maxInput = IntProperty("max_input_length");
        int? maxTotal = IntProperty("max_total_tokens");
        Limits = new ModelLimits(maxPromptCharacters, maxInput, maxTotal, maxTotal ?? contextWindow);
    }

    /// <summary>The model name clients put in the URL, e.g. <c>@hf/mistral/mistral-7b-instruct-v0.2</c>.</summary>
    public string Name { get; }

    /// <summary>The catalog id (a UUID).</summary>
    public string Id { get; }

    /// <summary>The catalog description.</summary>
    public string Description { get; }

    /// <summary>The catalog <c>source</c> number (1 for @cf models, 2 for @hf ones).</summary>
    public int Source { get; }

    /// <summary>The task's id.</summary>
    public string TaskId { get; }

    /// <summary>The task's name, e.g. "Text Generation".</summary>
    public string TaskName { get; }

    /// <summary>The author, taken from the name's second segment ("mistral").</summary>
    public string Author { get; }

    /// <summary>The catalog <c>properties</c> as a map from <c>property_id</c> to its (string) value.</summary>
    public IReadOnlyDictionary<string, string> Properties { get; }

    /// <summary>The catalog item as /ai/models/search serves it: id, source, name, description, task, tags and
    /// properties, without the schema. A fresh copy on every call.</summary>
    public JsonObject Entry => _entry.DeepClone().AsObject();

    /// <summary>The input JSON schema as /ai/models/schema serves it (exactly the seed's). A fresh copy on every call.</summary>
    public JsonNode InputSchema => _inputSchema.DeepClone();

    /// <summary>The output JSON schema as /ai/models/schema serves it. A fresh copy on every call.</summary>
    public JsonNode OutputSchema => _outputSchema.DeepClone();

    /// <summary>Character and token limits.</summary>
    public ModelLimits Limits { get; }

    /// <summary>True when the input schema has <c>tools</c> (the @hf model); tool use is then prompt-based (ToolPrompt).</summary>
    public bool SupportsTools { get; }

    /// <summary>The schema requests are validated against: <see cref="InputSchema"/> with the fields Workers AI clients
    /// send outside the variant that lists them added, so that they are type-checked rather than ignored: <c>lora</c>
    /// and <c>raw</c> in every variant (the LoRA docs send <c>messages</c> with both), <c>tools</c> in every variant of
    /// a model that supports tools, and <c>name</c>, <c>tool_call_id</c> and <c>tool_calls</c> on messages. Shared and
    /// never modified.</summary>
    internal JsonNode ValidationSchema { get; }

    public override string ToString() => Name;

    private int? IntProperty(string id) =>
        Properties.TryGetValue(id, out string? text) && int.TryParse(text, out int value) ? value : null;

    private static string RequireString(JsonObject o, string key) =>
        o[key]?.GetValue<string>() ?? throw new InvalidOperationException($"catalog entry has no string \"{key}\"");

    private static Dictionary<string, string> ReadProperties(JsonObject catalogJson)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        if (catalogJson["properties"] is JsonArray properties)
        {
            foreach (var p in properties)
            {
                if (p?["property_id"]?.GetValue<string>() is { } id)
                {
                    map[id] = p["value"]?.ToString() ?? "";
                }
            }
        }
        return map;
    }

    /// <summary>The <c>oneOf</c> variants of an input schema, or the schema itself when it has none.</summary>
    private static IEnumerable<JsonObject> Variants(JsonNode schema) =>
        schema["oneOf"] is JsonArray variants ? variants.OfType<JsonObject>() : schema is JsonObject o ? [o] : [];

    private static JsonNode BuildValidationSchema(JsonNode inputSchema, bool supportsTools)
    {
        var schema = inputSchema.DeepClone();
        var variants = Variants(schema).ToList();
        JsonNode? tools = variants.Select(v => v["properties"]?["tools"]).FirstOrDefault(t => t is not null);
        foreach (var variant in variants)
        {
            if (variant["properties"] is not JsonObject properties)
            {
                variant["properties"] = properties = [];
            }
            properties.TryAdd("lora", new JsonObject { ["type"] = "string" });
            properties.TryAdd("raw", new JsonObject { ["type"] = "boolean", ["default"] = false });
            if (supportsTools && tools is not null)
            {
                properties.TryAdd("tools", tools.DeepClone());
            }
            if (properties["messages"]?["items"]?["properties"] is JsonObject messageProperties)
            {
                messageProperties.TryAdd("name", new JsonObject { ["type"] = "string" });
                messageProperties.TryAdd("tool_call_id", new JsonObject { ["type"] = "string" });
                messageProperties.TryAdd("tool_calls", new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "object" } });
            }
        }
        return schema;
    }

    /// <summary>Walks the whole tree once: nodes parsed from JSON build their children lazily, and that first build is
    /// not thread-safe. After the walk, concurrent reads (and DeepClone) only read.</summary>
    private static JsonNode Frozen(JsonNode node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (_, child) in o)
                {
                    if (child is not null)
                    {
                        Frozen(child);
                    }
                }
                break;
            case JsonArray a:
                foreach (var child in a)
                {
                    if (child is not null)
                    {
                        Frozen(child);
                    }
                }
                break;
        }
        return node;
    }
}
