// Loads the golden files of testdata/mistral-tokenizer (made with the reference SentencePiece) and hands them to
// theories one line id at a time, so a failure names the line. Also caches the tokenizers the golden tests share.

using System.Text.Json;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

internal static class GoldenData
{
    private static readonly Lazy<Dictionary<string, EncodeCase>> s_encode = new(() => Load("golden-dev.jsonl", ParseEncode));
    private static readonly Lazy<Dictionary<string, ChatCase>> s_chat = new(() => Load("golden-dev-chat.jsonl", ParseChat));
    private static readonly Lazy<Dictionary<string, DecodeCase>> s_decode = new(() => Load("golden-dev-decode.jsonl", ParseDecode));
    private static readonly Lazy<Tokenizer> s_model = new(() => Tokenizer.LoadSentencePieceModel(TestData.TokenizerModel));
    private static readonly Lazy<Tokenizer> s_json = new(LoadThroughJson);

    /// <summary>The real Mistral v1 tokenizer, loaded once from tokenizer.model.</summary>
    public static Tokenizer Model => s_model.Value;

    /// <summary>The same tokenizer written as tokenizer.json (TokenizerJsonWriter) and read back by TokenizerLoader.</summary>
    public static Tokenizer Json => s_json.Value;

    public static IReadOnlyDictionary<string, EncodeCase> Encode => s_encode.Value;

    public static IReadOnlyDictionary<string, ChatCase> Chat => s_chat.Value;

    public static IReadOnlyDictionary<string, DecodeCase> Decode => s_decode.Value;

    public static TheoryData<string> EncodeIds => [.. s_encode.Value.Keys];

    public static TheoryData<string> ChatIds => [.. s_chat.Value.Keys];

    public static TheoryData<string> DecodeIds => [.. s_decode.Value.Keys];

    private static Tokenizer LoadThroughJson()
    {
        using var dir = new TempDir();
        TokenizerJsonWriter.Write(Model, dir.File("tokenizer.json"));
        TokenizerJsonWriter.WriteConfig(Model, dir.File("tokenizer_config.json"));
        return TokenizerLoader.Load(dir.FullPath);
    }

    private static Dictionary<string, T> Load<T>(string file, Func<JsonElement, T> parse)
    {
        var cases = new Dictionary<string, T>(StringComparer.Ordinal);
        foreach (string line in File.ReadLines(TestData.Path("mistral-tokenizer/" + file)))
        {
            if (line.Length == 0)
            {
                continue;
            }
            using var doc = JsonDocument.Parse(line);
            cases.Add(doc.RootElement.GetProperty("id").GetString()!, parse(doc.RootElement));
        }
        return cases;
    }

    private static int[] Ids(JsonElement e) => [.. e.EnumerateArray().Select(x => x.GetInt32())];

    private static EncodeCase ParseEncode(JsonElement e) => new(
        e.GetProperty("category").GetString()!, e.GetProperty("text").GetString()!,
        Ids(e.GetProperty("ids")), Ids(e.GetProperty("ids_bos")), e.GetProperty("decoded").GetString()!);

    private static ChatCase ParseChat(JsonElement e) => new(
        [.. e.GetProperty("messages").EnumerateArray().Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!))],
        Ids(e.GetProperty("ids")), e.GetProperty("decoded").GetString()!);

    private static DecodeCase ParseDecode(JsonElement e) => new(Ids(e.GetProperty("ids")), e.GetProperty("decoded").GetString()!);
}

internal sealed record EncodeCase(string Category, string Text, int[] Ids, int[] IdsBos, string Decoded);

internal sealed record ChatCase(ChatMessage[] Messages, int[] Ids, string Decoded);

internal sealed record DecodeCase(int[] Ids, string Decoded);
