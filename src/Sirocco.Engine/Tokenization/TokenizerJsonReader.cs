namespace Sirocco.Engine.Tokenization;

internal static class TokenizerJsonReader
{
    public static Tokenizer Load(string path) => throw new NotSupportedException(path);
}
