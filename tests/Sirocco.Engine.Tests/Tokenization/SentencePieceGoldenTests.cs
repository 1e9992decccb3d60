// Golden tests for the tokenizer.model path: every line of golden-dev.jsonl, golden-dev-decode.jsonl and
// golden-dev-chat.jsonl, one test case per line id, against the reference SentencePiece output.

using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

public class SentencePieceGoldenTests
{
    private static Tokenizer Tok => GoldenData.Model;

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
