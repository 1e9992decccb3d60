// The streaming detokenizer must produce exactly the batch decode when its outputs are concatenated, for every golden
// sequence and for random ones, and must never hand out half a character.

using System.Text;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

public class StreamingDetokenizerTests
{
    private static Tokenizer Tok => GoldenData.Model;

    private static string Stream(Tokenizer tok, IEnumerable<int> ids, List<string>? chunks = null)
    {
        var detok = tok.CreateStreamingDetokenizer();
        var sb = new StringBuilder();
        foreach (int id in ids)
        {
            string chunk = detok.Push(id);
            chunks?.Add(chunk);
            sb.Append(chunk);
        }
        string last = detok.Flush();
        chunks?.Add(last);
        return sb.Append(last).ToString();
    }

    [Theory]
    [MemberData(nameof(GoldenData.EncodeIds), MemberType = typeof(GoldenData))]
    public void Streaming_EqualsBatch_ForGoldenEncodings(string id)
    {
        var c = GoldenData.Encode[id];
        Assert.Equal(c.Decoded, Stream(Tok, c.Ids));
        Assert.Equal(c.Decoded, Stream(Tok, c.IdsBos));
    }

    [Theory]
    [MemberData(nameof(GoldenData.DecodeIds), MemberType = typeof(GoldenData))]
    public void Streaming_EqualsGoldenDecode(string id)
    {
        var c = GoldenData.Decode[id];
        Assert.Equal(c.Decoded, Stream(Tok, c.Ids));
    }

    [Theory]
    [MemberData(nameof(GoldenData.ChatIds), MemberType = typeof(GoldenData))]
    public void Streaming_EqualsBatch_ForGoldenChats(string id)
    {
        var c = GoldenData.Chat[id];
        Assert.Equal(Tok.Decode(c.Ids), Stream(Tok, c.Ids));
    }

    [Theory]
    [InlineData(21)]
    [InlineData(22)]
    [InlineData(23)]
    [InlineData(24)]
    public void Streaming_EqualsBatch_ForRandomIds_AndNeverSplitsACharacter(int seed)
    {
        var rng = new Random(seed);
        for (int n = 0; n < 400; n++)
        {
            int[] ids = RandomText.Ids(rng, Tok, 60);
            var chunks = new List<string>();
            Assert.Equal(Tok.Decode(ids), Stream(Tok, ids, chunks));
            foreach (string chunk in chunks)
            {
                Assert.True(chunk.Length == 0 || !char.IsHighSurrogate(chunk[^1]), "a chunk ends inside a surrogate pair");
                Assert.True(chunk.Length == 0 || !char.IsLowSurrogate(chunk[0]), "a chunk starts inside a surrogate pair");
            }
        }
    }

    [Fact]
    public void Streaming_HoldsBytesUntilTheCharacterIsComplete()
    {
        var detok = Tok.CreateStreamingDetokenizer();
        Assert.Equal("", detok.Push(1));        // <s>
        Assert.Equal("", detok.Push(3 + 0xF0)); // 🕀 = F0 9F 95 80
        Assert.Equal("", detok.Push(3 + 0x9F));
        Assert.Equal("", detok.Push(3 + 0x95));
        Assert.Equal("🕀", detok.Push(3 + 0x80));
        Assert.Equal(" Hello", detok.Push(22557)); // not the first piece any more: its ▁ is a space
        Assert.Equal("", detok.Flush());
    }

    [Fact]
    public void Streaming_ReleasesInvalidBytesAsSoonAsTheyAreProvenInvalid()
    {
        var detok = Tok.CreateStreamingDetokenizer();
        Assert.Equal("", detok.Push(3 + 0xE2));            // could start a 3-byte character
        Assert.Equal("\uFFFDA", detok.Push(3 + 0x41));     // 'A' is no continuation byte: E2 is invalid, A is final
        Assert.Equal("\uFFFD", detok.Push(3 + 0x80));      // a stray continuation byte
        Assert.Equal("", detok.Push(3 + 0xC3));
        Assert.Equal("\uFFFD", detok.Flush());              // the run ended before C3 was complete
    }

    [Fact]
    public void Streaming_DropsOneLeadingSpaceOnlyAtTheStart_AndFlushStartsAFreshSequence()
    {
        var detok = Tok.CreateStreamingDetokenizer();
        Assert.Equal("Hello", detok.Push(22557));
        Assert.Equal(" Hello", detok.Push(22557));
        detok.Flush();
        Assert.Equal("Hello", detok.Push(22557));
    }

    [Fact]
    public void Push_RejectsIdsOutsideTheVocabulary()
    {
        var detok = Tok.CreateStreamingDetokenizer();
        Assert.Throws<ArgumentOutOfRangeException>(() => detok.Push(Tok.VocabSize));
        Assert.Throws<ArgumentOutOfRangeException>(() => detok.Push(-1));
    }
}
