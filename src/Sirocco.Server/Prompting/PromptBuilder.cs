// Turns a validated RunRequest into prompt token ids for Mistral-7B-Instruct-v0.2, and checks them against the model's
// token limits. The run endpoint calls Build, then EnsureFits, then hands the ids to the scheduler.

using Sirocco.Engine.Tokenization;
using Sirocco.Server.Catalog;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Prompting;

/// <summary>Builds prompt ids: the Mistral v1 template, raw text with markers, or a folded conversation.</summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>prompt</c>: one user message through <see cref="MistralChatTemplate"/>: BOS + <c>"[INST] " + prompt +
/// " [/INST]"</c>, exactly mistral-common's ids.</item>
/// <item><c>prompt</c> with <c>raw</c>: <see cref="RawPrompt"/> (markers <c>&lt;s&gt;</c>/<c>&lt;/s&gt;</c> become
/// BOS/EOS).</item>
/// <item><c>messages</c>: <see cref="ConversationFolder"/>, then the template; a trailing assistant message is
/// continued.</item>
/// <item><c>messages</c> with <c>raw</c>: the contents concatenated in order with nothing between them (roles and tool
/// calls ignored), then treated as a raw prompt.</item>
/// <item><c>tools</c> (not with raw): <see cref="ToolPrompt.Build"/> appended to the last user turn.</item>
/// </list>
/// </remarks>
public static class PromptBuilder
{
    /// <summary>The prompt ids for <paramref name="request"/>.</summary>
    /// <exception cref="ApiException">400 / 5006 for a conversation that cannot be placed in the template.</exception>
    public static int[] Build(RunRequest request, Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (request.Raw)
        {
            string text = request.Prompt ?? string.Concat(Messages(request).Select(m => m.Content));
            return RawPrompt.Encode(text, tokenizer);
        }

        List<ChatMessage> turns;
        bool continueFinal;
        if (request.Prompt is not null)
        {
            turns = [new ChatMessage(MistralChatTemplate.UserRole, request.Prompt)];
            continueFinal = false;
        }
        else
        {
            (turns, continueFinal) = ConversationFolder.Fold(Messages(request));
        }

        if (request.UsesTools)
        {
            int last = turns.FindLastIndex(t => t.Role == MistralChatTemplate.UserRole);
            turns[last] = turns[last] with { Content = turns[last].Content + ToolPrompt.Build(request.Tools!) };
        }

        try
        {
            return MistralChatTemplate.Encode(tokenizer, turns, continueFinal);
        }
        catch (ChatTemplateException e)
        {
            throw ApiException.BadInput("/messages: the conversation cannot be encoded: " + e.Message, "/messages");
        }
    }

    /// <summary>Checks a prompt of <paramref name="promptTokenCount"/> ids plus <paramref name="maxTokens"/> new ones
    /// against the model's limits: the input limit (@hf: 3072), then prompt + max_tokens against the context window
    /// (@hf: max_total_tokens 4096; LoRA model: the configured window).</summary>
    /// <param name="contextLength">The loaded model's context length, which caps the catalog's window (a model file
    /// with a shorter context than the catalog entry assumes).</param>
    /// <exception cref="ApiException">400 / 5021 when they do not fit, in Workers AI's wording.</exception>
    public static void EnsureFits(CatalogModel model, int promptTokenCount, int maxTokens, int contextLength = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(model);
        var limits = model.Limits;
        if (limits.MaxInputTokens is { } maxInput && promptTokenCount > maxInput)
        {
            throw new ApiException(ErrorCodes.ContextWindowExceeded, 400,
                $"The input has {promptTokenCount} tokens, more than this model's input limit ({maxInput} tokens).");
        }
        int window = Window(model, contextLength);
        long total = (long)promptTokenCount + maxTokens;
        if (total > window)
        {
            throw ApiException.ContextWindowExceeded(promptTokenCount, maxTokens, window);
        }
    }

    /// <summary>Tokens a request may use in all (input + max_tokens): the catalog's context window and total-token
    /// limit, capped by <paramref name="contextLength"/>.</summary>
    public static int Window(CatalogModel model, int contextLength = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Math.Min(Math.Min(model.Limits.ContextWindow, model.Limits.MaxTotalTokens ?? int.MaxValue), contextLength);
    }

    private static IReadOnlyList<RunMessage> Messages(RunRequest request) =>
        request.Messages ?? throw new ArgumentException("the request has neither a prompt nor messages", nameof(request));
}
