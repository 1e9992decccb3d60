// Seeded generators of awkward input for differential and streaming tests: golden texts cut and spliced, runs of
// spaces, emoji, CJK, combining marks, control characters, lone surrogates, and id sequences heavy in byte tokens.

using System.Text;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

internal static class RandomText
{
    private static readonly string[] s_fragments =
    [
        " ", "  ", "   ", "        ", "\n", "\t", "\r\n", "▁", "▁▁", "a", "the", "The quick brown fox", "Hello", "world",
        "12345", "3.14", "x = 42;", "fn main() {}", "<s>", "</s>", "[INST]", "<0x0A>", "😀", "👩‍👩‍👧", "🕀", "𠀀", "日本語",
        "中文", "한국어", "Ελληνικά", "русский", "עברית", "العربية", "हिन्दी", "é", "e\u0301", "\u200b", "\u00a0", "\u3000",
        "\uFEFF", "\u0000", "\u001b[0m", "\u007f", "\uD800", "\uDC00", "ｆｕｌｌ", "====", "----", "...", "!!!", "http://x.y/z?q=1",
    ];

    public static string Make(Random rng, int maxPieces)
    {
        var golden = GoldenData.Encode.Values.Select(c => c.Text).Where(t => t.Length > 0).ToArray();
        var sb = new StringBuilder();
        int pieces = rng.Next(1, maxPieces + 1);
        for (int i = 0; i < pieces; i++)
        {
            switch (rng.Next(4))
            {
                case 0:
                    sb.Append(s_fragments[rng.Next(s_fragments.Length)]);
                    break;
                case 1:
                {
                    string g = golden[rng.Next(golden.Length)];
                    int start = rng.Next(g.Length);
                    sb.Append(g, start, Math.Min(g.Length - start, rng.Next(1, 40)));
                    break;
                }
                case 2:
                    sb.Append((char)rng.Next(0x20, 0x7F));
                    break;
                default:
                    // Any BMP code unit, surrogates included: lone ones must be handled too.
                    sb.Append((char)rng.Next(0, 0x10000));
                    break;
            }
        }
        return sb.ToString();
    }

    /// <summary>Random ids, about half of them byte tokens (so that byte runs form valid and invalid UTF-8), with
    /// control, unknown and ▁-leading pieces mixed in.</summary>
    public static int[] Ids(Random rng, Tokenizer tok, int maxLength)
    {
        var ids = new int[rng.Next(0, maxLength + 1)];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = rng.Next(10) switch
            {
                < 4 => 3 + rng.Next(256),                    // byte tokens <0x00>..<0xFF>
                4 => rng.Next(3),                            // <unk>, <s>, </s>
                5 => 3 + 0xE0 + rng.Next(0x20),              // lead bytes of 3- and 4-byte sequences
                6 => 3 + 0x80 + rng.Next(0x40),              // continuation bytes
                _ => rng.Next(tok.VocabSize),
            };
        }
        return ids;
    }
}
