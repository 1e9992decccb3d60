// tokenizer.json variants beyond what TokenizerJsonWriter emits: Metaspace pre-tokenizers, merges as pairs, BOMs,
// and the error paths (unsupported models, malformed JSON, inconsistent vocabularies).

using System.Text;
using System.Text.Json.Nodes;
using Sirocco.Engine.Formats;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

public class TokenizerJsonReaderTests
{
    private static readonly Lazy<string> s_mistralJson = new(() =>
    {
        using var stream = new MemoryStream();
        TokenizerJsonWriter.Write(GoldenData.Model, stream);
        return Encoding.UTF8.GetString(stream.ToArray());
    });

    private static readonly Lazy<string> s_smallJson = new(() =>
    {
        var small = SentencePieceModelReader.Parse(ProtoWriter.Model(ProtoWriter.SmallVocabulary), "small.model");
        using var stream = new MemoryStream();
        TokenizerJsonWriter.Write(small, stream);
        return Encoding.UTF8.GetString(stream.ToArray());
    });

    private static Tokenizer LoadJson(string json, byte[]? prefix = null)
    {
        using var dir = new TempDir();
        string path = dir.File("tokenizer.json");
        File.WriteAllBytes(path, [.. prefix ?? [], .. Encoding.UTF8.GetBytes(json)]);
        return TokenizerLoader.Load(path);
    }

    private static string Edit(string json, Action<JsonNode> edit)
    {
        var node = JsonNode.Parse(json)!;
        edit(node);
        return node.ToJsonString();
    }

    private static string WithMetaspace(string prependScheme, bool split) => Edit(s_mistralJson.Value, root =>
    {
        root["normalizer"] = null;
        root["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Metaspace",
            ["replacement"] = "\u2581",
            ["prepend_scheme"] = prependScheme,
            ["split"] = split,
        };
    });

    [Fact]
    public void Metaspace_PrependsOnlyWhenTextDoesNotStartWithTheReplacement()
    {
        var tok = LoadJson(WithMetaspace("first", split: false));
        Assert.Equal([22557], tok.Encode(" Hello"));               // SentencePiece gives [▁, ▁Hello]
        Assert.Equal([28705, 22557], GoldenData.Model.Encode(" Hello"));
        Assert.Equal(GoldenData.Model.Encode("Hello world"), tok.Encode("Hello world"));
        Assert.Equal("Hello world", TokenizerRoundTrip(tok));
    }

    private static string TokenizerRoundTrip(Tokenizer tok) => tok.Decode(tok.Encode("Hello world"));

    [Fact]
    public void Metaspace_WithSplit_EncodesEachWordOnItsOwn()
    {
        var tok = LoadJson(WithMetaspace("always", split: true));
        Assert.Equal([28705, 28705], tok.Encode("  "));            // ▁ ▁ rather than ▁▁ (259)
        Assert.Equal([259], GoldenData.Model.Encode(" "));
        Assert.Equal(GoldenData.Model.Encode("The quick brown fox."), tok.Encode("The quick brown fox."));
    }

    [Fact]
    public void Metaspace_Never_AddsNoPrefix()
    {
        var tok = LoadJson(WithMetaspace("never", split: false));
        Assert.Equal([16230], tok.Encode("Hello"));
        Assert.Equal("Hello", tok.GetPiece(16230));
    }

    [Fact]
    public void Merges_AsPairs_AndWithAByteOrderMark_ReadTheSame()
    {
        string json = Edit(s_smallJson.Value, root =>
        {
            var merges = root["model"]!["merges"]!.AsArray();
            var pairs = new JsonArray();
            foreach (var m in merges)
            {
                string[] parts = m!.GetValue<string>().Split(' ');
                pairs.Add(new JsonArray(parts[0], parts[1]));
            }
            root["model"]!["merges"] = pairs;
        });
        var tok = LoadJson(json, prefix: [0xEF, 0xBB, 0xBF]);
        Assert.Equal([9], tok.Encode("ab"));
        Assert.Equal([8, 11, 5], tok.Encode("a<U>b"));
    }

    [Fact]
    public void SmallVocabulary_RoundTripsThroughJson()
    {
        var tok = LoadJson(s_smallJson.Value);
        Assert.Equal(TokenType.UserDefined, tok.GetTokenType(11));
        Assert.Equal(TokenType.Unknown, tok.GetTokenType(0));
        Assert.Equal([9], tok.Encode("ab"));
    }

    [Fact]
    public void MergesOfByteTokens_ApplyToByteFallbackSymbols()
    {
        // Hugging Face turns an unknown character into byte tokens before merging, so merges may join byte tokens.
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int b = 0; b < 256; b++)
        {
            vocab[$"<0x{b:X2}>"] = 3 + b;
        }
        vocab["\u2581"] = 259;
        vocab["a"] = 260;
        vocab["<0xC3><0xA9>"] = 261;
        vocab["\u2581a"] = 262;
        var root = new JsonObject();
        root["added_tokens"] = new JsonArray();
        root["normalizer"] = JsonNode.Parse("""{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}""");
        root["model"] = new JsonObject
        {
            ["type"] = "BPE",
            ["unk_token"] = "<unk>",
            ["byte_fallback"] = true,
            ["vocab"] = vocab,
            ["merges"] = new JsonArray("\u2581 a", "<0xC3> <0xA9>"),
        };
        var tok = LoadJson(root.ToJsonString());
        Assert.Equal([262, 261, 260], tok.Encode("aéa"));
        Assert.Equal([259, 261, 3 + 0xC3, 3 + 0x83], tok.Encode("éÃ")); // Ã is C3 83: no merge for that pair
    }

    public static TheoryData<string, string> UnsupportedEdits => new()
    {
        { """{"model":{"type":"Unigram","vocab":[]}}""", "Unigram" },
        { "NFKC", "NFKC" },
        { "ByteLevel", "ByteLevel" },
        { "dropout", "dropout" },
    };

    [Theory]
    [MemberData(nameof(UnsupportedEdits))]
    public void UnsupportedFeatures_AreReportedAsUnsupported(string edit, string expectedInMessage)
    {
        string json = edit switch
        {
            "NFKC" => Edit(s_smallJson.Value, r => r["normalizer"] = new JsonObject { ["type"] = "NFKC" }),
            "ByteLevel" => Edit(s_smallJson.Value, r => r["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel" }),
            "dropout" => Edit(s_smallJson.Value, r => r["model"]!["dropout"] = 0.1),
            _ => edit,
        };
        var e = Assert.Throws<UnsupportedModelException>(() => LoadJson(json));
        Assert.Contains(expectedInMessage, e.Message);
    }

    public static TheoryData<string, string> MalformedEdits => new()
    {
        { "not json {", "JSON" },
        { "[]", "(root)" },
        { "{}", "model" },
        { "merge-unknown", "model.merges[0]" },
        { "merge-bad-string", "model.merges[0]" },
        { "merge-not-in-vocab", "model.merges[0]" },
        { "vocab-gap", "model.vocab" },
        { "vocab-duplicate-id", "model.vocab" },
        { "added-conflict", "added_tokens[0]" },
        { "unk-missing", "model.unk_token" },
    };

    [Theory]
    [MemberData(nameof(MalformedEdits))]
    public void MalformedFiles_AreFormatErrors(string edit, string expectedField)
    {
        string json = edit switch
        {
            "merge-unknown" => Edit(s_smallJson.Value, r => r["model"]!["merges"]!.AsArray().Insert(0, "a zzz")),
            "merge-bad-string" => Edit(s_smallJson.Value, r => r["model"]!["merges"]!.AsArray().Insert(0, "abc")),
            "merge-not-in-vocab" => Edit(s_smallJson.Value, r => r["model"]!["merges"]!.AsArray().Insert(0, "b a")),
            "vocab-gap" => Edit(s_smallJson.Value, r => r["model"]!["vocab"]!["c"] = 99),
            "vocab-duplicate-id" => Edit(s_smallJson.Value, r => r["model"]!["vocab"]!["c"] = 4),
            "added-conflict" => Edit(s_smallJson.Value, r => r["added_tokens"]![0]!["content"] = "<other>"),
            "unk-missing" => Edit(s_smallJson.Value, r => r["model"]!["unk_token"] = "<nope>"),
            _ => edit,
        };
        var e = Assert.Throws<ModelFormatException>(() => LoadJson(json));
        Assert.Contains(expectedField, e.Field);
        Assert.Contains("tokenizer.json", e.Message);
    }

    [Fact]
    public void TokenizerConfig_NamesBosAndEos()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("tokenizer.json"), s_smallJson.Value);
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"bos_token": {"content": "</s>"}, "eos_token": "<s>", "pad_token": null}""");
        var tok = TokenizerLoader.Load(dir.FullPath);
        Assert.Equal((2, 1, -1), (tok.BosId, tok.EosId, tok.PadId));

        File.WriteAllText(dir.File("tokenizer_config.json"), """{"bos_token": "<missing>"}""");
        var e = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(dir.FullPath));
        Assert.Contains("tokenizer_config.json", e.Message);
    }
}
