// Reads OpenAI chat-completion and completion bodies into the same RunRequest the Workers AI route uses, so both APIs
// share prompting, limits, sampling and the scheduler. Checks types and ranges itself (OpenAI bodies are not covered
// by the catalog's schema) with messages that name the field, the value and what is allowed.

using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Apis.OpenAi;

/// <summary>An OpenAI request after parsing: the model name, the generation request, and streaming options.</summary>
internal sealed record OpenAiRequest(string Model, RunRequest Run, bool Stream, bool IncludeUsage, IReadOnlyList<string> Stop);

internal static class OpenAiProtocol
{
    /// <summary>Parses a <c>/v1/chat/completions</c> body.</summary>
    /// <exception cref="ApiException">400 naming the field for anything malformed.</exception>
    public static OpenAiRequest ParseChat(byte[] body)
    {
        JsonElement root = ParseObject(body);
        var messages = new List<RunMessage>();
        if (!root.TryGetProperty("messages", out JsonElement list) || list.ValueKind != JsonValueKind.Array)
        {
            throw Bad("messages", list, "an array of {role, content} objects");
        }
        int index = 0;
        foreach (JsonElement item in list.EnumerateArray())
        {
            string path = $"messages[{index}]";
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw Bad(path, item, "an object with role and content");
            }
            string role = RequiredString(item, "role", path + ".role");
            string content = Content(item, path);
            string? name = item.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
            messages.Add(new RunMessage(role, content, name));
            index++;
        }
        if (messages.Count == 0)
        {
            throw new ApiException(ErrorCodes.BadInput, 400, "messages is empty; send at least one message");
        }
        RunRequest run = Sampling(root, new RunRequest { Messages = messages, Tools = Tools(root) });
        return Finish(root, run);
    }

    /// <summary>Parses a <c>/v1/completions</c> body: the prompt is continued as given (no chat template).</summary>
    public static OpenAiRequest ParseCompletion(byte[] body)
    {
        JsonElement root = ParseObject(body);
        string prompt;
        if (root.TryGetProperty("prompt", out JsonElement p) && p.ValueKind == JsonValueKind.String)
        {
            prompt = p.GetString()!;
        }
        else if (p.ValueKind == JsonValueKind.Array && p.GetArrayLength() == 1 && p[0].ValueKind == JsonValueKind.String)
        {
            prompt = p[0].GetString()!;
        }
        else
        {
            throw Bad("prompt", p, "a string (or an array holding one string; batches of prompts are not supported)");
        }
        if (prompt.Length == 0)
        {
            throw new ApiException(ErrorCodes.BadInput, 400, "prompt is empty");
        }
        RunRequest run = Sampling(root, new RunRequest { Prompt = prompt, Raw = true });
        return Finish(root, run);
    }

    private static OpenAiRequest Finish(JsonElement root, RunRequest run)
    {
        string model = RequiredString(root, "model", "model");
        bool stream = OptionalBool(root, "stream") ?? false;
        bool includeUsage = false;
        if (root.TryGetProperty("stream_options", out JsonElement options) && options.ValueKind == JsonValueKind.Object)
        {
            includeUsage = OptionalBool(options, "include_usage", "stream_options.include_usage") ?? false;
        }
        if (root.TryGetProperty("n", out JsonElement n) && n.ValueKind != JsonValueKind.Null && !(n.TryGetInt32(out int count) && count == 1))
        {
            throw Bad("n", n, "1 (one choice per request)");
        }
        var stop = new List<string>();
        if (root.TryGetProperty("stop", out JsonElement s))
        {
            if (s.ValueKind == JsonValueKind.String)
            {
                stop.Add(s.GetString()!);
            }
            else if (s.ValueKind == JsonValueKind.Array && s.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) && s.GetArrayLength() <= 4)
            {
                stop.AddRange(s.EnumerateArray().Select(e => e.GetString()!));
            }
            else if (s.ValueKind != JsonValueKind.Null)
            {
                throw Bad("stop", s, "a string or an array of up to 4 strings");
            }
            stop.RemoveAll(x => x.Length == 0);
        }
        return new OpenAiRequest(model, run with { Stream = stream }, stream, includeUsage, stop);
    }

    private static RunRequest Sampling(JsonElement root, RunRequest run)
    {
        int? maxTokens = OptionalInt(root, "max_completion_tokens") ?? OptionalInt(root, "max_tokens");
        if (maxTokens < 0)
        {
            throw new ApiException(ErrorCodes.BadInput, 400, $"max_tokens is {maxTokens}; it must be 0 or more");
        }
        long? seed = null;
        if (root.TryGetProperty("seed", out JsonElement seedValue) && seedValue.ValueKind != JsonValueKind.Null)
        {
            // OpenAI seeds are any 64-bit integer; the sampler takes the same bits.
            seed = seedValue.TryGetInt64(out long v) ? v : throw Bad("seed", seedValue, "an integer");
        }
        return run with
        {
            MaxTokens = maxTokens,
            Temperature = OptionalNumber(root, "temperature", 0, 5),
            TopP = OptionalNumber(root, "top_p", 0, 2),
            TopK = OptionalInt(root, "top_k") is int k ? (k is >= 1 and <= 50 ? k : throw Bad("top_k", root.GetProperty("top_k"), "an integer from 1 to 50")) : null,
            Seed = seed,
            FrequencyPenalty = OptionalNumber(root, "frequency_penalty", -2, 2),
            PresencePenalty = OptionalNumber(root, "presence_penalty", -2, 2),
            RepetitionPenalty = OptionalNumber(root, "repetition_penalty", 0, 2),
            Lora = root.TryGetProperty("lora", out JsonElement lora) && lora.ValueKind != JsonValueKind.Null
                ? (lora.ValueKind == JsonValueKind.String ? NullIfBlank(lora.GetString()!) : throw Bad("lora", lora, "a finetune id or name"))
                : null,
        };
    }

    private static List<ToolDefinition>? Tools(JsonElement root)
    {
        if (!root.TryGetProperty("tools", out JsonElement tools) || tools.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (tools.ValueKind != JsonValueKind.Array)
        {
            throw Bad("tools", tools, "an array of {type: \"function\", function: {name, description, parameters}}");
        }
        var list = new List<ToolDefinition>();
        int i = 0;
        foreach (JsonElement tool in tools.EnumerateArray())
        {
            JsonElement function = tool.ValueKind == JsonValueKind.Object && tool.TryGetProperty("function", out JsonElement f) ? f : tool;
            if (function.ValueKind != JsonValueKind.Object)
            {
                throw Bad($"tools[{i}]", tool, "an object");
            }
            string name = RequiredString(function, "name", $"tools[{i}].function.name");
            string? description = function.TryGetProperty("description", out JsonElement d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
            JsonObject? parameters = function.TryGetProperty("parameters", out JsonElement ps) && ps.ValueKind == JsonValueKind.Object
                ? JsonNode.Parse(ps.GetRawText())!.AsObject() : null;
            list.Add(new ToolDefinition(name, description, parameters));
            i++;
        }
        return list;
    }

    private static string Content(JsonElement message, string path)
    {
        if (!message.TryGetProperty("content", out JsonElement content) || content.ValueKind == JsonValueKind.Null)
        {
            // An assistant turn that only carried tool calls: its calls become its text, so the model sees them.
            if (message.TryGetProperty("tool_calls", out JsonElement calls) && calls.ValueKind == JsonValueKind.Array)
            {
                return calls.GetRawText();
            }
            throw Bad(path + ".content", content, "a string or an array of text parts");
        }
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!;
        }
        if (content.ValueKind == JsonValueKind.Array)
        {
            var text = new System.Text.StringBuilder();
            int i = 0;
            foreach (JsonElement part in content.EnumerateArray())
            {
                if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out JsonElement type) || type.GetString() != "text"
                    || !part.TryGetProperty("text", out JsonElement partText) || partText.ValueKind != JsonValueKind.String)
                {
                    throw Bad($"{path}.content[{i}]", part, "a {\"type\":\"text\",\"text\":…} part (this model reads text only)");
                }
                text.Append(partText.GetString());
                i++;
            }
            return text.ToString();
        }
        throw Bad(path + ".content", content, "a string or an array of text parts");
    }

    private static JsonElement ParseObject(byte[] body)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64 });
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ApiException(ErrorCodes.BadInput, 400, $"the body is not valid JSON: {e.Message}");
        }
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new ApiException(ErrorCodes.BadInput, 400, $"the body is a JSON {root.ValueKind.ToString().ToLowerInvariant()}; expected an object");
        }
        return root;
    }

    private static string RequiredString(JsonElement obj, string name, string path)
    {
        if (obj.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String)
        {
            return value.GetString()!;
        }
        throw Bad(path, value, "a string");
    }

    private static bool? OptionalBool(JsonElement obj, string name, string? path = null)
    {
        if (!obj.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Bad(path ?? name, value, "true or false"),
        };
    }

    private static int? OptionalInt(JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out double d) && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue)
        {
            return (int)d;
        }
        throw Bad(name, value, "an integer");
    }

    private static double? OptionalNumber(JsonElement obj, string name, double min, double max)
    {
        if (!obj.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out double d) && d >= min && d <= max)
        {
            return d;
        }
        throw Bad(name, value, $"a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}");
    }

    private static ApiException Bad(string path, JsonElement value, string allowed)
    {
        string found = value.ValueKind == JsonValueKind.Undefined ? "missing" : Shorten(value.GetRawText());
        return new ApiException(ErrorCodes.BadInput, 400, $"{path} is {found}; expected {allowed}");
    }

    private static string? NullIfBlank(string text) => string.IsNullOrWhiteSpace(text) ? null : text;

    private static string Shorten(string text) => text.Length <= 60 ? text : text[..60] + "…";
}
