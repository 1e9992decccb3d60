// Short human descriptions of JSON values and JSON pointers for error messages ("found the string \"yes\"",
// "/messages/0/content"), shared by the schema validator and the request parser.

using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Sirocco.Server.Protocol;

internal static class JsonText
{
    /// <summary>Longest value quoted in a message; longer ones are cut and their length is given instead.</summary>
    public const int MaxQuotedChars = 40;

    private static readonly JsonSerializerOptions s_quoting = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The pointer of a child: <c>/a</c> + <c>b</c> → <c>/a/b</c>, escaping <c>~</c> and <c>/</c> (RFC 6901).</summary>
    public static string Child(string pointer, string property) =>
        pointer + "/" + property.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    /// <summary>The pointer of an array element.</summary>
    public static string Child(string pointer, int index) => pointer + "/" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>How messages show a pointer: the body itself is <c>/</c> (as Workers AI writes it).</summary>
    public static string Display(string pointer) => pointer.Length == 0 ? "/" : pointer;

    /// <summary>The value as a message shows it after "found": <c>1.5</c>, <c>true</c>, <c>null</c>,
    /// <c>the string "yes"</c>, <c>an object</c>, <c>an array</c>.</summary>
    public static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => "the string " + Quote(value.GetString()!),
        JsonValueKind.Number => Cut(value.GetRawText()),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Null => "null",
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => value.GetArrayLength() == 0 ? "an empty array" : "an array",
        _ => "nothing",
    };

    /// <summary>A string as JSON, cut to <see cref="MaxQuotedChars"/> with its length appended when longer.</summary>
    public static string Quote(string text)
    {
        if (text.Length <= MaxQuotedChars)
        {
            return JsonSerializer.Serialize(text, s_quoting);
        }
        int cut = MaxQuotedChars;
        if (char.IsHighSurrogate(text[cut - 1]))
        {
            cut--; // never split a surrogate pair
        }
        return JsonSerializer.Serialize(text[..cut], s_quoting)[..^1] + "…\" (" + CodePoints(text) + " characters)";
    }

    /// <summary>"a string", "an integer", … for a JSON Schema type name.</summary>
    public static string Article(string type) => type switch
    {
        "integer" or "object" or "array" => "an " + type,
        "null" => "null",
        _ => "a " + type,
    };

    /// <summary>"a string or an array" for a list of JSON Schema type names.</summary>
    public static string Types(IEnumerable<string> types)
    {
        var list = types.Select(Article).ToList();
        return list.Count switch
        {
            0 => "nothing",
            1 => list[0],
            _ => string.Join(", ", list.Take(list.Count - 1)) + " or " + list[^1],
        };
    }

    /// <summary>"`a`, `b` or `c`".</summary>
    public static string Names(IReadOnlyList<string> names)
    {
        var quoted = names.Select(n => "`" + n + "`").ToList();
        return quoted.Count <= 1 ? string.Concat(quoted) : string.Join(", ", quoted.Take(quoted.Count - 1)) + " or " + quoted[^1];
    }

    /// <summary>Unicode code points in <paramref name="text"/> (a surrogate pair counts once), as JSON Schema's
    /// minLength/maxLength count them.</summary>
    public static int CodePoints(string text)
    {
        int count = text.Length;
        for (int i = 0; i + 1 < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && char.IsLowSurrogate(text[i + 1]))
            {
                count--;
                i++;
            }
        }
        return count;
    }

    private static string Cut(string raw) => raw.Length <= MaxQuotedChars ? raw : raw[..MaxQuotedChars] + "…";

    /// <summary>Formats a schema number the way JSON writes it (5, 0.001, 9999999999).</summary>
    public static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Joins error sentences for one message.</summary>
    public static string Join(IEnumerable<string> sentences)
    {
        var builder = new StringBuilder();
        foreach (string s in sentences)
        {
            if (builder.Length > 0)
            {
                builder.Append("; ");
            }
            builder.Append(s);
        }
        return builder.ToString();
    }
}
