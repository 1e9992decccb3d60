// The Mistral v1 chat template's rules beyond the golden conversations: which conversations it refuses, and how a
// trailing assistant message is closed or left open.

using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

public class MistralChatTemplateTests
{
    private static Tokenizer Tok => GoldenData.Model;

    private static ChatMessage M(string role, string content) => new(role, content);

    public static TheoryData<ChatMessage[], string> BadConversations => new()
    {
        { [], "no messages" },
        { [M("system", "s")], "only a system message" },
        { [M("tool", "x")], "\"tool\"" },
        { [M("User", "x")], "\"User\"" },
        { [M("assistant", "hi")], "expected a user message" },
        { [M("user", "a"), M("user", "b")], "expected a assistant message" },
        { [M("user", "a"), M("assistant", "b"), M("assistant", "c")], "expected a user message" },
        { [M("user", "a"), M("system", "s")], "only as the first message" },
        { [M("system", "s"), M("system", "t"), M("user", "u")], "only as the first message" },
        { [M("system", "s"), M("assistant", "a")], "after the system message" },
        { [M("user", "a"), M("assistant", "")], "empty assistant message" },
    };

    [Theory]
    [MemberData(nameof(BadConversations))]
    public void BadConversations_AreArgumentErrors(ChatMessage[] messages, string expectedInMessage)
    {
        var e = Assert.Throws<ChatTemplateException>(() => MistralChatTemplate.Encode(Tok, messages));
        Assert.IsAssignableFrom<ArgumentException>(e);
        Assert.Contains(expectedInMessage, e.Message);
    }

    [Fact]
    public void TrailingAssistant_IsClosedWithEos_UnlessContinued()
    {
        ChatMessage[] chat = [M("user", "Hi"), M("assistant", "Hello")];
        int[] closed = MistralChatTemplate.Encode(Tok, chat);
        int[] open = MistralChatTemplate.Encode(Tok, chat, continueFinalMessage: true);
        Assert.Equal(Tok.EosId, closed[^1]);
        Assert.Equal(closed[..^1], open);
        // Only the final message is left open; earlier assistant turns keep their EOS.
        int[] longer = MistralChatTemplate.Encode(Tok, [.. chat, M("user", "More"), M("assistant", "Sure")], continueFinalMessage: true);
        Assert.Equal(2, longer.Count(id => id == Tok.EosId) + 1);
    }

    [Fact]
    public void SystemMessage_IsFoldedIntoTheFirstUserTurnOnly()
    {
        int[] ids = MistralChatTemplate.Encode(Tok, [M("system", "Be brief."), M("user", "Hi"), M("assistant", "Hello"), M("user", "Bye")]);
        int[] expected = [1, .. Tok.Encode("[INST] Be brief.\n\nHi [/INST]"), .. Tok.Encode("Hello"), 2, .. Tok.Encode("[INST] Bye [/INST]")];
        Assert.Equal(expected, ids);
    }
}
