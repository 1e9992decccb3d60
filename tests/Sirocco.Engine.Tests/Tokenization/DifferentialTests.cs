// Random-input checks beyond the golden files: the tokenizer against the plain reference restatement of
// SentencePiece, the tokenizer.json path against the tokenizer.model path, and decode against the reference decode.

using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

public class DifferentialTests
{
    [Theory]
    [InlineData(1, 8)]
    [InlineData(2, 30)]
    [InlineData(3, 120)]
    public void Encode_MatchesReferenceAndJsonPath_OnRandomText(int seed, int maxPieces)
    {
        var rng = new Random(seed);
        for (int n = 0; n < 150; n++)
        {
            string text = RandomText.Make(rng, maxPieces);
            int[] ids = GoldenData.Model.Encode(text);
            Assert.Equal(ReferenceSentencePiece.Encode(GoldenData.Model, text), ids);
            Assert.Equal(ids, GoldenData.Json.Encode(text));
        }
    }

    [Fact]
    public void Encode_LongText_MatchesJsonPath()
    {
        // Long enough that the segment cutting and heap growth are exercised many times over.
        var rng = new Random(7);
        var text = string.Concat(Enumerable.Range(0, 400).Select(_ => RandomText.Make(rng, 20)));
        Assert.Equal(GoldenData.Model.Encode(text), GoldenData.Json.Encode(text));
    }

    [Theory]
    [InlineData("                                                                          ")]
    [InlineData("x                                    y")]
    [InlineData("================================================================")]
    [InlineData("\n\n\n\n\n\n\n\n\n\n\n\n")]
    [InlineData("😀😀😀😀😀😀😀😀😀😀")]
    public void Encode_Runs_MatchReference(string text)
    {
        Assert.Equal(ReferenceSentencePiece.Encode(GoldenData.Model, text), GoldenData.Model.Encode(text));
        Assert.Equal(GoldenData.Model.Encode(text), GoldenData.Json.Encode(text));
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public void Decode_MatchesReference_OnRandomIds(int seed)
    {
        var rng = new Random(seed);
        for (int n = 0; n < 300; n++)
        {
            int[] ids = RandomText.Ids(rng, GoldenData.Model, 40);
            Assert.Equal(ReferenceSentencePiece.Decode(GoldenData.Model, ids), GoldenData.Model.Decode(ids));
        }
    }

    [Fact]
    public void Encode_LoneSurrogate_IsTreatedAsReplacementCharacter()
    {
        Assert.Equal(GoldenData.Model.Encode("a\uFFFDb"), GoldenData.Model.Encode("a\uD800b"));
        Assert.Equal(GoldenData.Model.Encode("\uFFFD"), GoldenData.Model.Encode("\uDC00"));
    }
}
