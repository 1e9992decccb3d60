// The golden tests every tokenizer source must pass: every line of golden-dev.jsonl, golden-dev-decode.jsonl and
// golden-dev-chat.jsonl, one test case per line id, against the reference SentencePiece output. One subclass per
// source (tokenizer.model, tokenizer.json, GGUF metadata) supplies the tokenizer.

using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

public abstract class GoldenTokenizerTests
{
    /// <summary>The tokenizer under test, loaded from one source.</summary>
    protected abstract Tokenizer Tok { get; }

    [Theory]
    [MemberData(nameof(GoldenData.EncodeIds), MemberType = typeof(GoldenData))]
    public void Encode_MatchesSentencePiece(string id)
    {
        var c = GoldenData.Encode[id];
        Assert.Equal(c.Ids, Tok.Encode(c.Text));
        Assert.Equal(c.IdsBos, Tok.Encode(c.Text, addBos: true));
    }

    [Theory]
    [MemberData(nameof(GoldenData.EncodeIds), MemberType = typeof(GoldenData))]
    public void Decode_OfGoldenIds_MatchesSentencePiece(string id)
    {
        var c = GoldenData.Encode[id];
        Assert.Equal(c.Decoded, Tok.Decode(c.Ids));
        Assert.Equal(c.Decoded, Tok.Decode(c.IdsBos));
    }

    [Theory]
    [MemberData(nameof(GoldenData.DecodeIds), MemberType = typeof(GoldenData))]
    public void Decode_MatchesSentencePiece(string id)
    {
        var c = GoldenData.Decode[id];
        Assert.Equal(c.Decoded, Tok.Decode(c.Ids));
    }

    [Theory]
    [MemberData(nameof(GoldenData.ChatIds), MemberType = typeof(GoldenData))]
    public void ChatTemplate_MatchesMistralCommon(string id)
    {
        var c = GoldenData.Chat[id];
        Assert.Equal(c.Ids, MistralChatTemplate.Encode(Tok, c.Messages));
        Assert.Equal(c.Decoded, Tok.Decode(c.Ids));
    }
}
