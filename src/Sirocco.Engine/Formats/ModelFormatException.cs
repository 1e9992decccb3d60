// The one exception a bad model, tokenizer or adapter file raises: it names the file, the field, the offset, and
// what was expected versus what was found. Readers in Formats/ and Tokenization/ throw it; the CLI and server print it.

namespace Sirocco.Engine.Formats;

/// <summary>A model, tokenizer or adapter file is malformed (truncated, garbled, inconsistent).</summary>
public class ModelFormatException : Exception
{
    public ModelFormatException(string path, string field, long offset, string expected, string found)
        : base(Compose(path, field, offset, expected, found))
    {
        FilePath = path;
        Field = field;
        Offset = offset;
        Expected = expected;
        Found = found;
    }

    public ModelFormatException(string message) : base(message)
    {
        FilePath = Field = Expected = Found = "";
        Offset = -1;
    }

    public ModelFormatException(string message, Exception inner) : base(message, inner)
    {
        FilePath = Field = Expected = Found = "";
        Offset = -1;
    }

    public ModelFormatException() : this("malformed model file")
    {
    }

    /// <summary>The file that is bad.</summary>
    public string FilePath { get; }

    /// <summary>The header field, metadata key or tensor name that is bad.</summary>
    public string Field { get; }

    /// <summary>Byte offset in the file where the bad value starts, or -1 when it has no single place.</summary>
    public long Offset { get; }

    public string Expected { get; }

    public string Found { get; }

    private static string Compose(string path, string field, long offset, string expected, string found)
    {
        string where = offset >= 0 ? $" at offset {offset}" : "";
        return $"{Path.GetFileName(path)}: {field}{where}: expected {expected}, found {found}";
    }
}

/// <summary>A well-formed file uses a feature Sirocco does not support (a tensor type, an architecture, a tokenizer
/// model). Distinct from <see cref="ModelFormatException"/> so that users are not told a good file is corrupt.</summary>
public sealed class UnsupportedModelException : Exception
{
    public UnsupportedModelException(string message) : base(message)
    {
    }

    public UnsupportedModelException() : this("unsupported model feature")
    {
    }

    public UnsupportedModelException(string message, Exception inner) : base(message, inner)
    {
    }
}
