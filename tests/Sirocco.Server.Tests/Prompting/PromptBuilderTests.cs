// Prompt ids from requests with the real Mistral v1 tokenizer: the golden mistral-common conversations, `prompt` with
// and without raw (markers <s>/</s>), raw `messages`, role folding, the tool prompt, and the token-limit check.

using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sirocco.Engine.Tokenization;
using Sirocco.Server.Catalog;
using Sirocco.Server.Prompting;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Tests.Prompting;

public sealed class PromptBuilderTests
{
    private static readonly Lazy<Tokenizer> s_tokenizer = new(() => Tokenizer.LoadSentencePieceModel(TestData.TokenizerModel));
    private static readonly ModelCatalog s_catalog = ModelCatalog.Load(8192);
    private static readonly CatalogModel s_hf = s_catalog.Find(ModelCatalog.HfModelName)!;
    private static readonly CatalogModel s_lora = s_catalog.Find(ModelCatalog.LoraModelName)!;

    private static Tokenizer Tok => s_tokenizer.Value;

    private static int[] Build(string json, CatalogModel? model = null) =>
        PromptBuilder.Build(RunRequestParser.Parse(Encoding.UTF8.GetBytes(json), model ?? s_lora), Tok);

    private static int[] Template(bool continueFinal, params (string Role, string Content)[] turns) =>
        MistralChatTemplate.Encode(Tok, [.. turns.Select(t => new ChatMessage(t.Role, t.Content))], continueFinal);

    private static string Messages(params (string Role, string Content)[] messages) =>
        JsonSerializer.Serialize(new { messages = messages.Select(m => new { role = m.Role, content = m.Content }) });

    // ---- golden conversations (mistral-common InstructTokenizerV1 ids) ----

    public static TheoryData<string> GoldenIds =>
        [.. File.ReadLines(TestData.Path("mistral-tokenizer/golden-dev-chat.jsonl")).Where(l => l.Length > 0)
            .Select(l => JsonNode.Parse(l)!["id"]!.GetValue<string>())];

    private static (JsonArray Messages, int[] Ids) Golden(string id)
    {
        var line = File.ReadLines(TestData.Path("mistral-tokenizer/golden-dev-chat.jsonl"))
            .Select(l => JsonNode.Parse(l)!).Single(n => n["id"]!.GetValue<string>() == id);
        return (line["messages"]!.AsArray(), [.. line["ids"]!.AsArray().Select(x => x!.GetValue<int>())]);
    }

    [Theory]
    [MemberData(nameof(GoldenIds))]
    public void GoldenConversation_IdsEqualMistralCommon(string id)
    {
        var (messages, ids) = Golden(id);
        string body = new JsonObject { ["messages"] = messages.DeepClone() }.ToJsonString();
        int[] built = Build(body);
        bool endsWithAssistant = messages[^1]!["role"]!.GetValue<string>() == "assistant";
        if (endsWithAssistant)
        {
            // A transcript that ends with an answer: mistral-common closes it with EOS (the template's default); a
            // request leaves it open for the model to continue, so it is the same ids without that EOS.
            var chat = messages.Select(m => new ChatMessage(m!["role"]!.GetValue<string>(), m["content"]!.GetValue<string>())).ToList();
            Assert.Equal(ids, MistralChatTemplate.Encode(Tok, chat));
            Assert.Equal(Tok.EosId, ids[^1]);
            Assert.Equal(ids[..^1], built);
        }
        else
        {
            Assert.Equal(ids, built);
        }
    }

    [Fact]
    public void Prompt_IsOneUserMessage_ExactlyMistralCommon()
    {
        var (_, ids) = Golden("dev-chat-00"); // [{"role":"user","content":"Hello, how are you?"}]
        Assert.Equal(ids, Build("""{"prompt": "Hello, how are you?"}"""));
        Assert.Equal(ids, Build("""{"prompt": "Hello, how are you?"}""", s_hf));
        Assert.Equal([1, 733, 16289, 28793, 22557, 28725, 910, 460, 368, 28804, 733, 28748, 16289, 28793], ids);
    }

    // ---- raw ----

    [Fact]
    public void RawPrompt_DocsExample_MarkersBecomeBosEos_SegmentsGetTheDummyPrefix()
    {
        int[] ids = Build("""{"prompt": "<s>[INST]comedian[/INST]</s>\n[INST]tell me a joke about cloudflare[/INST]", "raw": true}""");
        int[] expected =
        [
            1,                                                     // <s>, not a second BOS
            733, 16289, 28793, 25004, 753, 28792, 28748, 16289, 28793, // "▁[INST]comedian[/INST]": ▁[ as after BOS in training
            2,                                                     // </s>
            28705, 13, 28792, 16289, 28793, 28707, 479, 528, 264, 13015, 684, 6945, 1134, 492, 28792, 28748, 16289, 28793, // "▁\n[INST]tell me …"
        ];
        Assert.Equal(expected, ids);
        Assert.Equal([.. (int[])[1], .. Tok.Encode("[INST]comedian[/INST]"), 2, .. Tok.Encode("\n[INST]tell me a joke about cloudflare[/INST]")], ids);
    }

    [Fact]
    public void RawPrompt_InTheTemplatesOwnFormat_EqualsTheTemplate()
    {
        var (_, ids) = Golden("dev-chat-00");
        Assert.Equal(ids, Build("""{"prompt": "<s>[INST] Hello, how are you? [/INST]", "raw": true}"""));
        Assert.Equal(ids, Build("""{"prompt": "[INST] Hello, how are you? [/INST]", "raw": true}""")); // BOS added
    }

    [Fact]
    public void RawPrompt_MultiTurnTranscript_EqualsMistralCommon()
    {
        // mistral-common's v1 format written out, with no space after the markers (each segment's dummy prefix is the
        // space): the same ids as the golden conversation. The HF template's rendering ("<s> [INST] …") is not, as
        // testdata/mistral-tokenizer/README.md explains.
        var (_, ids) = Golden("dev-chat-01");
        Assert.Equal(ids, Build("""{"raw": true, "prompt": "<s>[INST] Hello, how are you? [/INST] Fine, and you?</s>[INST] I'm doing great! [/INST] Glad to hear!</s>"}"""));
    }

    [Theory]
    [InlineData("plain text", new[] { 1, 10835, 2245 })]
    [InlineData("<s></s>", new[] { 1, 2 })]
    [InlineData("</s>", new[] { 1, 2 })]
    [InlineData("a<s>b", new[] { 1, 264, 1, 287 })]
    [InlineData("<s><s>", new[] { 1, 1 })]
    [InlineData(" <s>", new[] { 1, 259, 1 })] // not at the very start: BOS added, the space is text
    [InlineData("<unk>[INST]", new[] { 1, 523, 2060, 28767, 28792, 16289, 28793 })] // only <s> and </s> are markers
    public void RawPrompt_Markers(string text, int[] expected)
    {
        Assert.Equal(expected, RawPrompt.Encode(text, Tok));
    }

    [Fact]
    public void RawMessages_AreConcatenatedInOrder_AndReadAsARawPrompt()
    {
        int[] ids = Build("""
            {"raw": "true", "messages": [{"role": "system", "content": "<s>[INST] You are terse. "},
                                         {"role": "user", "content": "Hello, how are you? [/INST]"}]}
            """);
        Assert.Equal(Build("""{"raw": true, "prompt": "<s>[INST] You are terse. Hello, how are you? [/INST]"}"""), ids);
        Assert.Equal([1, .. Tok.Encode("Hello world")], Build("""{"messages": [{"role": "user", "content": "Hello world"}], "raw": "true", "lora": "x"}"""));
    }

    // ---- role folding ----

    [Fact]
    public void FirstSystem_FoldsIntoFirstUser()
    {
        Assert.Equal(Template(false, ("user", "Be brief.\n\nHi")),
            Build(Messages(("system", "Be brief."), ("user", "Hi"))));
        // …which is the template's own system handling.
        Assert.Equal(Template(false, ("system", "Be brief."), ("user", "Hi")), Build(Messages(("system", "Be brief."), ("user", "Hi"))));
    }

    [Fact]
    public void LaterSystemAndDeveloper_FoldIntoTheNextUserTurn()
    {
        Assert.Equal(Template(false, ("user", "Hi"), ("assistant", "Hello"), ("user", "Now in French.\n\nBe polite.\n\nBye")),
            Build(Messages(("user", "Hi"), ("assistant", "Hello"), ("system", "Now in French."), ("developer", "Be polite."), ("user", "Bye"))));
        Assert.Equal(Template(false, ("user", "Rules.\n\nHi")), Build(Messages(("developer", "Rules."), ("user", "Hi"))));
    }

    [Fact]
    public void TrailingSystem_BecomesTheLastUserTurn()
    {
        Assert.Equal(Template(false, ("user", "Hi"), ("assistant", "Hello"), ("user", "Summarize.")),
            Build(Messages(("user", "Hi"), ("assistant", "Hello"), ("system", "Summarize."))));
        Assert.Equal(Template(false, ("user", "Hi\n\nSummarize.")), Build(Messages(("user", "Hi"), ("system", "Summarize."))));
        Assert.Equal(Template(false, ("user", "Only a system prompt")), Build(Messages(("system", "Only a system prompt"))));
    }

    [Fact]
    public void ToolMessages_AreUserSideText()
    {
        string body = """
            {"messages": [{"role": "user", "content": "Weather in Paris?"},
                          {"role": "assistant", "content": "{\"name\":\"getWeather\",\"arguments\":{\"city\":\"Paris\"}}"},
                          {"role": "tool", "name": "getWeather", "content": "{\"temp\":21}"},
                          {"role": "function", "content": "sunny"},
                          {"role": "user", "content": "Thanks. And tomorrow?"}]}
            """;
        Assert.Equal(Template(false,
                ("user", "Weather in Paris?"),
                ("assistant", "{\"name\":\"getWeather\",\"arguments\":{\"city\":\"Paris\"}}"),
                ("user", "Tool result (getWeather): {\"temp\":21}\n\nTool result: sunny\n\nThanks. And tomorrow?")),
            Build(body));
    }

    [Fact]
    public void AssistantToolCalls_AreWrittenInTheToolCallForm()
    {
        string body = """
            {"messages": [{"role": "user", "content": "Weather in Paris?"},
                          {"role": "assistant", "content": null, "tool_calls": [{"id": "0", "type": "function", "function": {"name": "getWeather", "arguments": "{\"city\":\"Paris\"}"}}]},
                          {"role": "tool", "content": "21C", "tool_call_id": "0"}]}
            """;
        Assert.Equal(Template(false,
                ("user", "Weather in Paris?"),
                ("assistant", """{"function":{"_name":"getWeather","city":"Paris"}}"""),
                ("user", "Tool result: 21C")),
            Build(body, s_hf));
        string both = """
            {"messages": [{"role": "user", "content": "q"},
                          {"role": "assistant", "content": "Let me check.", "tool_calls": [{"name": "f", "arguments": {"x": 1}}]},
                          {"role": "user", "content": "ok"}]}
            """;
        Assert.Equal(Template(false, ("user", "q"), ("assistant", "Let me check.\n\n{\"function\":{\"_name\":\"f\",\"x\":1}}"), ("user", "ok")), Build(both));
    }

    [Fact]
    public void ConsecutiveSameRole_Merge()
    {
        Assert.Equal(Template(false, ("user", "a\n\nb"), ("assistant", "c\n\nd"), ("user", "e")),
            Build(Messages(("user", "a"), ("user", "b"), ("assistant", "c"), ("assistant", "d"), ("user", "e"))));
    }

    [Fact]
    public void LeadingAssistant_GetsAUserTurnInFront()
    {
        // The pending system text is that turn; without one it is empty ("[INST]  [/INST]").
        Assert.Equal(Template(false, ("user", "You are a guide."), ("assistant", "Hi! Ask me anything."), ("user", "Where?")),
            Build(Messages(("system", "You are a guide."), ("assistant", "Hi! Ask me anything."), ("user", "Where?"))));
        Assert.Equal(Template(false, ("user", ""), ("assistant", "Hi! Ask me anything."), ("user", "Where?")),
            Build(Messages(("assistant", "Hi! Ask me anything."), ("user", "Where?"))));
    }

    [Fact]
    public void TrailingAssistant_IsContinued()
    {
        int[] ids = Build(Messages(("user", "List three colours."), ("assistant", "1. Red\n2.")));
        Assert.Equal(Template(true, ("user", "List three colours."), ("assistant", "1. Red\n2.")), ids);
        Assert.NotEqual(Tok.EosId, ids[^1]);
    }

    [Fact]
    public void EmptyAssistantMessages_AreDropped()
    {
        Assert.Equal(Template(false, ("user", "Hi")), Build(Messages(("user", "Hi"), ("assistant", ""))));
        Assert.Equal(Template(false, ("user", "a\n\nb")), Build(Messages(("user", "a"), ("assistant", ""), ("user", "b"))));
        var e = Assert.Throws<ApiException>(() => Build(Messages(("assistant", ""))));
        Assert.Equal(ErrorCodes.BadInput, e.Code);
        Assert.Equal("/messages: no message has content; send at least one non-empty message", e.Message);
    }

    [Fact]
    public void UnknownRole_InAHandBuiltRequest_Is400()
    {
        var request = new RunRequest { Messages = [new RunMessage("robot", "x")] };
        var e = Assert.Throws<ApiException>(() => PromptBuilder.Build(request, Tok));
        Assert.Equal(400, e.Status);
        Assert.Contains("\"robot\"", e.Message);
    }

    // ---- tools ----

    [Fact]
    public void Tools_OnHf_AppendTheToolPromptToTheLastUserTurn()
    {
        string body = """
            {"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "Weather in London?"}],
             "tools": [{"name": "getWeather", "description": "Weather for a place",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]}
            """;
        var request = RunRequestParser.Parse(Encoding.UTF8.GetBytes(body), s_hf);
        string toolText = ToolPrompt.Build(request.Tools!);
        Assert.Equal(Template(false, ("user", "sys\n\nWeather in London?" + toolText)), PromptBuilder.Build(request, Tok));
        Assert.StartsWith("\n---\n\nYou will be presented with a JSON schema representing a set of tools.\n", toolText);
        const string schema = """
            {"$functions":{"getWeather":{"type":"object","properties":{"city":{"type":"string"},"_name":{"type":"string","const":"getWeather"}},"required":["city","_name"],"description":"Weather for a place"},"notify_error":{"properties":{"error":{"type":"string","description":"The error or issue to notify"},"_name":{"type":"string","const":"notify_error"}},"required":["error","_name"],"type":"object"}},"properties":{"function":{"anyOf":[{"$ref":"#/$functions/getWeather"},{"$ref":"#/$functions/notify_error"}]}}}
            """;
        Assert.EndsWith("JSON Schema:\n\n" + schema, toolText);
    }

    [Fact]
    public void Tools_WithATrailingAssistant_GoToTheLastUserTurn()
    {
        string body = """{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "{"}], "tools": [{"name": "f"}]}""";
        var request = RunRequestParser.Parse(Encoding.UTF8.GetBytes(body), s_hf);
        Assert.Equal(Template(true, ("user", "q" + ToolPrompt.Build(request.Tools!)), ("assistant", "{")), PromptBuilder.Build(request, Tok));
    }

    [Fact]
    public void Tools_WithPrompt_AndToolChoiceNone()
    {
        var withTools = RunRequestParser.Parse("""{"prompt": "q", "tools": [{"name": "f"}]}"""u8, s_hf);
        Assert.Equal(Template(false, ("user", "q" + ToolPrompt.Build(withTools.Tools!))), PromptBuilder.Build(withTools, Tok));
        var none = RunRequestParser.Parse("""{"prompt": "q", "tools": [{"name": "f"}], "tool_choice": "none"}"""u8, s_hf);
        Assert.Equal(Template(false, ("user", "q")), PromptBuilder.Build(none, Tok));
    }

    // ---- limits ----

    [Fact]
    public void EnsureFits_HfInputAndTotalLimits()
    {
        PromptBuilder.EnsureFits(s_hf, 3072, 1024);
        var input = Assert.Throws<ApiException>(() => PromptBuilder.EnsureFits(s_hf, 3073, 0));
        Assert.Equal(ErrorCodes.ContextWindowExceeded, input.Code);
        Assert.Equal(400, input.Status);
        Assert.Equal("The input has 3073 tokens, more than this model's input limit (3072 tokens).", input.Message);
        var total = Assert.Throws<ApiException>(() => PromptBuilder.EnsureFits(s_hf, 3072, 1025));
        Assert.Equal("The estimated number of input and maximum output tokens (3072 + 1025 = 4097) exceeded this model context window limit (4096).", total.Message);
    }

    [Fact]
    public void EnsureFits_LoraUsesTheConfiguredWindow()
    {
        PromptBuilder.EnsureFits(s_lora, 8000, 192);
        PromptBuilder.EnsureFits(s_lora, 8192, 0);
        var e = Assert.Throws<ApiException>(() => PromptBuilder.EnsureFits(s_lora, 8000, int.MaxValue));
        Assert.Equal(ErrorCodes.ContextWindowExceeded, e.Code);
        Assert.Contains($"(8000 + {int.MaxValue} = {8000L + int.MaxValue})", e.Message);
        var capped = Assert.Throws<ApiException>(() => PromptBuilder.EnsureFits(s_lora, 8000, 192, contextLength: 4096));
        Assert.Contains("limit (4096)", capped.Message);
    }
}
