// Tokenizes `raw: true` text: no chat template, but the literal markers <s> and </s> become the BOS and EOS ids, so
// prompts written in the model's own format (the Workers AI docs' "<s>[INST]comedian[/INST]</s>\n[INST]…[/INST]")
// reach the model as it saw them in training. Called by PromptBuilder.

using Sirocco.Engine.Tokenization;

namespace Sirocco.Server.Prompting;

/// <summary>Encodes raw prompt text with <c>&lt;s&gt;</c>/<c>&lt;/s&gt;</c> markers.</summary>
/// <remarks>
/// BOS comes first unless the text itself starts with <c>&lt;s&gt;</c>. The text between markers is encoded segment by
/// segment, and each non-empty segment gets SentencePiece's dummy prefix (a leading ▁), the way
/// <list type="bullet">
/// <item>mistral-common builds Mistral v1 instruct ids (every <c>[INST] … [/INST]</c> and every answer is encoded on its
/// own, so the model was trained on <c>&lt;s&gt; ▁[INST]…</c> and <c>&lt;/s&gt; ▁[INST]…</c>),</item>
/// <item>Hugging Face's legacy Llama/Mistral tokenizer treats text after a special token (the normalizer prepends ▁ to
/// each split), and</item>
/// <item>llama.cpp's SPM tokenizer does it (<c>add_space_prefix</c> after each special token).</item>
/// </list>
/// So <c>"&lt;s&gt;[INST] Hi [/INST]"</c> gives exactly the template's ids for the prompt "Hi". Empty segments (two
/// markers in a row) add nothing. Any other text that looks like a token (<c>&lt;unk&gt;</c>, <c>[INST]</c>) is plain
/// text: Mistral v1 has no control tokens besides BOS and EOS.
/// </remarks>
public static class RawPrompt
{
    /// <summary>The literal that becomes the BOS id.</summary>
    public const string BosMarker = "<s>";

    /// <summary>The literal that becomes the EOS id.</summary>
    public const string EosMarker = "</s>";

    /// <summary>The ids of <paramref name="text"/> as described in the remarks.</summary>
    public static int[] Encode(string text, Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var ids = new List<int>(text.Length / 3 + 2);
        if (!text.StartsWith(BosMarker, StringComparison.Ordinal) && tokenizer.BosId >= 0)
        {
            ids.Add(tokenizer.BosId);
        }
        var rest = text.AsSpan();
        while (!rest.IsEmpty)
        {
            int bos = rest.IndexOf(BosMarker, StringComparison.Ordinal);
            int eos = rest.IndexOf(EosMarker, StringComparison.Ordinal);
            int at = bos < 0 ? eos : eos < 0 ? bos : Math.Min(bos, eos);
            if (at < 0)
            {
                tokenizer.Encode(rest, ids);
                break;
            }
            tokenizer.Encode(rest[..at], ids); // appends nothing for an empty segment
            bool isBos = at == bos;
            int id = isBos ? tokenizer.BosId : tokenizer.EosId;
            if (id >= 0)
            {
                ids.Add(id);
            }
            rest = rest[(at + (isBos ? BosMarker.Length : EosMarker.Length))..];
        }
        return [.. ids];
    }
}
