// Prompt-based tool use for Mistral-7B-Instruct-v0.2, which has no tool tokens: the tools are described in the prompt
// the way Text Generation Inference (the stack behind Workers AI's @hf models, 2024 versions) did it, and the model's
// answer is searched for a JSON tool call. PromptBuilder appends the prompt; the run endpoint parses the output.

using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Prompting;

/// <summary>The tool prompt and the tool-call parser.</summary>
/// <remarks>
/// The prompt is TGI v2.0's (router <c>infer.rs</c> <c>ChatTemplate::apply</c> and <c>ToolGrammar::apply</c>, <c>lib.rs</c>
/// <c>default_tool_prompt</c>): appended to the last user turn as <c>"\n---\n" + DefaultInstructions + "\n" + json</c>,
/// where json is the JSON schema TGI used as its grammar: each tool's parameters with its description and a
/// <c>_name</c> constant, plus the <c>notify_error</c> function, under <c>$functions</c>, and
/// <c>properties.function.anyOf</c> referring to them. TGI also constrained decoding to that schema; Sirocco does not
/// (no grammar sampling), so the parser accepts the shapes the model plausibly writes.
/// </remarks>
public static class ToolPrompt
{
    /// <summary>TGI's default <c>tool_prompt</c>, verbatim.</summary>
    public const string DefaultInstructions =
        "\nYou will be presented with a JSON schema representing a set of tools.\n" +
        "If the user request lacks of sufficient information to make a precise tool selection: Do not invent any tool's properties, instead notify with an error message.\n\n" +
        "JSON Schema:\n";

    /// <summary>The function TGI adds so the model can decline: <c>{"_name": "notify_error", "error": "…"}</c>.</summary>
    public const string NotifyErrorName = "notify_error";

    private const int MaxCandidates = 64;

    /// <summary>The text appended to the last user turn.</summary>
    public static string Build(IReadOnlyList<ToolDefinition> tools)
    {
        ArgumentNullException.ThrowIfNull(tools);
        return "\n---\n" + DefaultInstructions + "\n" + Schema(tools).ToJsonString();
    }

    /// <summary>TGI's tool grammar as a JSON schema:
    /// <c>{"$functions": {name: {…parameters, "description", "properties": {…, "_name": {"type": "string", "const": name}},
    /// "required": […, "_name"]}, …, "notify_error": …}, "properties": {"function": {"anyOf": [{"$ref":
    /// "#/$functions/name"}, …]}}}</c>.</summary>
    public static JsonObject Schema(IReadOnlyList<ToolDefinition> tools)
    {
        ArgumentNullException.ThrowIfNull(tools);
        var functions = new JsonObject();
        var refs = new JsonArray();
        foreach (var tool in tools)
        {
            var function = tool.Parameters?.DeepClone().AsObject() ?? [];
            function["description"] = tool.Description ?? "";
            if (function["properties"] is not JsonObject properties)
            {
                function["properties"] = properties = [];
            }
            properties["_name"] = new JsonObject { ["type"] = "string", ["const"] = tool.Name };
            if (function["required"] is not JsonArray required)
            {
                function["required"] = required = [];
            }
            if (!required.Any(r => r?.GetValueKind() == JsonValueKind.String && r.GetValue<string>() == "_name"))
            {
                required.Add("_name");
            }
            functions[tool.Name] = function;
            refs.Add(new JsonObject { ["$ref"] = "#/$functions/" + tool.Name });
        }
        if (!functions.ContainsKey(NotifyErrorName))
        {
            functions[NotifyErrorName] = new JsonObject
            {
                ["properties"] = new JsonObject
                {
                    ["error"] = new JsonObject { ["type"] = "string", ["description"] = "The error or issue to notify" },
                    ["_name"] = new JsonObject { ["type"] = "string", ["const"] = NotifyErrorName },
                },
                ["required"] = new JsonArray("error", "_name"),
                ["type"] = "object",
            };
            refs.Add(new JsonObject { ["$ref"] = "#/$functions/" + NotifyErrorName });
        }
        return new JsonObject
        {
            ["$functions"] = functions,
            ["properties"] = new JsonObject { ["function"] = new JsonObject { ["anyOf"] = refs } },
        };
    }

    /// <summary>Finds tool calls in generated text.</summary>
    /// <remarks>Looks at each <c>{</c> or <c>[</c> in turn (at most 64) for a JSON value that is a call, or an array
    /// of calls, naming one of <paramref name="tools"/>; the first call found wins, and the inside of a value that is
    /// not a call is skipped. A call is TGI's <c>{"function": {"_name": name, …arguments}}</c>,
    /// OpenAI's <c>{"function": {"name": name, "arguments": {…} or "…json…"}}</c>, or Workers AI's
    /// <c>{"name": name, "arguments": {…}}</c> (<c>"parameters"</c> is accepted for <c>"arguments"</c>). A
    /// <c>notify_error</c> call, an unknown name, or no JSON at all gives an empty list: the text is then the answer.</remarks>
    /// <returns>Workers AI's <c>tool_calls</c> items: <c>{"name": …, "arguments": {…}}</c>.</returns>
    public static IReadOnlyList<JsonObject> ParseToolCalls(string generatedText, IReadOnlyList<ToolDefinition> tools)
    {
        ArgumentNullException.ThrowIfNull(generatedText);
        ArgumentNullException.ThrowIfNull(tools);
        if (tools.Count == 0)
        {
            return [];
        }
        byte[] utf8 = Encoding.UTF8.GetBytes(generatedText);
        int candidates = 0;
        for (int start = 0; start < utf8.Length && candidates < MaxCandidates; start++)
        {
            if (utf8[start] is not ((byte)'{' or (byte)'['))
            {
                continue;
            }
            candidates++;
            JsonDocument document;
            var reader = new Utf8JsonReader(utf8.AsSpan(start), new JsonReaderOptions { AllowMultipleValues = true });
            try
            {
                document = JsonDocument.ParseValue(ref reader);
            }
            catch (JsonException)
            {
                continue;
            }
            using (document)
            {
                if (Interpret(document.RootElement, tools) is { Count: > 0 } calls)
                {
                    return calls;
                }
            }
            start += (int)reader.BytesConsumed - 1; // a JSON value that is not a call: its insides are not looked at either
        }
        return [];
    }

    /// <summary>One call of an assistant message's <c>tool_calls</c>, written as the model is asked to answer:
    /// <c>{"function":{"_name":"getWeather","latitude":"51.5"}}</c>. Null when the object names no function.</summary>
    internal static string? RenderCall(JsonObject call)
    {
        if (ReadCall(call) is not var (name, arguments))
        {
            return null;
        }
        var function = new JsonObject { ["_name"] = name };
        foreach (var (key, value) in arguments)
        {
            if (key != "_name")
            {
                function[key] = value?.DeepClone();
            }
        }
        return new JsonObject { ["function"] = function }.ToJsonString();
    }

    private static List<JsonObject>? Interpret(JsonElement value, IReadOnlyList<ToolDefinition> tools)
    {
        var items = value.ValueKind == JsonValueKind.Array ? [.. value.EnumerateArray()] : new List<JsonElement> { value };
        if (items.Count == 0)
        {
            return null;
        }
        var calls = new List<JsonObject>(items.Count);
        foreach (var item in items)
        {
            if (item.ValueKind != JsonValueKind.Object
                || ReadCall(JsonObject.Create(item)!) is not var (name, arguments)
                || !tools.Any(t => t.Name == name))
            {
                return null;
            }
            calls.Add(new JsonObject { ["name"] = name, ["arguments"] = arguments });
        }
        return calls;
    }

    /// <summary>The name and arguments of a call in any accepted shape, or null.</summary>
    private static (string Name, JsonObject Arguments)? ReadCall(JsonObject call)
    {
        if (call["function"] is JsonObject function)
        {
            if (function["_name"] is JsonValue tgiName && tgiName.GetValueKind() == JsonValueKind.String)
            {
                var arguments = new JsonObject();
                foreach (var (key, value) in function)
                {
                    if (key != "_name")
                    {
                        arguments[key] = value?.DeepClone();
                    }
                }
                return (tgiName.GetValue<string>(), arguments);
            }
            return NamedCall(function);
        }
        return NamedCall(call);
    }

    private static (string Name, JsonObject Arguments)? NamedCall(JsonObject call)
    {
        if (call["name"] is not JsonValue name || name.GetValueKind() != JsonValueKind.String)
        {
            return null;
        }
        var raw = call["arguments"] ?? call["parameters"];
        JsonObject? arguments = raw switch
        {
            null => [],
            JsonObject o => o.DeepClone().AsObject(),
            JsonValue s when s.GetValueKind() == JsonValueKind.String => ParseObject(s.GetValue<string>()),
            _ => null,
        };
        return arguments is null ? null : (name.GetValue<string>(), arguments);
    }

    private static JsonObject? ParseObject(string json)
    {
        if (json.Length == 0)
        {
            return [];
        }
        try
        {
            return JsonNode.Parse(json) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
