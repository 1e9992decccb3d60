// Code point access on UTF-16 strings for the tokenizer, which works in Unicode characters while .NET strings hold
// UTF-16 units. Used by MergeTable and BpeEncoder.

using System.Text;

namespace Sirocco.Engine.Tokenization;

/// <summary>Code point helpers for strings that may, in principle, hold lone surrogates.</summary>
internal static class Utf16
{
    /// <summary>The code point starting at <paramref name="index"/>; a lone surrogate reads as U+FFFD.</summary>
    public static int CodePointAt(string s, int index) => CodePointAt(s.AsSpan(), index, out _);

    /// <summary>The code point starting at <paramref name="index"/> and its length in UTF-16 units (1 or 2).
    /// A lone surrogate reads as U+FFFD of length 1, as .NET's UTF-8 encoder would write it.</summary>
    public static int CodePointAt(ReadOnlySpan<char> s, int index, out int length)
    {
        char c = s[index];
        if (!char.IsSurrogate(c))
        {
            length = 1;
            return c;
        }
        if (char.IsHighSurrogate(c) && index + 1 < s.Length && char.IsLowSurrogate(s[index + 1]))
        {
            length = 2;
            return char.ConvertToUtf32(c, s[index + 1]);
        }
        length = 1;
        return Rune.ReplacementChar.Value;
    }
}
