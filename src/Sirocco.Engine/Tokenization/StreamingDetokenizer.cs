// Incremental decoding for token streaming: the scheduler feeds generated ids one at a time and forwards only text
// that can no longer change. Tokenizer.Decode runs the same code over a whole sequence, so streamed output
// concatenated always equals the batch decode (SentencePiece's Decode in sentencepiece_processor.cc).

using System.Text;

namespace Sirocco.Engine.Tokenization;

/// <summary>Turns a stream of token ids into text, never splitting a UTF-8 character: bytes of a byte-fallback
/// sequence are held until they form a complete character or are proven invalid (then each invalid byte is U+FFFD).
/// Not thread-safe; use one per sequence.</summary>
public sealed class StreamingDetokenizer
{
    private readonly Tokenizer _tokenizer;
    private readonly StringBuilder _scratch = new();
    private readonly byte[] _pending = new byte[4];
    private int _pendingCount;

    // SentencePiece's leading-space rule: one ▁ is dropped from the first piece that starts the visible text.
    // _expectLeadingSpace is cleared once text has been produced or once a piece has consumed the ▁;
    // _consumedLeadingSpace remembers whether the previous non-byte piece consumed it.
    private bool _expectLeadingSpace = true;
    private bool _consumedLeadingSpace;
    private bool _producedText;

    internal StreamingDetokenizer(Tokenizer tokenizer) => _tokenizer = tokenizer;

    /// <summary>Adds one token and returns the text that became final (often empty while bytes are pending).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is outside the vocabulary.</exception>
    public string Push(int id)
    {
        _scratch.Clear();
        Append(id, _scratch);
        return _scratch.Length == 0 ? string.Empty : _scratch.ToString();
    }

    /// <summary>Ends the stream: pending bytes that never completed a character become U+FFFD each. The detokenizer
    /// may then be reused for a new sequence.</summary>
    public string Flush()
    {
        _scratch.Clear();
        Finish(_scratch);
        return _scratch.ToString();
    }

    /// <summary>Decodes <paramref name="id"/> into <paramref name="output"/>.</summary>
    internal void Append(int id, StringBuilder output)
    {
        _tokenizer.CheckId(id);
        int byteValue = _tokenizer.ByteValues[id];
        if (byteValue >= 0)
        {
            // Every byte produces output eventually (a character or U+FFFD), so the text is no longer empty.
            _producedText = true;
            _pending[_pendingCount++] = (byte)byteValue;
            DrainBytes(output, endOfRun: false);
            return;
        }

        DrainBytes(output, endOfRun: true);
        if (_consumedLeadingSpace || _producedText)
        {
            _expectLeadingSpace = false;
        }
        _consumedLeadingSpace = false;
        int start = output.Length;
        switch (_tokenizer.TypeOf(id))
        {
            case TokenType.Control:
                break; // <s>, </s>: invisible
            case TokenType.Unknown:
                output.Append(_tokenizer.Options.UnknownSurface);
                break;
            default:
                string piece = _tokenizer.DecodedPieces[id];
                var options = _tokenizer.Options;
                if (_expectLeadingSpace && (options.AddDummyPrefix || options.RemoveExtraWhitespaces)
                    && _tokenizer.GetPiece(id)[0] == Tokenizer.SpaceSymbol)
                {
                    output.Append(piece, 1, piece.Length - 1);
                    // With remove_extra_whitespaces SentencePiece keeps stripping until visible text appears.
                    _consumedLeadingSpace = !options.RemoveExtraWhitespaces;
                }
                else
                {
                    output.Append(piece);
                }
                break;
        }
        if (output.Length > start)
        {
            _producedText = true;
        }
    }

    /// <summary>Flushes pending bytes and resets for a new sequence.</summary>
    internal void Finish(StringBuilder output)
    {
        DrainBytes(output, endOfRun: true);
        _expectLeadingSpace = true;
        _consumedLeadingSpace = false;
        _producedText = false;
    }

    /// <summary>Emits every pending character whose bytes are decided. SentencePiece reads a run of byte tokens one
    /// character at a time: a lead byte with the right number of continuation bytes forming a valid code point
    /// (no overlong form, no surrogate, at most U+10FFFF) is one character; anything else is one invalid byte, which
    /// becomes U+FFFD, and reading resumes at the next byte (util.h DecodeUTF8). While the run is open, an incomplete
    /// sequence whose bytes so far are all continuation bytes may still become valid, so it waits.</summary>
    private void DrainBytes(StringBuilder output, bool endOfRun)
    {
        while (_pendingCount > 0)
        {
            byte lead = _pending[0];
            int needed = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 0;
            int consumed;
            if (needed == 0)
            {
                consumed = 0; // a stray continuation byte or 0xF8..0xFF: invalid on its own
            }
            else if (needed == 1)
            {
                output.Append((char)lead);
                consumed = 1;
            }
            else
            {
                int present = Math.Min(needed, _pendingCount);
                bool trailsOk = true;
                for (int k = 1; k < present; k++)
                {
                    trailsOk &= (_pending[k] & 0xC0) == 0x80;
                }
                if (trailsOk && present < needed)
                {
                    if (!endOfRun)
                    {
                        return; // may still complete
                    }
                    consumed = 0;
                }
                else if (!trailsOk)
                {
                    consumed = 0;
                }
                else
                {
                    int cp = needed switch
                    {
                        2 => ((lead & 0x1F) << 6) | (_pending[1] & 0x3F),
                        3 => ((lead & 0x0F) << 12) | ((_pending[1] & 0x3F) << 6) | (_pending[2] & 0x3F),
                        _ => ((lead & 0x07) << 18) | ((_pending[1] & 0x3F) << 12) | ((_pending[2] & 0x3F) << 6) | (_pending[3] & 0x3F),
                    };
                    int minimum = needed switch { 2 => 0x80, 3 => 0x800, _ => 0x10000 };
                    bool valid = cp >= minimum && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
                    if (valid)
                    {
                        AppendCodePoint(output, cp);
                        consumed = needed;
                    }
                    else
                    {
                        consumed = 0;
                    }
                }
            }
            if (consumed == 0)
            {
                output.Append('\uFFFD');
                consumed = 1;
            }
            _pendingCount -= consumed;
            _pending.AsSpan(consumed, _pendingCount).CopyTo(_pending);
        }
    }

    private static void AppendCodePoint(StringBuilder output, int cp)
    {
        if (cp < 0x10000)
        {
            output.Append((char)cp);
            return;
        }
        Span<char> pair = stackalloc char[2];
        new Rune(cp).EncodeToUtf16(pair);
        output.Append(pair);
    }
}
