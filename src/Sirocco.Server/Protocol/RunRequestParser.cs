// Turns an /ai/run body into a RunRequest: parses the JSON (whatever the Content-Type), applies the leniencies Workers
// AI clients rely on, validates against the model's input schema and our stricter rules, and throws ApiException
// 400/5006 with a message naming the field for anything else. Called by the run endpoint once per request.

using System.Text.Json;
using System.Text.Json.Nodes;
using Sirocco.Server.Catalog;

namespace Sirocco.Server.Protocol;

/// <summary>Parses and validates text-generation bodies. Rules: docs/API.md "Request fields and what they do".</summary>
public static class RunRequestParser
{
    /// <summary>The roles a message may have; PromptBuilder says how each reaches the Mistral template.</summary>
    public static IReadOnlyList<string> AcceptedRoles { get; } = ["system", "developer", "user", "assistant", "tool", "function"];

    /// <summary>At most this many schema errors are listed in one message.</summary>
    public const int MaxReportedErrors = 10;

    private static readonly JsonDocumentOptions s_jsonOptions = new() { AllowDuplicateProperties = false, MaxDepth = 64 };

    /// <summary>Parses and validates <paramref name="body"/> for <paramref name="model"/>.</summary>
    /// <exception cref="ApiException">400 / 5006: empty body, invalid JSON (also duplicate keys and invalid UTF-8), not an
    /// object, a field the model does not support (<c>image</c>, <c>functions</c>, <c>tools</c> on the LoRA model), a
    /// schema violation, a negative <c>max_tokens</c>, an empty conversation, an unknown role, a malformed tool or
    /// <c>tool_choice</c>, or <c>tools</c> together with <c>raw</c>.</exception>
    public static RunRequest Parse(ReadOnlySpan<byte> body, CatalogModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var document = ParseJson(body);
        var root = document.RootElement;
        CheckStrings(root, "");
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.BadInput($"/: the body must be a JSON object with `prompt` or `messages`, found {JsonText.Describe(root)}", "/");
        }

        // Leniencies applied before validation, on a copy only when needed.
        JsonElement request = root;
        if (Normalize(root) is { } normalized)
        {
            request = JsonSerializer.SerializeToElement(normalized);
        }

        RejectUnsupported(request, model);
        var errors = JsonSchemaValidator.Validate(request, model.ValidationSchema);
        if (errors.Count > 0)
        {
            throw SchemaFailure(errors);
        }
        return Build(request, model);
    }

    private static JsonDocument ParseJson(ReadOnlySpan<byte> body)
    {
        if (body.StartsWith("\uFEFF"u8))
        {
            body = body[3..];
        }
        if (body.Trim(" \t\r\n"u8).IsEmpty)
        {
            throw ApiException.BadInput("/: the body is empty; send a JSON object with `prompt` or `messages`", "/");
        }
        if (!System.Text.Unicode.Utf8.IsValid(body))
        {
            throw ApiException.BadInput("/: the body is not valid JSON: it is not valid UTF-8", "/");
        }
        try
        {
            return JsonDocument.Parse(body.ToArray(), s_jsonOptions);
        }
        catch (JsonException e)
        {
            throw ApiException.BadInput($"/: the body is not valid JSON: {e.Message}", "/");
        }
    }

    /// <summary>Refuses strings (and property names) that JSON allows but .NET strings cannot carry faithfully: a
    /// lone surrogate escape such as <c>\ud800</c>.</summary>
    private static void CheckStrings(JsonElement value, string pointer)
    {
        try
        {
            switch (value.ValueKind)
            {
                case JsonValueKind.String:
                    _ = value.GetString();
                    break;
                case JsonValueKind.Array:
                    int index = 0;
                    foreach (var item in value.EnumerateArray())
                    {
                        CheckStrings(item, JsonText.Child(pointer, index++));
                    }
                    break;
                case JsonValueKind.Object:
                    foreach (var property in value.EnumerateObject())
                    {
                        CheckStrings(property.Value, JsonText.Child(pointer, property.Name));
                    }
                    break;
            }
        }
        catch (InvalidOperationException)
        {
            string at = JsonText.Display(pointer);
            throw ApiException.BadInput($"{at}: a string holds an unpaired surrogate escape (\\uD800–\\uDFFF), which is not text", at);
        }
    }

    /// <summary>Returns a patched copy of the body, or null when nothing needs patching: top-level nulls are dropped (a
    /// null field means "not given", as Python and JS clients send unset options); <c>raw</c>/<c>stream</c> given as
    /// the strings "true"/"false" become booleans (the Workers AI docs send <c>"raw": "true"</c>); an assistant
    /// message with <c>tool_calls</c> and <c>content: null</c> gets the empty string as content.</summary>
    private static JsonObject? Normalize(JsonElement root)
    {
        bool needed = false;
        foreach (var property in root.EnumerateObject())
        {
            needed |= property.Value.ValueKind == JsonValueKind.Null
                || (property.Name is "raw" or "stream" && property.Value.ValueKind == JsonValueKind.String);
        }
        if (root.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array)
        {
            foreach (var message in messages.EnumerateArray())
            {
                needed |= NeedsEmptyContent(message);
            }
        }
        if (!needed)
        {
            return null;
        }

        var copy = JsonObject.Create(root.Clone())!;
        foreach (var name in copy.Where(p => p.Value is null).Select(p => p.Key).ToList())
        {
            copy.Remove(name);
        }
        foreach (string name in (ReadOnlySpan<string>)["raw", "stream"])
        {
            if (copy[name] is JsonValue value && value.GetValueKind() == JsonValueKind.String)
            {
                copy[name] = value.GetValue<string>() switch
                {
                    "true" => true,
                    "false" => false,
                    string other => throw ApiException.BadInput(
                        $"/{name}: expected a boolean (or the string \"true\" or \"false\"), found the string {JsonText.Quote(other)}", "/" + name),
                };
            }
        }
        if (copy["messages"] is JsonArray messageArray)
        {
            for (int i = 0; i < messageArray.Count; i++)
            {
                if (messageArray[i] is JsonObject message && NeedsEmptyContent(root.GetProperty("messages")[i]))
                {
                    message["content"] = "";
                }
            }
        }
        return copy;
    }

    private static bool NeedsEmptyContent(JsonElement message) =>
        message.ValueKind == JsonValueKind.Object
        && message.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.Null
        && message.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array && calls.GetArrayLength() > 0;

    /// <summary>Fields the schemas list but this server cannot honour: rejected rather than silently ignored.</summary>
    private static void RejectUnsupported(JsonElement request, CatalogModel model)
    {
        if (request.TryGetProperty("image", out _))
        {
            throw ApiException.BadInput($"/image: {model.Name} is a text-only model; this model does not support `image`", "/image");
        }
        if (request.TryGetProperty("functions", out var functions) && !IsEmptyArray(functions))
        {
            throw ApiException.BadInput(
                $"/functions: this model does not support `functions` (embedded code execution); describe tools with `tools` instead", "/functions");
        }
        if (!model.SupportsTools && request.TryGetProperty("tools", out var tools) && !IsEmptyArray(tools))
        {
            throw ApiException.BadInput(
                $"/tools: {model.Name} does not support `tools`; use {ModelCatalog.HfModelName} for tool use, or send the request without `tools`", "/tools");
        }
    }

    private static bool IsEmptyArray(JsonElement value) => value.ValueKind == JsonValueKind.Array && value.GetArrayLength() == 0;

    private static ApiException SchemaFailure(IReadOnlyList<SchemaError> errors)
    {
        var shown = errors.Take(MaxReportedErrors).Select(e => e.ToString());
        string more = errors.Count > MaxReportedErrors ? $"; and {errors.Count - MaxReportedErrors} more" : "";
        return ApiException.BadInput(JsonText.Join(shown) + more, errors[0].Path);
    }

    private static RunRequest Build(JsonElement request, CatalogModel model)
    {
        string? prompt = request.TryGetProperty("prompt", out var p) ? p.GetString() : null;
        IReadOnlyList<RunMessage>? messages = request.TryGetProperty("messages", out var m) ? ReadMessages(m) : null;
        bool raw = request.TryGetProperty("raw", out var r) && r.GetBoolean();
        var tools = ReadTools(request, model);
        if (raw && tools is not null)
        {
            throw ApiException.BadInput(
                "/tools: `tools` needs the chat template, and `raw` turns it off; send one or the other", "/tools");
        }

        return new RunRequest
        {
            Prompt = prompt,
            Messages = messages,
            Raw = raw,
            Stream = request.TryGetProperty("stream", out var s) && s.GetBoolean(),
            MaxTokens = ReadMaxTokens(request),
            Temperature = Number(request, "temperature"),
            TopP = Number(request, "top_p"),
            TopK = Number(request, "top_k") is { } topK ? (int)Math.Clamp(topK, int.MinValue, int.MaxValue) : null,
            Seed = Number(request, "seed") is { } seed ? (long)Math.Clamp(seed, long.MinValue, long.MaxValue) : null,
            RepetitionPenalty = Number(request, "repetition_penalty"),
            FrequencyPenalty = Number(request, "frequency_penalty"),
            PresencePenalty = Number(request, "presence_penalty"),
            Lora = request.TryGetProperty("lora", out var lora) && !string.IsNullOrWhiteSpace(lora.GetString()) ? lora.GetString() : null,
            Tools = tools,
        };
    }

    private static double? Number(JsonElement request, string name) =>
        request.TryGetProperty(name, out var value) ? JsonSchemaValidator.ToDouble(value) : null;

    /// <summary>max_tokens: the schema sets no minimum; 0 asks for nothing, negative is refused (our rule).</summary>
    private static int? ReadMaxTokens(JsonElement request)
    {
        if (!request.TryGetProperty("max_tokens", out var value))
        {
            return null;
        }
        double n = JsonSchemaValidator.ToDouble(value);
        if (n < 0)
        {
            throw ApiException.BadInput($"/max_tokens: {JsonText.Describe(value)} is below the minimum 0", "/max_tokens");
        }
        return n >= int.MaxValue ? int.MaxValue : (int)n;
    }

    private static List<RunMessage> ReadMessages(JsonElement messages)
    {
        if (messages.GetArrayLength() == 0)
        {
            throw ApiException.BadInput("/messages: the conversation is empty; send at least one message", "/messages");
        }
        var list = new List<RunMessage>(messages.GetArrayLength());
        int index = 0;
        foreach (var message in messages.EnumerateArray())
        {
            string role = message.GetProperty("role").GetString()!;
            if (!AcceptedRoles.Contains(role))
            {
                string pointer = $"/messages/{index}/role";
                throw ApiException.BadInput(
                    $"{pointer}: the role {JsonText.Quote(role)} is not supported; use {string.Join(", ", AcceptedRoles.Select(a => "\"" + a + "\""))}", pointer);
            }
            list.Add(new RunMessage(role, message.GetProperty("content").GetString()!, OptionalString(message, "name"))
            {
                ToolCallId = OptionalString(message, "tool_call_id"),
                ToolCalls = message.TryGetProperty("tool_calls", out var calls)
                    ? [.. calls.EnumerateArray().Select(c => JsonObject.Create(c.Clone())!)]
                    : null,
            });
            index++;
        }
        return list;
    }

    private static string? OptionalString(JsonElement o, string name) =>
        o.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    /// <summary>Reads <c>tools</c> in either form, then applies <c>tool_choice</c> ("auto", "required" or absent: all
    /// tools; "none": no tools; <c>{"type": "function", "function": {"name": …}}</c> or a tool's name: that tool only).</summary>
    private static List<ToolDefinition>? ReadTools(JsonElement request, CatalogModel model)
    {
        if (!model.SupportsTools || !request.TryGetProperty("tools", out var toolsElement) || toolsElement.GetArrayLength() == 0)
        {
            return null;
        }
        var tools = new List<ToolDefinition>();
        int index = 0;
        foreach (var item in toolsElement.EnumerateArray())
        {
            string pointer = $"/tools/{index++}";
            var (definition, definitionPointer) = item.TryGetProperty("function", out var function) && function.ValueKind == JsonValueKind.Object
                ? (function, pointer + "/function")
                : (item, pointer);
            if (item.TryGetProperty("type", out var type) && type.GetString() != "function")
            {
                throw ApiException.BadInput($"{pointer}/type: expected \"function\", found {JsonText.Describe(type)}", pointer + "/type");
            }
            if (!definition.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(name.GetString()))
            {
                throw ApiException.BadInput($"{definitionPointer}: a tool needs a non-empty string `name`", definitionPointer);
            }
            string? description = null;
            if (definition.TryGetProperty("description", out var d) && d.ValueKind != JsonValueKind.Null)
            {
                description = d.ValueKind == JsonValueKind.String
                    ? d.GetString()
                    : throw ApiException.BadInput($"{definitionPointer}/description: expected a string, found {JsonText.Describe(d)}", definitionPointer + "/description");
            }
            JsonObject? parameters = null;
            if (definition.TryGetProperty("parameters", out var parametersElement) && parametersElement.ValueKind != JsonValueKind.Null)
            {
                parameters = parametersElement.ValueKind == JsonValueKind.Object
                    ? JsonObject.Create(parametersElement.Clone())
                    : throw ApiException.BadInput($"{definitionPointer}/parameters: expected an object (a JSON schema), found {JsonText.Describe(parametersElement)}", definitionPointer + "/parameters");
            }
            if (tools.Any(t => t.Name == name.GetString()))
            {
                throw ApiException.BadInput($"{definitionPointer}/name: the tool name {JsonText.Quote(name.GetString()!)} is used twice", definitionPointer + "/name");
            }
            tools.Add(new ToolDefinition(name.GetString()!, description, parameters));
        }

        if (!request.TryGetProperty("tool_choice", out var choice))
        {
            return tools;
        }
        string? forced = choice.ValueKind switch
        {
            JsonValueKind.String => choice.GetString() switch
            {
                "auto" or "required" => null,
                "none" => "",
                var n => n,
            },
            JsonValueKind.Object when choice.TryGetProperty("function", out var f) && f.ValueKind == JsonValueKind.Object
                && f.TryGetProperty("name", out var fn) && fn.ValueKind == JsonValueKind.String => fn.GetString(),
            _ => throw ApiException.BadInput(
                $"/tool_choice: expected \"auto\", \"none\", \"required\" or {{\"type\": \"function\", \"function\": {{\"name\": …}}}}, found {JsonText.Describe(choice)}", "/tool_choice"),
        };
        if (forced is null)
        {
            return tools;
        }
        if (forced.Length == 0)
        {
            return null;
        }
        var chosen = tools.Find(t => t.Name == forced)
            ?? throw ApiException.BadInput(
                $"/tool_choice: there is no tool named {JsonText.Quote(forced)}; the tools are {string.Join(", ", tools.Select(t => JsonText.Quote(t.Name)))}", "/tool_choice");
        return [chosen];
    }
}
