// SentencePiece behaviours the Mistral vocabulary never triggers, on a small hand-made vocabulary: user-defined
// pieces kept whole, unused pieces split back, characters that only exist inside pieces, unknown runs without byte
// fallback, remove_extra_whitespaces. Also FromVocabulary, the entry point for GGUF's tokenizer arrays.

using Sirocco.Engine.Formats;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

public class SyntheticVocabularyTests
{
    private static Tokenizer Small(bool removeExtraWhitespaces = false) =>
        SentencePieceModelReader.Parse(ProtoWriter.Model(ProtoWriter.SmallVocabulary, removeExtraWhitespaces: removeExtraWhitespaces), "small.model");

    [Theory]
    [InlineData("ab", new[] { 9 })]            // ab (-5) merges before ▁a (-6), then ▁ab
    [InlineData("x", new[] { 10 })]            // "x" is no piece, yet ▁ + x still merges into ▁x
    [InlineData("xx", new[] { 10, 0 })]        // the second x stays alone: unknown
    [InlineData("zz", new[] { 3, 0 })]         // a run of unknown characters is one <unk>
    [InlineData("a<U>b", new[] { 8, 11, 5 })]  // the user-defined piece is matched whole and never merges
    [InlineData("bc", new[] { 3, 5, 6 })]      // bc (unused) forms, then splits back into b, c
    [InlineData("abc", new[] { 8, 5, 6 })]     // bc (score 5) wins over ab, blocks it, and is split on output
    [InlineData("", new int[0])]
    public void Encode_FollowsSentencePiece(string text, int[] expected) => Assert.Equal(expected, Small().Encode(text));

    [Fact]
    public void RemoveExtraWhitespaces_TrimsAndCollapsesSpaces()
    {
        var tok = Small(removeExtraWhitespaces: true);
        Assert.Equal([8, 3, 5], tok.Encode("  a   b  "));
        Assert.Empty(tok.Encode("    "));
        // Decoding keeps stripping leading ▁ until visible text appears.
        Assert.Equal("a", tok.Decode([3, 8]));
        Assert.Equal(" a", Small().Decode([3, 8]));
    }

    [Fact]
    public void Decode_UnknownAndUserDefined()
    {
        Assert.Equal(" \u2047  \u2047 ", Small().Decode([0, 0]));
        Assert.Equal("<U>b", Small().Decode([11, 5]));
        Assert.Equal("bc", Small().Decode([1, 12, 2]));
    }

    [Fact]
    public void FromVocabulary_RebuildsMistral_AndMatchesEveryGoldenEncoding()
    {
        var sp = GoldenData.Model;
        var ids = Enumerable.Range(0, sp.VocabSize).ToArray();
        var tok = Tokenizer.FromVocabulary(
            [.. ids.Select(sp.GetPiece)], [.. ids.Select(sp.GetScore)], [.. ids.Select(i => (int)sp.GetTokenType(i))],
            SpecialTokenIds.SentencePieceDefaults, new TokenizerOptions(), "mistral.gguf");
        Assert.Equal("mistral.gguf", tok.Source);
        foreach (var (id, c) in GoldenData.Encode)
        {
            Assert.True(c.Ids.SequenceEqual(tok.Encode(c.Text)), id);
            Assert.Equal(c.Decoded, tok.Decode(c.IdsBos));
        }
    }

    private static readonly string[] s_pieces = ["<unk>", "<s>", "</s>", "a", "b", "ab"];
    private static readonly float[] s_scores = [0, 0, 0, -1, -2, -3];
    private static readonly int[] s_types = [2, 3, 3, 1, 1, 1];
    private static readonly TokenizerOptions s_noFallback = new() { ByteFallback = false };

    [Fact]
    public void FromVocabulary_SmallVocabularyWorks()
    {
        var tok = Tokenizer.FromVocabulary(s_pieces, s_scores, s_types, SpecialTokenIds.SentencePieceDefaults, s_noFallback);
        Assert.Equal([0, 5], tok.Encode("ab")); // ▁ is no piece here: the dummy prefix is unknown
    }

    public static TheoryData<string[], float[], int[], SpecialTokenIds, TokenizerOptions, string> BadVocabularies => new()
    {
        { s_pieces, [0, 0, 0], s_types, SpecialTokenIds.SentencePieceDefaults, s_noFallback, "scores" },
        { s_pieces, s_scores, [2, 3, 3, 1, 1], SpecialTokenIds.SentencePieceDefaults, s_noFallback, "token types" },
        { s_pieces, s_scores, [2, 3, 3, 1, 1, 7], SpecialTokenIds.SentencePieceDefaults, s_noFallback, "token type of id 5" },
        { ["<unk>", "<s>", "</s>", "a", "b", "a"], s_scores, s_types, SpecialTokenIds.SentencePieceDefaults, s_noFallback, "duplicate" },
        { ["<unk>", "<s>", "</s>", "a", "b", ""], s_scores, s_types, SpecialTokenIds.SentencePieceDefaults, s_noFallback, "piece 5" },
        { s_pieces, s_scores, [2, 3, 3, 1, 1, 6], SpecialTokenIds.SentencePieceDefaults, s_noFallback, "<0x00>" },
        { s_pieces, s_scores, s_types, SpecialTokenIds.SentencePieceDefaults, new TokenizerOptions(), "256" },
        { s_pieces, s_scores, s_types, new SpecialTokenIds(3, 1, 2), s_noFallback, "unknown token id" },
        { s_pieces, s_scores, s_types, new SpecialTokenIds(-1, 1, 2), s_noFallback, "unknown token id" },
        { s_pieces, s_scores, s_types, new SpecialTokenIds(0, 6, 2), s_noFallback, "bos token id" },
        { s_pieces, s_scores, s_types, new SpecialTokenIds(0, 1, -2), s_noFallback, "eos token id" },
        { ["<unk>", "<s>", "</s>", "a", "b", "\uD800"], s_scores, s_types, SpecialTokenIds.SentencePieceDefaults, s_noFallback, "surrogate" },
    };

    [Theory]
    [MemberData(nameof(BadVocabularies))]
    public void FromVocabulary_RejectsInconsistentArrays(string[] pieces, float[] scores, int[] types, SpecialTokenIds special,
        TokenizerOptions options, string expectedInMessage)
    {
        var e = Assert.Throws<ModelFormatException>(() => Tokenizer.FromVocabulary(pieces, scores, types, special, options, "bad.gguf"));
        Assert.Contains(expectedInMessage, e.Message);
        Assert.Contains("bad.gguf", e.Message);
    }

    [Fact]
    public void TokenAccessors_RejectIdsOutsideTheVocabulary()
    {
        var tok = GoldenData.Model;
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.GetPiece(32000));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.GetTokenType(-1));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([1, 32000]));
        Assert.Contains("32000", e.Message);
    }
}
