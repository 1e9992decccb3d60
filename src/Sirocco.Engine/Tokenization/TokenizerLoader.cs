// Picks the right reader for a tokenizer path: SentencePiece tokenizer.model, Hugging Face tokenizer.json, a model
// directory holding either, or a GGUF file (its embedded vocabulary). The CLI and the server's model loading call it.

namespace Sirocco.Engine.Tokenization;

/// <summary>Loads a <see cref="Tokenizer"/> from whatever kind of file or directory it is given.</summary>
public static class TokenizerLoader
{
    /// <summary>Loads the tokenizer at <paramref name="path"/>.</summary>
    /// <param name="path">A <c>tokenizer.model</c>, a <c>tokenizer.json</c>, a <c>.gguf</c> model file, or a directory
    /// containing <c>tokenizer.model</c> (preferred) or <c>tokenizer.json</c>. Files are recognised by extension, and
    /// otherwise by content: <c>GGUF</c> magic, a JSON object, or else a SentencePiece protobuf.</param>
    /// <exception cref="FileNotFoundException">Nothing at <paramref name="path"/>, or a directory without a tokenizer.</exception>
    /// <exception cref="Formats.ModelFormatException">The file is malformed.</exception>
    /// <exception cref="Formats.UnsupportedModelException">The file describes a tokenizer Sirocco does not implement.</exception>
    public static Tokenizer Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            string model = Path.Combine(path, "tokenizer.model");
            if (File.Exists(model))
            {
                return SentencePieceModelReader.Load(model);
            }
            string json = Path.Combine(path, "tokenizer.json");
            if (File.Exists(json))
            {
                return TokenizerJsonReader.Load(json);
            }
            throw new FileNotFoundException($"{path}: directory has neither tokenizer.model nor tokenizer.json", model);
        }
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path}: no such file or directory", path);
        }
        return Sniff(path) switch
        {
            Kind.Gguf => GgufTokenizer.Load(path),
            Kind.Json => TokenizerJsonReader.Load(path),
            _ => SentencePieceModelReader.Load(path),
        };
    }

    private enum Kind
    {
        SentencePiece,
        Json,
        Gguf,
    }

    private static Kind Sniff(string path)
    {
        string extension = Path.GetExtension(path);
        if (extension.Equals(".gguf", StringComparison.OrdinalIgnoreCase))
        {
            return Kind.Gguf;
        }
        if (extension.Equals(".json", StringComparison.OrdinalIgnoreCase))
        {
            return Kind.Json;
        }
        if (extension.Equals(".model", StringComparison.OrdinalIgnoreCase))
        {
            return Kind.SentencePiece;
        }
        Span<byte> head = stackalloc byte[64];
        int read;
        using (var stream = File.OpenRead(path))
        {
            read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        head = head[..read];
        if (head.StartsWith("GGUF"u8))
        {
            return Kind.Gguf;
        }
        // A protobuf ModelProto starts with a field tag (0x0A for pieces); JSON starts with '{' after optional
        // whitespace or a UTF-8 byte order mark.
        var text = head.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? head[3..] : head;
        text = text.TrimStart(" \t\r\n"u8);
        return text.Length > 0 && text[0] == (byte)'{' ? Kind.Json : Kind.SentencePiece;
    }
}
