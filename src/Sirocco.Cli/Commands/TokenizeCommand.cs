// `sirocco tokenize`: encodes stdin to token ids or decodes ids to text with a model's tokenizer, for checking prompts
// and scripting. The text/ids work is in Run, over a TextReader and TextWriter, so tests drive it without a console.

using System.CommandLine;
using System.Text;
using System.Text.Json;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Cli.Commands;

internal static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model")
        {
            Description = "tokenizer.model, tokenizer.json, a .gguf file, or a model directory holding a tokenizer",
            Required = true,
        };
        var bos = new Option<bool>("--bos") { Description = "Prepend the beginning-of-sequence token when encoding" };
        var decode = new Option<bool>("--decode") { Description = "Read a JSON array of ids and print the decoded text (exactly, without a trailing newline)" };
        var jsonl = new Option<bool>("--jsonl")
        {
            Description = "One item per line: each line a JSON string (or with --decode a JSON array of ids); prints one JSON result per line",
        };
        var command = new Command("tokenize", "Encode stdin (all of it, newlines included) to a JSON array of token ids, or decode ids with --decode")
        {
            model, bos, decode, jsonl,
        };
        command.SetAction(parseResult => CliErrors.Run("tokenize", () =>
        {
            var tokenizer = TokenizerLoader.Load(parseResult.GetValue(model)!);
            // Raw UTF-8 both ways, whatever the terminal's settings: the text must reach the tokenizer unchanged.
            using var input = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false));
            using var output = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false));
            return Run(tokenizer, new TokenizeSettings(parseResult.GetValue(bos), parseResult.GetValue(decode), parseResult.GetValue(jsonl)), input, output);
        }));
        return command;
    }

    /// <summary>Encodes or decodes <paramref name="input"/> to <paramref name="output"/>; returns the exit code.</summary>
    /// <exception cref="CliUsageException">The input is not what the mode expects; the message names the line.</exception>
    internal static int Run(Tokenizer tokenizer, TokenizeSettings settings, TextReader input, TextWriter output)
    {
        if (!settings.Jsonl)
        {
            string all = input.ReadToEnd();
            if (settings.Decode)
            {
                output.Write(tokenizer.Decode(ParseIds(all, tokenizer, lineNumber: null)));
            }
            else
            {
                output.WriteLine(FormatIds(tokenizer.Encode(all, addBos: settings.Bos)));
            }
            output.Flush();
            return 0;
        }

        int lineNumber = 0;
        while (input.ReadLine() is { } line)
        {
            lineNumber++;
            if (settings.Decode)
            {
                output.WriteLine(QuoteJson(tokenizer.Decode(ParseIds(line, tokenizer, lineNumber))));
            }
            else
            {
                output.WriteLine(FormatIds(tokenizer.Encode(ParseString(line, lineNumber), addBos: settings.Bos)));
            }
        }
        output.Flush();
        return 0;
    }

    private static string FormatIds(int[] ids) => "[" + string.Join(',', ids) + "]";

    /// <summary>A JSON string literal escaping only what JSON requires (quote, backslash, control characters), so
    /// decoded text stays readable: System.Text.Json's encoders also escape emoji and other non-BMP characters.</summary>
    internal static string QuoteJson(string text)
    {
        var sb = new StringBuilder(text.Length + 2).Append('"');
        foreach (char c in text)
        {
            switch (c)
            {
                case '"':
                    sb.Append("\\\"");
                    break;
                case '\\':
                    sb.Append("\\\\");
                    break;
                case '\n':
                    sb.Append("\\n");
                    break;
                case '\r':
                    sb.Append("\\r");
                    break;
                case '\t':
                    sb.Append("\\t");
                    break;
                case < ' ' or '\u007F':
                    sb.Append("\\u").Append(((int)c).ToString("x4"));
                    break;
                default:
                    // Lone surrogates cannot occur: decoding only produces well-formed text.
                    sb.Append(c);
                    break;
            }
        }
        return sb.Append('"').ToString();
    }

    private static string ParseString(string line, int lineNumber)
    {
        using var doc = ParseJson(line, lineNumber, "a JSON string");
        if (doc.RootElement.ValueKind != JsonValueKind.String)
        {
            throw new CliUsageException($"line {lineNumber}: expected a JSON string, found a JSON {doc.RootElement.ValueKind.ToString().ToLowerInvariant()}");
        }
        return doc.RootElement.GetString()!;
    }

    private static int[] ParseIds(string text, Tokenizer tokenizer, int? lineNumber)
    {
        string where = lineNumber is null ? "input" : $"line {lineNumber}";
        using var doc = ParseJson(text, lineNumber, "a JSON array of token ids");
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Array)
        {
            throw new CliUsageException($"{where}: expected a JSON array of token ids, found a JSON {root.ValueKind.ToString().ToLowerInvariant()}");
        }
        var ids = new int[root.GetArrayLength()];
        int i = 0;
        foreach (var element in root.EnumerateArray())
        {
            if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt32(out int id))
            {
                throw new CliUsageException($"{where}: element {i} is not an integer token id (found {element.GetRawText()})");
            }
            if (id < 0 || id >= tokenizer.VocabSize)
            {
                throw new CliUsageException($"{where}: token id {id} (element {i}) is outside the vocabulary [0, {tokenizer.VocabSize})");
            }
            ids[i++] = id;
        }
        return ids;
    }

    private static JsonDocument ParseJson(string text, int? lineNumber, string expected)
    {
        try
        {
            return JsonDocument.Parse(text);
        }
        catch (JsonException e)
        {
            string where = lineNumber is null ? $"input line {e.LineNumber + 1}" : $"line {lineNumber}";
            throw new CliUsageException($"{where}: expected {expected}, but it is not valid JSON ({e.Message})");
        }
    }
}

/// <summary>The switches of <c>sirocco tokenize</c>.</summary>
/// <param name="Bos">Prepend BOS when encoding.</param>
/// <param name="Decode">Ids to text instead of text to ids.</param>
/// <param name="Jsonl">One JSON item per input line and per output line.</param>
internal sealed record TokenizeSettings(bool Bos, bool Decode, bool Jsonl);
