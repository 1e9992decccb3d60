// Mistral's v1 instruct format (mistral-common InstructTokenizerV1, used by Mistral-7B-Instruct-v0.2): turns a chat
// into prompt ids segment by segment. The HTTP layer calls it for chat requests and maps ChatTemplateException to 400.

namespace Sirocco.Engine.Tokenization;

/// <summary>Encodes conversations as Mistral v1 instruct prompts.</summary>
/// <remarks>
/// The ids are <c>[BOS]</c>, then per user turn <c>encode("[INST] " + content + " [/INST]")</c> and per assistant turn
/// <c>encode(content) + [EOS]</c>. A system message, allowed only first, is folded into the first user turn as
/// <c>system + "\n\n" + user</c>. Each segment is encoded on its own (so each gets its own dummy prefix), which is why
/// the ids differ from encoding the rendered Hugging Face template text. <c>[INST]</c> is plain text here: the v1
/// vocabulary has no control tokens for it.
/// </remarks>
public static class MistralChatTemplate
{
    /// <summary>Role name of a system message.</summary>
    public const string SystemRole = "system";

    /// <summary>Role name of a user message.</summary>
    public const string UserRole = "user";

    /// <summary>Role name of an assistant message.</summary>
    public const string AssistantRole = "assistant";

    /// <summary>Encodes <paramref name="messages"/> to prompt ids.</summary>
    /// <param name="tokenizer">The Mistral v1 tokenizer.</param>
    /// <param name="messages">An optional system message, then user and assistant messages alternating, starting with
    /// user.</param>
    /// <param name="continueFinalMessage">What to do with a trailing assistant message. False (the default): it is a
    /// finished turn and is closed with EOS, exactly as mistral-common encodes a transcript; the model would then be
    /// asked to continue after a closed turn, so a prompt for generation should end with a user message. True: the
    /// trailing assistant message is left open (no EOS) so that generation continues that message, e.g. to prefill the
    /// start of an answer. It has no effect when the last message is a user message.</param>
    /// <exception cref="ChatTemplateException">An unknown role, a system message that is not first, two messages of the
    /// same role in a row, a conversation without a user message first, or an empty assistant message.</exception>
    public static int[] Encode(Tokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool continueFinalMessage = false)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0)
        {
            throw new ChatTemplateException("the conversation has no messages; it needs at least one user message");
        }

        string? system = null;
        int first = 0;
        for (int i = 0; i < messages.Count; i++)
        {
            var message = messages[i] ?? throw new ChatTemplateException($"messages[{i}] is null");
            if (message.Role is not (SystemRole or UserRole or AssistantRole))
            {
                throw new ChatTemplateException($"messages[{i}] has role \"{message.Role}\"; the Mistral v1 template accepts \"system\", \"user\" and \"assistant\"");
            }
            if (message.Content is null)
            {
                throw new ChatTemplateException($"messages[{i}] ({message.Role}) has no content");
            }
            if (message.Role == SystemRole)
            {
                if (i != 0)
                {
                    throw new ChatTemplateException($"messages[{i}] is a system message; the Mistral v1 template allows one system message, and only as the first message");
                }
                system = message.Content;
                first = 1;
            }
        }
        if (first == messages.Count)
        {
            throw new ChatTemplateException("the conversation has only a system message; it needs a user message after it");
        }

        var ids = new List<int>();
        if (tokenizer.BosId >= 0)
        {
            ids.Add(tokenizer.BosId);
        }
        for (int i = first; i < messages.Count; i++)
        {
            var message = messages[i];
            string expected = (i - first) % 2 == 0 ? UserRole : AssistantRole;
            if (message.Role != expected)
            {
                string previous = i == first ? (system is null ? "the start" : "the system message") : $"a {messages[i - 1].Role} message";
                throw new ChatTemplateException($"messages[{i}] is a {message.Role} message after {previous}; expected a {expected} message " +
                    "(user and assistant messages must alternate, starting with user)");
            }
            if (message.Role == UserRole)
            {
                string content = i == first && system is not null ? system + "\n\n" + message.Content : message.Content;
                tokenizer.Encode("[INST] " + content + " [/INST]", ids);
                continue;
            }
            if (message.Content.Length == 0)
            {
                // mistral-common rejects this too: an empty assistant turn would encode to a bare EOS.
                throw new ChatTemplateException($"messages[{i}] is an empty assistant message");
            }
            tokenizer.Encode(message.Content, ids);
            bool isLast = i == messages.Count - 1;
            if (!(isLast && continueFinalMessage) && tokenizer.EosId >= 0)
            {
                ids.Add(tokenizer.EosId);
            }
        }
        return [.. ids];
    }
}
