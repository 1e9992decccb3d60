// Reads a Hugging Face tokenizer.json whose model is BPE (vocab + merges, optional byte_fallback) with the
// SentencePiece-style whitespace handling Llama/Mistral conversions use: a Prepend/Replace normalizer or a Metaspace
// pre-tokenizer. Called by TokenizerLoader and Tokenizer.LoadTokenizerJson. Merges are ranked by list order.
// Deliberate differences from the tokenizers library, to match SentencePiece and keep prompts safe: added tokens in
// the text are not split out as special ids, and decoding follows SentencePiece rather than the JSON's decoder.

using System.Text.Json;
using Sirocco.Engine.Formats;

namespace Sirocco.Engine.Tokenization;

/// <summary>Parser for Hugging Face <c>tokenizer.json</c> files.</summary>
internal static class TokenizerJsonReader
{
    private const long MaxFileBytes = 256L << 20;
    private const string Space = "\u2581";

    /// <summary>Reads and validates <paramref name="path"/>; BOS and EOS come from a <c>tokenizer_config.json</c> beside
    /// it when there is one, else from pieces named <c>&lt;s&gt;</c> and <c>&lt;/s&gt;</c>.</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="ModelFormatException">The JSON is malformed or inconsistent.</exception>
    /// <exception cref="UnsupportedModelException">A model type, normalizer or pre-tokenizer Sirocco does not implement.</exception>
    public static Tokenizer Load(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new FileNotFoundException($"{path}: no such file", path);
        }
        if (info.Length > MaxFileBytes)
        {
            throw new ModelFormatException(path, "file size", -1, $"a tokenizer.json of at most {MaxFileBytes >> 20} MiB", $"{info.Length} bytes");
        }
        using var doc = ParseJson(File.ReadAllBytes(path), path);
        string configPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", "tokenizer_config.json");
        JsonDocument? config = File.Exists(configPath) ? ParseJson(File.ReadAllBytes(configPath), configPath) : null;
        try
        {
            return Read(doc.RootElement, config?.RootElement, path, configPath);
        }
        finally
        {
            config?.Dispose();
        }
    }

    private static JsonDocument ParseJson(byte[] bytes, string path)
    {
        // JsonDocument does not skip a UTF-8 byte order mark; some editors write one.
        var json = bytes.AsMemory();
        if (json.Span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            json = json[3..];
        }
        try
        {
            return JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, $"JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})", -1, "valid JSON", e.Message);
        }
    }

    private static Tokenizer Read(JsonElement root, JsonElement? config, string path, string configPath)
    {
        string file = Path.GetFileName(path);
        Require(root, JsonValueKind.Object, path, "(root)");
        var model = Property(root, "model", path, "model", JsonValueKind.Object);

        string? modelType = OptionalString(model, "type", path, "model.type");
        if (modelType is not null && modelType != "BPE")
        {
            throw new UnsupportedModelException($"{file}: tokenizer model type \"{modelType}\" is not supported; Sirocco reads BPE tokenizer.json files only");
        }
        if (model.TryGetProperty("dropout", out var dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
        {
            throw new UnsupportedModelException($"{file}: BPE dropout is not supported");
        }
        foreach (string affix in (string[])["continuing_subword_prefix", "end_of_word_suffix"])
        {
            if (!string.IsNullOrEmpty(OptionalString(model, affix, path, "model." + affix)))
            {
                throw new UnsupportedModelException($"{file}: model.{affix} is not supported (SentencePiece-style BPE has none)");
            }
        }
        bool byteFallback = OptionalBool(model, "byte_fallback", path, "model.byte_fallback") ?? false;
        bool ignoreMerges = OptionalBool(model, "ignore_merges", path, "model.ignore_merges") ?? false;
        string? unkToken = OptionalString(model, "unk_token", path, "model.unk_token");

        // Vocabulary: model.vocab plus added_tokens, which together must number the ids 0..n-1 exactly once.
        var vocab = Property(model, "vocab", path, "model.vocab", JsonValueKind.Object);
        var byId = new Dictionary<int, string>();
        var addedTypes = new Dictionary<int, TokenType>();
        foreach (var entry in vocab.EnumerateObject())
        {
            int id = Id(entry.Value, path, $"model.vocab[\"{entry.Name}\"]");
            if (!byId.TryAdd(id, entry.Name))
            {
                throw new ModelFormatException(path, $"model.vocab[\"{entry.Name}\"]", -1, "a unique id", $"{id}, already used by \"{byId[id]}\"");
            }
        }
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind != JsonValueKind.Null)
        {
            Require(added, JsonValueKind.Array, path, "added_tokens");
            int index = 0;
            foreach (var token in added.EnumerateArray())
            {
                string field = $"added_tokens[{index++}]";
                Require(token, JsonValueKind.Object, path, field);
                int id = Id(Property(token, "id", path, field + ".id", JsonValueKind.Number), path, field + ".id");
                string content = OptionalString(token, "content", path, field + ".content")
                    ?? throw new ModelFormatException(path, field + ".content", -1, "a string", "nothing");
                bool special = OptionalBool(token, "special", path, field + ".special") ?? false;
                if (byId.TryGetValue(id, out string? existing) && existing != content)
                {
                    throw new ModelFormatException(path, field, -1, $"id {id} to name the same piece in model.vocab and added_tokens", $"\"{content}\" versus \"{existing}\"");
                }
                byId[id] = content;
                addedTypes[id] = special ? TokenType.Control : TokenType.UserDefined;
            }
        }
        int count = byId.Count;
        if (count == 0 || count > Tokenizer.MaxVocabSize)
        {
            throw new ModelFormatException(path, "model.vocab", -1, $"1..{Tokenizer.MaxVocabSize} entries", count.ToString());
        }
        var pieces = new string[count];
        foreach (var (id, piece) in byId)
        {
            if (id >= count)
            {
                int missing = Enumerable.Range(0, count).First(i => !byId.ContainsKey(i));
                throw new ModelFormatException(path, "model.vocab", -1, $"ids 0..{count - 1} with no gaps", $"id {id}, and no piece for id {missing}");
            }
            pieces[id] = piece;
        }

        var pieceToId = new Dictionary<string, int>(count, StringComparer.Ordinal);
        for (int id = 0; id < count; id++)
        {
            if (!pieceToId.TryAdd(pieces[id], id))
            {
                throw new ModelFormatException(path, "model.vocab", -1, "each piece once", $"\"{pieces[id]}\" at ids {pieceToId[pieces[id]]} and {id}");
            }
        }
        var types = new TokenType[count];
        for (int id = 0; id < count; id++)
        {
            types[id] = addedTypes.TryGetValue(id, out var t) ? t
                : byteFallback && Tokenizer.TryParseBytePiece(pieces[id], out _) ? TokenType.Byte
                : TokenType.Normal;
        }
        int unkId = -1;
        if (unkToken is not null)
        {
            if (!pieceToId.TryGetValue(unkToken, out unkId))
            {
                throw new ModelFormatException(path, "model.unk_token", -1, "a piece in the vocabulary", $"\"{unkToken}\"");
            }
            types[unkId] = TokenType.Unknown;
        }

        var merges = ReadMerges(model, pieceToId, path);
        var (options, pipeline) = ReadPipeline(root, path, file, byteFallback, ignoreMerges);
        int bosId = SpecialId(config, "bos_token", "<s>", pieceToId, configPath);
        int eosId = SpecialId(config, "eos_token", "</s>", pieceToId, configPath);
        int padId = config is not null ? SpecialId(config, "pad_token", null, pieceToId, configPath) : -1;
        return Tokenizer.Create(path, pieces, new float[count], types, new SpecialTokenIds(unkId, bosId, eosId, padId),
            options, merges, pipeline);
    }

    private static List<(int Left, int Right)> ReadMerges(JsonElement model, Dictionary<string, int> pieceToId, string path)
    {
        var merges = new List<(int, int)>();
        if (!model.TryGetProperty("merges", out var list) || list.ValueKind == JsonValueKind.Null)
        {
            return merges;
        }
        Require(list, JsonValueKind.Array, path, "model.merges");
        int index = 0;
        foreach (var merge in list.EnumerateArray())
        {
            string field = $"model.merges[{index++}]";
            string left, right;
            if (merge.ValueKind == JsonValueKind.String)
            {
                // Older files: "left right", split at the one space (pieces never contain U+0020).
                string text = merge.GetString()!;
                int space = text.IndexOf(' ', StringComparison.Ordinal);
                if (space <= 0 || space == text.Length - 1 || text.IndexOf(' ', space + 1) >= 0)
                {
                    throw new ModelFormatException(path, field, -1, "\"left right\" with exactly one space", $"\"{text}\"");
                }
                left = text[..space];
                right = text[(space + 1)..];
            }
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
            {
                left = merge[0].GetString()!;
                right = merge[1].GetString()!;
            }
            else
            {
                throw new ModelFormatException(path, field, -1, "a \"left right\" string or a [left, right] pair of strings", merge.ValueKind.ToString());
            }
            if (!pieceToId.TryGetValue(left, out int leftId) || !pieceToId.TryGetValue(right, out int rightId))
            {
                string missing = pieceToId.ContainsKey(left) ? right : left;
                throw new ModelFormatException(path, field, -1, "pieces that are in the vocabulary", $"\"{missing}\"");
            }
            merges.Add((leftId, rightId));
        }
        return merges;
    }

    /// <summary>Maps the normalizer and pre-tokenizer onto SentencePiece's whitespace flags. Accepted: no normalizer or
    /// a (Sequence of) Prepend("▁") and Replace(" " → "▁"); no pre-tokenizer or a (Sequence of one) Metaspace("▁").</summary>
    private static (TokenizerOptions Options, TextPipeline Pipeline) ReadPipeline(JsonElement root, string path, string file,
        bool byteFallback, bool ignoreMerges)
    {
        bool prepend = false;
        bool replace = false;
        if (root.TryGetProperty("normalizer", out var normalizer) && normalizer.ValueKind != JsonValueKind.Null)
        {
            foreach (var (step, field) in Flatten(normalizer, "normalizers", "normalizer", path))
            {
                string type = OptionalString(step, "type", path, field + ".type") ?? "";
                if (type == "Prepend" && OptionalString(step, "prepend", path, field + ".prepend") == Space)
                {
                    prepend = true;
                }
                else if (type == "Replace" && IsReplace(step, " ", Space))
                {
                    replace = true;
                }
                else
                {
                    throw new UnsupportedModelException($"{file}: {field} of type \"{type}\" is not supported; Sirocco handles " +
                        "SentencePiece-style tokenizers (Prepend \"▁\" and Replace \" \" with \"▁\") only");
                }
            }
        }

        bool metaspace = false;
        bool metaspacePrepend = false;
        bool split = false;
        if (root.TryGetProperty("pre_tokenizer", out var preTokenizer) && preTokenizer.ValueKind != JsonValueKind.Null)
        {
            var steps = Flatten(preTokenizer, "pretokenizers", "pre_tokenizer", path).ToList();
            foreach (var (step, field) in steps)
            {
                string type = OptionalString(step, "type", path, field + ".type") ?? "";
                if (type != "Metaspace" || steps.Count != 1)
                {
                    throw new UnsupportedModelException($"{file}: {field} of type \"{type}\" is not supported; Sirocco handles no " +
                        "pre-tokenizer or a single Metaspace");
                }
                string replacement = OptionalString(step, "replacement", path, field + ".replacement") ?? Space;
                if (replacement != Space)
                {
                    throw new UnsupportedModelException($"{file}: Metaspace replacement \"{replacement}\" is not supported; only \"▁\" is");
                }
                metaspace = true;
                string? scheme = OptionalString(step, "prepend_scheme", path, field + ".prepend_scheme");
                bool? addPrefixSpace = OptionalBool(step, "add_prefix_space", path, field + ".add_prefix_space");
                metaspacePrepend = scheme switch
                {
                    "always" or "first" => true,
                    "never" => false,
                    null => addPrefixSpace ?? true,
                    _ => throw new ModelFormatException(path, field + ".prepend_scheme", -1, "\"always\", \"first\" or \"never\"", $"\"{scheme}\""),
                };
                // The tokenizers library splits by default when the field is absent.
                split = OptionalBool(step, "split", path, field + ".split") ?? true;
            }
        }

        if (prepend && !replace && !metaspace)
        {
            throw new UnsupportedModelException($"{file}: a Prepend \"▁\" normalizer without Replace \" \" → \"▁\" is not supported");
        }
        var options = new TokenizerOptions
        {
            AddDummyPrefix = prepend || metaspacePrepend,
            EscapeWhitespaces = replace || metaspace,
            RemoveExtraWhitespaces = false,
            ByteFallback = byteFallback,
        };
        // A Prepend normalizer runs first and always adds ▁, so Metaspace's "only if missing" never matters then.
        var pipeline = new TextPipeline(PrefixOnlyIfMissing: metaspacePrepend && !prepend, SplitBeforeSpaceSymbol: split, IgnoreMerges: ignoreMerges);
        return (options, pipeline);
    }

    private static bool IsReplace(JsonElement step, string from, string to) =>
        step.TryGetProperty("pattern", out var pattern) && pattern.ValueKind == JsonValueKind.Object
        && pattern.TryGetProperty("String", out var s) && s.ValueKind == JsonValueKind.String && s.GetString() == from
        && step.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String && c.GetString() == to;

    /// <summary>A step, or the steps of a Sequence, each with its field path for messages.</summary>
    private static IEnumerable<(JsonElement Step, string Field)> Flatten(JsonElement element, string listName, string field, string path)
    {
        Require(element, JsonValueKind.Object, path, field);
        if (OptionalString(element, "type", path, field + ".type") != "Sequence")
        {
            yield return (element, field);
            yield break;
        }
        var list = Property(element, listName, path, $"{field}.{listName}", JsonValueKind.Array);
        int i = 0;
        foreach (var step in list.EnumerateArray())
        {
            string stepField = $"{field}.{listName}[{i++}]";
            Require(step, JsonValueKind.Object, path, stepField);
            yield return (step, stepField);
        }
    }

    /// <summary>The id of a special token named in tokenizer_config.json (a string or {"content": ...}), else the id
    /// of <paramref name="fallback"/> if the vocabulary has it, else -1.</summary>
    private static int SpecialId(JsonElement? config, string key, string? fallback, Dictionary<string, int> pieceToId, string configPath)
    {
        string? name = fallback;
        if (config is { ValueKind: JsonValueKind.Object } c && c.TryGetProperty(key, out var value))
        {
            name = value.ValueKind switch
            {
                JsonValueKind.String => value.GetString(),
                JsonValueKind.Object when value.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String => content.GetString(),
                JsonValueKind.Null => null,
                _ => throw new ModelFormatException(configPath, key, -1, "a token string, {\"content\": ...} or null", value.ValueKind.ToString()),
            };
            if (name is not null && !pieceToId.ContainsKey(name))
            {
                throw new ModelFormatException(configPath, key, -1, "a piece in the tokenizer.json vocabulary", $"\"{name}\"");
            }
        }
        return name is not null && pieceToId.TryGetValue(name, out int id) ? id : -1;
    }

    private static JsonElement Property(JsonElement obj, string name, string path, string field, JsonValueKind kind)
    {
        if (!obj.TryGetProperty(name, out var value))
        {
            throw new ModelFormatException(path, field, -1, $"a {Describe(kind)}", "nothing");
        }
        Require(value, kind, path, field);
        return value;
    }

    private static string? OptionalString(JsonElement obj, string name, string path, string field)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        Require(value, JsonValueKind.String, path, field);
        return value.GetString();
    }

    private static bool? OptionalBool(JsonElement obj, string name, string path, string field)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            throw new ModelFormatException(path, field, -1, "true or false", value.ValueKind.ToString());
        }
        return value.GetBoolean();
    }

    private static int Id(JsonElement value, string path, string field)
    {
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int id) || id < 0 || id >= Tokenizer.MaxVocabSize)
        {
            throw new ModelFormatException(path, field, -1, $"an integer id in 0..{Tokenizer.MaxVocabSize - 1}", value.ToString());
        }
        return id;
    }

    private static void Require(JsonElement value, JsonValueKind kind, string path, string field)
    {
        if (value.ValueKind != kind)
        {
            throw new ModelFormatException(path, field, -1, $"a {Describe(kind)}", value.ValueKind.ToString());
        }
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "JSON object",
        JsonValueKind.Array => "JSON array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        _ => kind.ToString(),
    };
}
