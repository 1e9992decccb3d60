// The golden files again, through the Hugging Face path: the real tokenizer.model is written as tokenizer.json by
// TokenizerJsonWriter (merges derived as transformers' converter derives them), read back, and must still match.

using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

public class TokenizerJsonGoldenTests
{
    private static Tokenizer Tok => GoldenData.Json;

    [Fact]
    public void JsonTokenizer_HasTheSameVocabularyAndSpecialIds()
    {
        var sp = GoldenData.Model;
        Assert.Equal(sp.VocabSize, Tok.VocabSize);
        Assert.Equal((sp.UnkId, sp.BosId, sp.EosId, sp.PadId), (Tok.UnkId, Tok.BosId, Tok.EosId, Tok.PadId));
        for (int id = 0; id < sp.VocabSize; id++)
        {
            Assert.Equal(sp.GetPiece(id), Tok.GetPiece(id));
            Assert.Equal(sp.GetTokenType(id), Tok.GetTokenType(id));
        }
        Assert.NotNull(Tok.MergeList);
    }

    [Theory]
    [MemberData(nameof(GoldenData.EncodeIds), MemberType = typeof(GoldenData))]
    public void Encode_MatchesSentencePiece(string id)
    {
        var c = GoldenData.Encode[id];
        Assert.Equal(c.Ids, Tok.Encode(c.Text));
        Assert.Equal(c.IdsBos, Tok.Encode(c.Text, addBos: true));
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
    }
}
