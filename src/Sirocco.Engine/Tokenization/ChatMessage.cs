// The conversation types chat templates take: a message with its role, and the error for conversations a template
// cannot encode (the HTTP layer maps ChatTemplateException, an ArgumentException, to 400).

namespace Sirocco.Engine.Tokenization;

/// <summary>One message of a conversation.</summary>
/// <param name="Role">"system", "user" or "assistant" (exact, lower case).</param>
/// <param name="Content">The message text.</param>
public sealed record ChatMessage(string Role, string Content);

/// <summary>A conversation the template cannot encode: unknown role, wrong order, empty conversation.</summary>
public sealed class ChatTemplateException : ArgumentException
{
    public ChatTemplateException(string message) : base(message)
    {
    }

    public ChatTemplateException() : this("the conversation cannot be encoded")
    {
    }

    public ChatTemplateException(string message, Exception inner) : base(message, inner)
    {
    }
}
