// Writes a Hugging Face tokenizer.json (and a minimal tokenizer_config.json) for a loaded Tokenizer, laid out like the
// files transformers produces for Llama/Mistral SentencePiece models. Synthetic model directories ship these, and the
// tests read them back through TokenizerJsonReader to check that the tokenizer.json path matches SentencePiece.

using System.Text.Encodings.Web;
using System.Text.Json;

namespace Sirocco.Engine.Tokenization;

/// <summary>Serializes a <see cref="Tokenizer"/> as Hugging Face <c>tokenizer.json</c>.</summary>
public static class TokenizerJsonWriter
{
    private static readonly JsonWriterOptions s_options = new()
    {
        Indented = true,
        // Pieces are mostly non-ASCII (▁, CJK); write them as text, as Hugging Face does, not as \u escapes.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Writes <c>tokenizer.json</c> for <paramref name="tokenizer"/> to <paramref name="path"/>.</summary>
    /// <exception cref="NotSupportedException">The tokenizer uses a setting tokenizer.json cannot express
    /// (remove_extra_whitespaces).</exception>
    public static void Write(Tokenizer tokenizer, string path)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        Write(tokenizer, stream);
    }

    /// <summary>Writes <c>tokenizer.json</c> for <paramref name="tokenizer"/> to <paramref name="stream"/> (UTF-8).</summary>
    public static void Write(Tokenizer tokenizer, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(stream);
        var options = tokenizer.Options;
        if (options.RemoveExtraWhitespaces)
        {
            throw new NotSupportedException("tokenizer.json has no equivalent of SentencePiece's remove_extra_whitespaces");
        }
        if (options.AddDummyPrefix && !options.EscapeWhitespaces)
        {
            throw new NotSupportedException("tokenizer.json cannot prepend a dummy prefix without escaping spaces as ▁");
        }

        using var json = new Utf8JsonWriter(stream, s_options);
        json.WriteStartObject();
        json.WriteString("version", "1.0");
        json.WriteNull("truncation");
        json.WriteNull("padding");
        WriteAddedTokens(json, tokenizer);
        WriteNormalization(json, tokenizer);
        WritePostProcessor(json, tokenizer);
        WriteDecoder(json, options);
        WriteModel(json, tokenizer);
        json.WriteEndObject();
    }

    /// <summary>Writes a minimal <c>tokenizer_config.json</c> naming the special tokens, which
    /// <see cref="TokenizerJsonReader"/> reads to find BOS and EOS.</summary>
    public static void WriteConfig(Tokenizer tokenizer, string path)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        using var json = new Utf8JsonWriter(stream, s_options);
        json.WriteStartObject();
        json.WriteBoolean("add_bos_token", tokenizer.BosId >= 0);
        json.WriteBoolean("add_eos_token", false);
        WriteTokenName(json, "bos_token", tokenizer, tokenizer.BosId);
        WriteTokenName(json, "eos_token", tokenizer, tokenizer.EosId);
        WriteTokenName(json, "unk_token", tokenizer, tokenizer.UnkId);
        WriteTokenName(json, "pad_token", tokenizer, tokenizer.PadId);
        json.WriteBoolean("clean_up_tokenization_spaces", false);
        json.WriteBoolean("legacy", true);
        json.WriteString("tokenizer_class", "LlamaTokenizer");
        json.WriteEndObject();
    }

    private static void WriteTokenName(Utf8JsonWriter json, string name, Tokenizer tokenizer, int id)
    {
        if (id >= 0)
        {
            json.WriteString(name, tokenizer.GetPiece(id));
        }
        else
        {
            json.WriteNull(name);
        }
    }

    private static void WriteAddedTokens(Utf8JsonWriter json, Tokenizer tokenizer)
    {
        json.WriteStartArray("added_tokens");
        for (int id = 0; id < tokenizer.VocabSize; id++)
        {
            var type = tokenizer.GetTokenType(id);
            if (type is not (TokenType.Control or TokenType.Unknown or TokenType.UserDefined))
            {
                continue;
            }
            json.WriteStartObject();
            json.WriteNumber("id", id);
            json.WriteString("content", tokenizer.GetPiece(id));
            json.WriteBoolean("single_word", false);
            json.WriteBoolean("lstrip", false);
            json.WriteBoolean("rstrip", false);
            json.WriteBoolean("normalized", type == TokenType.UserDefined);
            json.WriteBoolean("special", type != TokenType.UserDefined);
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }

    private static void WriteNormalization(Utf8JsonWriter json, Tokenizer tokenizer)
    {
        var options = tokenizer.Options;
        var pipeline = tokenizer.Pipeline;
        if (pipeline.PrefixOnlyIfMissing || pipeline.SplitBeforeSpaceSymbol)
        {
            // Came from a Metaspace tokenizer.json: keep that shape so it reads back the same.
            json.WriteNull("normalizer");
            json.WriteStartObject("pre_tokenizer");
            json.WriteString("type", "Metaspace");
            json.WriteString("replacement", "\u2581");
            json.WriteString("prepend_scheme", options.AddDummyPrefix ? "first" : "never");
            json.WriteBoolean("split", pipeline.SplitBeforeSpaceSymbol);
            json.WriteEndObject();
            return;
        }
        // The shape transformers writes for "legacy" Llama/Mistral tokenizers: Prepend ▁, then replace spaces.
        json.WriteStartObject("normalizer");
        json.WriteString("type", "Sequence");
        json.WriteStartArray("normalizers");
        if (options.AddDummyPrefix)
        {
            json.WriteStartObject();
            json.WriteString("type", "Prepend");
            json.WriteString("prepend", "\u2581");
            json.WriteEndObject();
        }
        if (options.EscapeWhitespaces)
        {
            WriteReplace(json, " ", "\u2581");
        }
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteNull("pre_tokenizer");
    }

    private static void WriteReplace(Utf8JsonWriter json, string pattern, string content)
    {
        json.WriteStartObject();
        json.WriteString("type", "Replace");
        json.WriteStartObject("pattern");
        json.WriteString("String", pattern);
        json.WriteEndObject();
        json.WriteString("content", content);
        json.WriteEndObject();
    }

    private static void WritePostProcessor(Utf8JsonWriter json, Tokenizer tokenizer)
    {
        if (tokenizer.BosId < 0)
        {
            json.WriteNull("post_processor");
            return;
        }
        string bos = tokenizer.GetPiece(tokenizer.BosId);
        json.WriteStartObject("post_processor");
        json.WriteString("type", "TemplateProcessing");
        json.WriteStartArray("single");
        WriteTemplateItem(json, "SpecialToken", bos, 0);
        WriteTemplateItem(json, "Sequence", "A", 0);
        json.WriteEndArray();
        json.WriteStartArray("pair");
        WriteTemplateItem(json, "SpecialToken", bos, 0);
        WriteTemplateItem(json, "Sequence", "A", 0);
        WriteTemplateItem(json, "SpecialToken", bos, 1);
        WriteTemplateItem(json, "Sequence", "B", 1);
        json.WriteEndArray();
        json.WriteStartObject("special_tokens");
        json.WriteStartObject(bos);
        json.WriteString("id", bos);
        json.WriteStartArray("ids");
        json.WriteNumberValue(tokenizer.BosId);
        json.WriteEndArray();
        json.WriteStartArray("tokens");
        json.WriteStringValue(bos);
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteTemplateItem(Utf8JsonWriter json, string kind, string id, int typeId)
    {
        json.WriteStartObject();
        json.WriteStartObject(kind);
        json.WriteString("id", id);
        json.WriteNumber("type_id", typeId);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteDecoder(Utf8JsonWriter json, TokenizerOptions options)
    {
        json.WriteStartObject("decoder");
        json.WriteString("type", "Sequence");
        json.WriteStartArray("decoders");
        WriteReplace(json, "\u2581", " ");
        json.WriteStartObject();
        json.WriteString("type", "ByteFallback");
        json.WriteEndObject();
        json.WriteStartObject();
        json.WriteString("type", "Fuse");
        json.WriteEndObject();
        if (options.AddDummyPrefix)
        {
            json.WriteStartObject();
            json.WriteString("type", "Strip");
            json.WriteString("content", " ");
            json.WriteNumber("start", 1);
            json.WriteNumber("stop", 0);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteModel(Utf8JsonWriter json, Tokenizer tokenizer)
    {
        json.WriteStartObject("model");
        json.WriteString("type", "BPE");
        json.WriteNull("dropout");
        if (tokenizer.UnkId >= 0)
        {
            json.WriteString("unk_token", tokenizer.GetPiece(tokenizer.UnkId));
        }
        else
        {
            json.WriteNull("unk_token");
        }
        json.WriteNull("continuing_subword_prefix");
        json.WriteNull("end_of_word_suffix");
        json.WriteBoolean("fuse_unk", true);
        json.WriteBoolean("byte_fallback", tokenizer.Options.ByteFallback);
        json.WriteBoolean("ignore_merges", tokenizer.Pipeline.IgnoreMerges);
        json.WriteStartObject("vocab");
        for (int id = 0; id < tokenizer.VocabSize; id++)
        {
            json.WriteNumber(tokenizer.GetPiece(id), id);
        }
        json.WriteEndObject();
        var merges = tokenizer.MergeList ?? DeriveMerges(tokenizer);
        // "left right" strings, one line each, as Mistral's published file has them; [left, right] pairs only when a
        // piece contains a space and the string form would be ambiguous.
        bool asPairs = merges.Any(m => tokenizer.GetPiece(m.Left).Contains(' ', StringComparison.Ordinal)
            || tokenizer.GetPiece(m.Right).Contains(' ', StringComparison.Ordinal));
        json.WriteStartArray("merges");
        foreach (var (left, right) in merges)
        {
            if (asPairs)
            {
                json.WriteStartArray();
                json.WriteStringValue(tokenizer.GetPiece(left));
                json.WriteStringValue(tokenizer.GetPiece(right));
                json.WriteEndArray();
            }
            else
            {
                json.WriteStringValue(tokenizer.GetPiece(left) + " " + tokenizer.GetPiece(right));
            }
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>The merge list Hugging Face's SentencePiece converter derives from a scored vocabulary
    /// (transformers convert_slow_tokenizer.generate_merges): every split of every piece into two pieces that are both
    /// in the vocabulary, each piece's splits ordered by (left id, right id), pieces taken in id order; then a stable
    /// sort by merged piece score, then left length, then right length (lengths in code points), all descending.</summary>
    internal static List<(int Left, int Right)> DeriveMerges(Tokenizer tokenizer)
    {
        var candidates = new List<(int Left, int Right, float Score, int LeftLength, int RightLength)>();
        var local = new List<(int Left, int Right, int LeftLength, int RightLength)>();
        var starts = new List<int>();
        for (int id = 0; id < tokenizer.VocabSize; id++)
        {
            string piece = tokenizer.GetPiece(id);
            starts.Clear();
            for (int i = 0; i < piece.Length; i += char.IsSurrogatePair(piece, i) ? 2 : 1)
            {
                starts.Add(i);
            }
            local.Clear();
            for (int k = 1; k < starts.Count; k++)
            {
                int split = starts[k];
                if (tokenizer.TryGetId(piece[..split], out int left) && tokenizer.TryGetId(piece[split..], out int right))
                {
                    local.Add((left, right, k, starts.Count - k));
                }
            }
            local.Sort((a, b) => a.Left != b.Left ? a.Left.CompareTo(b.Left) : a.Right.CompareTo(b.Right));
            float score = tokenizer.GetScore(id);
            foreach (var (left, right, leftLength, rightLength) in local)
            {
                candidates.Add((left, right, score, leftLength, rightLength));
            }
        }
        // LINQ's OrderBy is stable, like Python's sorted(..., reverse=True).
        return [.. candidates
            .OrderByDescending(c => c.Score)
            .ThenByDescending(c => c.LeftLength)
            .ThenByDescending(c => c.RightLength)
            .Select(c => (c.Left, c.Right))];
    }
}
