// Fits any Workers AI conversation into the strict Mistral v1 template (an optional system message, then user and
// assistant turns alternating from user): folds the roles the template has no place for into user turns and merges
// neighbours. PromptBuilder calls it for `messages` requests without `raw`.

using System.Text.Json.Nodes;
using Sirocco.Engine.Tokenization;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Prompting;

/// <summary>Turns a <c>messages</c> list into alternating user/assistant turns.</summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>user</c>: a user turn; consecutive user-side messages merge with "\n\n".</item>
/// <item><c>system</c> and <c>developer</c>: moved forward to the start of the next user-side message, as
/// <c>system + "\n\n" + user</c> — for a first system message that is exactly mistral-common's and the HF template's
/// placement. When an assistant message comes before any user turn, the pending system text (or an empty text) becomes
/// the user turn in front of it; when nothing user-side follows, it becomes a last user turn of its own.</item>
/// <item><c>tool</c> and <c>function</c>: user-side text "Tool result (name): content" ("Tool result: content" without a
/// name).</item>
/// <item><c>assistant</c>: an assistant turn; consecutive ones merge with "\n\n". Its <c>tool_calls</c> are written after
/// the content in the form ToolPrompt asks the model to answer in. An assistant message with no content and no tool
/// calls is dropped.</item>
/// <item>A trailing assistant turn is left open (no EOS), so generation continues it.</item>
/// </list>
/// </remarks>
internal static class ConversationFolder
{
    public const string Separator = "\n\n";

    public static (List<ChatMessage> Turns, bool ContinueFinalMessage) Fold(IReadOnlyList<RunMessage> messages)
    {
        var turns = new List<(string Role, List<string> Parts)>();
        var pendingSystem = new List<string>();

        void AddUserSide(string text)
        {
            var parts = new List<string>(pendingSystem) { text };
            pendingSystem.Clear();
            if (turns.Count > 0 && turns[^1].Role == MistralChatTemplate.UserRole)
            {
                turns[^1].Parts.AddRange(parts);
            }
            else
            {
                turns.Add((MistralChatTemplate.UserRole, parts));
            }
        }

        foreach (var message in messages)
        {
            switch (message.Role)
            {
                case "system" or "developer":
                    pendingSystem.Add(message.Content);
                    break;
                case "user":
                    AddUserSide(message.Content);
                    break;
                case "tool" or "function":
                    AddUserSide(message.Name is { Length: > 0 } name ? $"Tool result ({name}): {message.Content}" : $"Tool result: {message.Content}");
                    break;
                case "assistant":
                    string text = AssistantText(message);
                    if (text.Length == 0)
                    {
                        break;
                    }
                    if (turns.Count == 0)
                    {
                        turns.Add((MistralChatTemplate.UserRole, [.. pendingSystem]));
                        pendingSystem.Clear();
                    }
                    if (turns[^1].Role == MistralChatTemplate.AssistantRole)
                    {
                        turns[^1].Parts.Add(text);
                    }
                    else
                    {
                        turns.Add((MistralChatTemplate.AssistantRole, [text]));
                    }
                    break;
                default:
                    throw ApiException.BadInput(
                        $"/messages: the role \"{message.Role}\" is not supported; use {string.Join(", ", RunRequestParser.AcceptedRoles.Select(r => "\"" + r + "\""))}", "/messages");
            }
        }
        if (pendingSystem.Count > 0)
        {
            // System text with nothing user-side after it: it is the last user turn, or joins it.
            var parts = new List<string>(pendingSystem);
            pendingSystem.Clear();
            if (turns.Count > 0 && turns[^1].Role == MistralChatTemplate.UserRole)
            {
                turns[^1].Parts.AddRange(parts);
            }
            else
            {
                turns.Add((MistralChatTemplate.UserRole, parts));
            }
        }
        if (turns.Count == 0)
        {
            throw ApiException.BadInput("/messages: no message has content; send at least one non-empty message", "/messages");
        }
        var chat = turns.Select(t => new ChatMessage(t.Role, string.Join(Separator, t.Parts.Where(p => p.Length > 0)))).ToList();
        return (chat, chat[^1].Role == MistralChatTemplate.AssistantRole);
    }

    private static string AssistantText(RunMessage message)
    {
        if (message.ToolCalls is not { Count: > 0 } calls)
        {
            return message.Content;
        }
        string rendered = string.Join("\n", calls.Select(ToolPrompt.RenderCall).Where(c => c is not null));
        return message.Content.Length == 0 ? rendered : rendered.Length == 0 ? message.Content : message.Content + Separator + rendered;
    }
}
