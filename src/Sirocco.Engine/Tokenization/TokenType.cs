// The kinds of vocabulary entry a SentencePiece model distinguishes. The numbering is SentencePiece's
// ModelProto.SentencePiece.Type, which llama.cpp's GGUF tokenizer.ggml.token_type array reuses unchanged.

namespace Sirocco.Engine.Tokenization;

/// <summary>What a vocabulary entry is. Values match SentencePiece's piece type and GGUF's <c>tokenizer.ggml.token_type</c>.</summary>
public enum TokenType
{
    /// <summary>An ordinary piece of text; the BPE merges produce these.</summary>
    Normal = 1,

    /// <summary>The unknown token (<c>&lt;unk&gt;</c>); decodes to the unknown surface, never produced by encoding with byte fallback.</summary>
    Unknown = 2,

    /// <summary>A control token such as <c>&lt;s&gt;</c> or <c>&lt;/s&gt;</c>: never produced from text, decodes to nothing.</summary>
    Control = 3,

    /// <summary>A piece always kept whole when it occurs in text; it never merges with its neighbours.</summary>
    UserDefined = 4,

    /// <summary>A piece that may be formed by a merge but is then split back into the two pieces that formed it.</summary>
    Unused = 5,

    /// <summary>One raw byte, written <c>&lt;0xXX&gt;</c>: the byte-fallback tokens.</summary>
    Byte = 6,
}
