// Plain, slow restatements of SentencePiece's BPE encode and its decode (bpe_model.cc, sentencepiece_processor.cc),
// written for readability rather than speed: quadratic rescans and string concatenation. Differential tests compare
// the real tokenizer against them on random input.

using System.Text;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

internal static class ReferenceSentencePiece
{
    /// <summary>Encode for a vocabulary without user-defined or unused pieces, with byte fallback.</summary>
    public static List<int> Encode(Tokenizer tok, string text)
    {
        var ids = new List<int>();
        if (text.Length == 0)
        {
            return ids;
        }
        string normalized = "\u2581" + text.Replace(' ', '\u2581');
        var symbols = new List<string>();
        for (int i = 0; i < normalized.Length; i++)
        {
            if (char.IsSurrogatePair(normalized, i))
            {
                symbols.Add(normalized.Substring(i++, 2));
            }
            else
            {
                symbols.Add(char.IsSurrogate(normalized[i]) ? "\uFFFD" : normalized[i].ToString());
            }
        }
        while (true)
        {
            int best = -1;
            float bestScore = float.NegativeInfinity;
            for (int i = 0; i + 1 < symbols.Count; i++)
            {
                if (tok.TryGetId(symbols[i] + symbols[i + 1], out int id) && tok.GetTokenType(id) == TokenType.Normal
                    && (best < 0 || tok.GetScore(id) > bestScore))
                {
                    best = i;
                    bestScore = tok.GetScore(id);
                }
            }
            if (best < 0)
            {
                break;
            }
            symbols[best] += symbols[best + 1];
            symbols.RemoveAt(best + 1);
        }
        foreach (string s in symbols)
        {
            if (tok.TryGetId(s, out int id) && tok.GetTokenType(id) != TokenType.Unknown)
            {
                ids.Add(id);
                continue;
            }
            foreach (byte b in Encoding.UTF8.GetBytes(s))
            {
                Assert.True(tok.TryGetId($"<0x{b:X2}>", out int byteId));
                ids.Add(byteId);
            }
        }
        return ids;
    }

    /// <summary>SentencePiece's Decode over ids.</summary>
    public static string Decode(Tokenizer tok, IReadOnlyList<int> ids)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        bool isBosWs = true;
        bool bosWsSeen = false;

        void FlushBytes()
        {
            int offset = 0;
            while (offset < bytes.Count)
            {
                int length = ValidUtf8Length(bytes, offset);
                if (length == 0)
                {
                    text.Append('\uFFFD');
                    offset++;
                }
                else
                {
                    text.Append(Encoding.UTF8.GetString([.. bytes.GetRange(offset, length)]));
                    offset += length;
                }
            }
            bytes.Clear();
        }

        foreach (int id in ids)
        {
            string piece = tok.GetPiece(id);
            var type = tok.GetTokenType(id);
            if (type == TokenType.Byte)
            {
                bytes.Add(Convert.ToByte(piece[3..5], 16));
                continue;
            }
            FlushBytes();
            if (bosWsSeen || text.Length > 0)
            {
                isBosWs = false;
            }
            bosWsSeen = false;
            if (type == TokenType.Control)
            {
                continue;
            }
            if (type == TokenType.Unknown)
            {
                text.Append(tok.Options.UnknownSurface);
                continue;
            }
            if (isBosWs && piece.StartsWith('\u2581'))
            {
                piece = piece[1..];
                bosWsSeen = true;
            }
            text.Append(piece.Replace('\u2581', ' '));
        }
        FlushBytes();
        return text.ToString();
    }

    /// <summary>Length of the valid UTF-8 character at <paramref name="offset"/> by util.h's DecodeUTF8 rules, or 0.</summary>
    private static int ValidUtf8Length(List<byte> b, int offset)
    {
        int left = b.Count - offset;
        byte lead = b[offset];
        bool Trail(int k) => (b[offset + k] & 0xC0) == 0x80;
        static bool ValidCp(int cp) => cp < 0xD800 || (cp >= 0xE000 && cp <= 0x10FFFF);
        if (lead < 0x80)
        {
            return 1;
        }
        if (left >= 2 && (lead & 0xE0) == 0xC0)
        {
            int cp = ((lead & 0x1F) << 6) | (b[offset + 1] & 0x3F);
            return Trail(1) && cp >= 0x80 && ValidCp(cp) ? 2 : 0;
        }
        if (left >= 3 && (lead & 0xF0) == 0xE0)
        {
            int cp = ((lead & 0x0F) << 12) | ((b[offset + 1] & 0x3F) << 6) | (b[offset + 2] & 0x3F);
            return Trail(1) && Trail(2) && cp >= 0x800 && ValidCp(cp) ? 3 : 0;
        }
        if (left >= 4 && (lead & 0xF8) == 0xF0)
        {
            int cp = ((lead & 0x07) << 18) | ((b[offset + 1] & 0x3F) << 12) | ((b[offset + 2] & 0x3F) << 6) | (b[offset + 3] & 0x3F);
            return Trail(1) && Trail(2) && Trail(3) && cp >= 0x10000 && ValidCp(cp) ? 4 : 0;
        }
        return 0;
    }
}
