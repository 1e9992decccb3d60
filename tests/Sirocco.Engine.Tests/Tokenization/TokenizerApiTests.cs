// Tokenizer's public surface beyond the golden data: framing with BOS/EOS, appending into a caller's list, piece
// lookups, and use from many threads at once (the server encodes concurrent requests with one instance).

using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

public class TokenizerApiTests
{
    private static Tokenizer Tok => GoldenData.Model;

    [Fact]
    public void Encode_FramesWithBosAndEos()
    {
        Assert.Equal([1, 22557, 1526, 2], Tok.Encode("Hello world", addBos: true, addEos: true));
        Assert.Equal([1, 2], Tok.Encode("", addBos: true, addEos: true));
        Assert.Equal("", Tok.Decode([]));
    }

    [Fact]
    public void Encode_IntoAList_Appends()
    {
        var ids = new List<int> { 1 };
        Tok.Encode("Hello".AsSpan(), ids);
        Tok.Encode(" world".AsSpan(), ids); // each call is a new text with its own dummy prefix
        Assert.Equal([1, 22557, 28705, 1526], ids);
    }

    [Fact]
    public void PieceLookups_AgreeWithEachOther()
    {
        Assert.True(Tok.TryGetId("\u2581Hello", out int id));
        Assert.Equal(22557, id);
        Assert.Equal("\u2581Hello", Tok.GetPiece(id));
        Assert.Equal(TokenType.Normal, Tok.GetTokenType(id));
        Assert.False(Tok.TryGetId("no such piece", out _));
        Assert.True(Tok.GetScore(22557) < 0);
    }

    [Fact]
    public void Encode_FromManyThreads_GivesTheSameIds()
    {
        var cases = GoldenData.Encode.Values.ToArray();
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, 2000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var c = cases[i % cases.Length];
            // Long and short texts interleave so that per-thread buffers grow and are reused.
            if (!Tok.Encode(c.Text).SequenceEqual(c.Ids))
            {
                failures.Add(c.Text);
            }
        });
        Assert.Empty(failures);
    }
}
