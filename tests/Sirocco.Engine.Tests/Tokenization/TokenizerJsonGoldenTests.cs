// The golden files again, through the Hugging Face path: the real tokenizer.model is written as tokenizer.json by
// TokenizerJsonWriter (merges derived as transformers' converter derives them), read back, and must still match.

using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

public sealed class TokenizerJsonGoldenTests : GoldenTokenizerTests
{
    protected override Tokenizer Tok => GoldenData.Json;

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
}
