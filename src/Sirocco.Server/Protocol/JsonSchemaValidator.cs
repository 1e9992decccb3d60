// A JSON Schema validator for the subset of keywords the Workers AI catalog schemas use. RunRequestParser runs every
// /ai/run body through it against the model's input schema; error messages are written for API clients.

using System.Text.Json;
using System.Text.Json.Nodes;

namespace Sirocco.Server.Protocol;

/// <summary>One schema violation.</summary>
/// <param name="Path">JSON pointer of the offending value (<c>/messages/0/content</c>); <c>/</c> is the document itself.</param>
/// <param name="Message">What is wrong: the value found (long values cut) and what is allowed, e.g. "7 is above the
/// maximum 5" or "expected a string, found an array".</param>
public sealed record SchemaError(string Path, string Message)
{
    public override string ToString() => Path + ": " + Message;
}

/// <summary>Validates JSON values against a JSON Schema (draft 4–2020 keywords that the catalog uses).</summary>
/// <remarks>
/// Supported: <c>type</c> (one name or an array; <c>integer</c> is a number with no fractional part), <c>enum</c>,
/// <c>const</c>, <c>minimum</c>, <c>maximum</c>, <c>exclusiveMinimum</c>/<c>exclusiveMaximum</c> (numeric form),
/// <c>minLength</c>/<c>maxLength</c> (in Unicode code points, as JSON Schema counts them, so an emoji is one),
/// <c>items</c> (one schema for every element), <c>minItems</c>/<c>maxItems</c>, <c>properties</c>, <c>required</c>,
/// <c>additionalProperties</c> (boolean or schema), <c>allOf</c>, <c>anyOf</c>, <c>oneOf</c>, and boolean schemas.
/// Everything else (<c>default</c>, <c>description</c>, <c>format</c>, <c>title</c>, <c>$ref</c>, <c>pattern</c> …)
/// is ignored. A value of the wrong <c>type</c> gets only the type error, not the errors of its other keywords.
/// For <c>oneOf</c>/<c>anyOf</c> with no matching variant, the errors come from the variant the value was most likely
/// meant for: when the variants are told apart by their <c>required</c> properties (Prompt versus Messages), the one
/// whose required properties are present; none present → "one of `prompt` or `messages` is required", several present
/// under <c>oneOf</c> → "send either … not both"; otherwise the variant of the value's type with the fewest errors.
/// </remarks>
public static class JsonSchemaValidator
{
    /// <summary>Every violation of <paramref name="schema"/> by <paramref name="value"/>; empty when it is valid.</summary>
    public static IReadOnlyList<SchemaError> Validate(JsonElement value, JsonNode schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var errors = new List<SchemaError>();
        Check(value, schema, "", errors);
        return errors;
    }

    private static void Check(JsonElement value, JsonNode? schemaNode, string pointer, List<SchemaError> errors)
    {
        JsonObject schema;
        switch (schemaNode)
        {
            case JsonObject o:
                schema = o;
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.False:
                Add(errors, pointer, $"no value is allowed here, found {JsonText.Describe(value)}");
                return;
            default:
                return; // true, or not a schema
        }

        if (schema["type"] is { } typeNode)
        {
            var types = TypeNames(typeNode);
            if (types.Count > 0 && !types.Any(t => HasType(value, t)))
            {
                Add(errors, pointer, $"expected {JsonText.Types(types)}, found {JsonText.Describe(value)}");
                return;
            }
        }
        if (schema.TryGetPropertyValue("const", out var constant) && !SameJson(value, constant))
        {
            Add(errors, pointer, $"expected {Show(constant)}, found {JsonText.Describe(value)}");
        }
        if (schema["enum"] is JsonArray allowed && !allowed.Any(a => SameJson(value, a)))
        {
            Add(errors, pointer, $"{JsonText.Describe(value)} is not allowed; expected one of {string.Join(", ", allowed.Select(Show))}");
        }

        switch (value.ValueKind)
        {
            case JsonValueKind.Number:
                CheckNumber(value, schema, pointer, errors);
                break;
            case JsonValueKind.String:
                CheckString(value.GetString()!, schema, pointer, errors);
                break;
            case JsonValueKind.Array:
                CheckArray(value, schema, pointer, errors);
                break;
            case JsonValueKind.Object:
                CheckObject(value, schema, pointer, errors);
                break;
        }

        if (schema["allOf"] is JsonArray all)
        {
            foreach (var part in all)
            {
                Check(value, part, pointer, errors);
            }
        }
        if (schema["anyOf"] is JsonArray any)
        {
            CheckVariants(value, any, pointer, errors, exactlyOne: false);
        }
        if (schema["oneOf"] is JsonArray one)
        {
            CheckVariants(value, one, pointer, errors, exactlyOne: true);
        }
    }

    private static void CheckNumber(JsonElement value, JsonObject schema, string pointer, List<SchemaError> errors)
    {
        double number = ToDouble(value);
        string shown = JsonText.Describe(value);
        if (Limit(schema, "minimum") is { } min && number < min)
        {
            Add(errors, pointer, $"{shown} is below the minimum {JsonText.Number(min)}");
        }
        if (Limit(schema, "maximum") is { } max && number > max)
        {
            Add(errors, pointer, $"{shown} is above the maximum {JsonText.Number(max)}");
        }
        if (Limit(schema, "exclusiveMinimum") is { } xmin && number <= xmin)
        {
            Add(errors, pointer, $"{shown} must be greater than {JsonText.Number(xmin)}");
        }
        if (Limit(schema, "exclusiveMaximum") is { } xmax && number >= xmax)
        {
            Add(errors, pointer, $"{shown} must be less than {JsonText.Number(xmax)}");
        }
    }

    private static void CheckString(string text, JsonObject schema, string pointer, List<SchemaError> errors)
    {
        double? min = Limit(schema, "minLength");
        double? max = Limit(schema, "maxLength");
        if (min is null && max is null)
        {
            return;
        }
        int length = JsonText.CodePoints(text);
        if (length < min)
        {
            Add(errors, pointer, length == 0
                ? $"the empty string is too short; the minimum length is {JsonText.Number(min.Value)} character{(min == 1 ? "" : "s")}"
                : $"{JsonText.Quote(text)} has {length} characters, fewer than the minimum {JsonText.Number(min.Value)}");
        }
        if (length > max)
        {
            Add(errors, pointer, $"a string of {length} characters is longer than the maximum {JsonText.Number(max.Value)} characters");
        }
    }

    private static void CheckArray(JsonElement value, JsonObject schema, string pointer, List<SchemaError> errors)
    {
        int count = value.GetArrayLength();
        if (Limit(schema, "minItems") is { } min && count < min)
        {
            Add(errors, pointer, $"an array of {count} items is shorter than the minimum {JsonText.Number(min)}");
        }
        if (Limit(schema, "maxItems") is { } max && count > max)
        {
            Add(errors, pointer, $"an array of {count} items is longer than the maximum {JsonText.Number(max)}");
        }
        if (schema["items"] is JsonObject or JsonValue)
        {
            var items = schema["items"];
            int index = 0;
            foreach (var element in value.EnumerateArray())
            {
                Check(element, items, JsonText.Child(pointer, index++), errors);
            }
        }
    }

    private static void CheckObject(JsonElement value, JsonObject schema, string pointer, List<SchemaError> errors)
    {
        if (schema["required"] is JsonArray required)
        {
            foreach (var name in required)
            {
                if (name?.GetValueKind() == JsonValueKind.String && !value.TryGetProperty(name.GetValue<string>(), out _))
                {
                    Add(errors, pointer, $"the required property `{name.GetValue<string>()}` is missing");
                }
            }
        }
        var properties = schema["properties"] as JsonObject;
        schema.TryGetPropertyValue("additionalProperties", out var additional);
        foreach (var property in value.EnumerateObject())
        {
            string child = JsonText.Child(pointer, property.Name);
            if (properties is not null && properties.TryGetPropertyValue(property.Name, out var propertySchema))
            {
                Check(property.Value, propertySchema, child, errors);
            }
            else if (additional is JsonValue v && v.GetValueKind() == JsonValueKind.False)
            {
                string known = properties is null || properties.Count == 0 ? "none" : string.Join(", ", properties.Select(p => p.Key));
                Add(errors, child, $"unknown property `{property.Name}`; the allowed properties are {known}");
            }
            else if (additional is JsonObject)
            {
                Check(property.Value, additional, child, errors);
            }
        }
    }

    private static void CheckVariants(JsonElement value, JsonArray variants, string pointer, List<SchemaError> errors, bool exactlyOne)
    {
        var results = new List<(JsonNode? Schema, List<SchemaError> Errors)>(variants.Count);
        foreach (var variant in variants)
        {
            var variantErrors = new List<SchemaError>();
            Check(value, variant, pointer, variantErrors);
            results.Add((variant, variantErrors));
        }
        int passed = results.Count(r => r.Errors.Count == 0);
        if (exactlyOne ? passed == 1 : passed >= 1)
        {
            return;
        }

        // Variants told apart by their required properties (Workers AI's Prompt and Messages forms): the client meant
        // the one whose required properties it sent.
        if (value.ValueKind == JsonValueKind.Object && results.Count > 0 && results.All(r => Required(r.Schema).Count > 0))
        {
            var present = results.Where(r => Required(r.Schema).All(name => value.TryGetProperty(name, out _))).ToList();
            if (present.Count == 0)
            {
                var names = results.SelectMany(r => Required(r.Schema)).Distinct(StringComparer.Ordinal).ToList();
                Add(errors, pointer, names.Count == 1 ? $"the required property `{names[0]}` is missing" : $"one of {JsonText.Names(names)} is required");
                return;
            }
            if (present.Count > 1 && exactlyOne)
            {
                var names = present.Select(r => Required(r.Schema)[0]).Distinct(StringComparer.Ordinal).ToList();
                Add(errors, pointer, $"send either {string.Join(" or ", names.Select(n => "`" + n + "`"))}, not both");
                return;
            }
            if (present.Count == 1)
            {
                errors.AddRange(present[0].Errors);
                return;
            }
        }
        if (passed > 1)
        {
            Add(errors, pointer, $"{JsonText.Describe(value)} matches {passed} of the allowed forms; it must match exactly one");
            return;
        }

        // No variant matched: report the one closest to the value, or the types that would have done.
        var typed = results.Where(r => r.Schema is not JsonObject o || o["type"] is not { } t || TypeNames(t).Any(n => HasType(value, n))).ToList();
        if (typed.Count == 0)
        {
            var types = results.SelectMany(r => TypeNames(r.Schema!["type"]!)).Distinct(StringComparer.Ordinal);
            Add(errors, pointer, $"expected {JsonText.Types(types)}, found {JsonText.Describe(value)}");
            return;
        }
        errors.AddRange(typed.OrderBy(r => r.Errors.Count).First().Errors);
    }

    private static List<string> Required(JsonNode? schema) =>
        schema?["required"] is JsonArray required
            ? [.. required.Where(n => n?.GetValueKind() == JsonValueKind.String).Select(n => n!.GetValue<string>())]
            : [];

    private static List<string> TypeNames(JsonNode typeNode) => typeNode switch
    {
        JsonArray array => [.. array.Where(n => n?.GetValueKind() == JsonValueKind.String).Select(n => n!.GetValue<string>())],
        JsonValue v when v.GetValueKind() == JsonValueKind.String => [v.GetValue<string>()],
        _ => [],
    };

    private static bool HasType(JsonElement value, string type) => type switch
    {
        "string" => value.ValueKind == JsonValueKind.String,
        "number" => value.ValueKind == JsonValueKind.Number,
        "integer" => value.ValueKind == JsonValueKind.Number && IsInteger(value),
        "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "object" => value.ValueKind == JsonValueKind.Object,
        "array" => value.ValueKind == JsonValueKind.Array,
        "null" => value.ValueKind == JsonValueKind.Null,
        _ => true, // an unknown type name constrains nothing
    };

    /// <summary>A number with no fractional part (1, 1.0, 1e3), judged on its double value; numbers beyond the double
    /// range count as integers (every double that large is integral).</summary>
    internal static bool IsInteger(JsonElement value)
    {
        double d = ToDouble(value);
        return double.IsInfinity(d) || Math.Floor(d) == d;
    }

    /// <summary>The number as a double; ±infinity when it is beyond the double range (JSON has no infinities, so this
    /// only happens for literals like 1e400).</summary>
    internal static double ToDouble(JsonElement value) =>
        value.TryGetDouble(out double d) ? d : value.GetRawText().StartsWith('-') ? double.NegativeInfinity : double.PositiveInfinity;

    private static double? Limit(JsonObject schema, string keyword) =>
        schema[keyword] is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.GetValue<double>() : null;

    private static bool SameJson(JsonElement value, JsonNode? node)
    {
        if (node is null)
        {
            return value.ValueKind == JsonValueKind.Null;
        }
        using var document = JsonDocument.Parse(node.ToJsonString());
        if (value.ValueKind == JsonValueKind.Number && document.RootElement.ValueKind == JsonValueKind.Number)
        {
            return ToDouble(value) == ToDouble(document.RootElement); // 1 and 1.0 are the same number
        }
        return JsonElement.DeepEquals(value, document.RootElement);
    }

    private static string Show(JsonNode? node) => node is null ? "null" : node.ToJsonString();

    private static void Add(List<SchemaError> errors, string pointer, string message) =>
        errors.Add(new SchemaError(JsonText.Display(pointer), message));
}
