// The ModelProto reader on good, unsupported and hostile input: whatever the bytes, the only outcomes are a working
// tokenizer, ModelFormatException (naming file, field and offset) or UnsupportedModelException, and quickly.

using Sirocco.Engine.Formats;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

public class SentencePieceModelReaderTests
{
    private static readonly Lazy<byte[]> s_realModel = new(() => File.ReadAllBytes(TestData.TokenizerModel));

    private static byte[] RealModel => s_realModel.Value;

    [Fact]
    public void RealModel_HasMistralV1Facts()
    {
        var tok = GoldenData.Model;
        Assert.Equal(32000, tok.VocabSize);
        Assert.Equal((0, 1, 2, -1), (tok.UnkId, tok.BosId, tok.EosId, tok.PadId));
        Assert.Equal("<0x00>", tok.GetPiece(3));
        Assert.Equal(TokenType.Byte, tok.GetTokenType(258));
        Assert.Equal("\u2581\u2581", tok.GetPiece(259));
        Assert.Equal("\u2581", tok.GetPiece(28705));
        Assert.Equal(TokenType.Control, tok.GetTokenType(1));
        Assert.Equal(TokenType.Unknown, tok.GetTokenType(0));
        Assert.Equal(new TokenizerOptions(), tok.Options);
        Assert.Equal(" \u2047 ", tok.Options.UnknownSurface);
    }

    /// <summary>Parses <paramref name="bytes"/> with a hang guard; returns the exception, or null on success.</summary>
    private static Exception? Outcome(byte[] bytes)
    {
        var task = Task.Run(() =>
        {
            try
            {
                var tok = SentencePieceModelReader.Parse(bytes, "hostile.model");
                // A file that still parses must give a tokenizer that works.
                tok.Decode(tok.Encode("Hello, wörld! 😀 日本 \n\t  x"));
                return null;
            }
            catch (Exception e)
            {
                return e;
            }
        });
        Assert.True(task.Wait(TimeSpan.FromSeconds(30)), "parsing hung");
        return task.Result;
    }

    private static void AssertFormatOrUnsupported(Exception? e, string what)
    {
        Assert.True(e is null or ModelFormatException or UnsupportedModelException,
            $"{what}: unexpected {e?.GetType().Name}: {e?.Message}");
    }

    [Fact]
    public void TruncatedModel_AtManyOffsets_IsAFormatError()
    {
        // Every offset through the first pieces and the trailing specs, and 200 spread over the rest.
        var offsets = Enumerable.Range(0, 200)
            .Concat(Enumerable.Range(0, 200).Select(i => i * (RealModel.Length / 200)))
            .Concat(Enumerable.Range(RealModel.Length - 150, 150))
            .Distinct();
        foreach (int length in offsets)
        {
            var e = Outcome(RealModel[..length]);
            // A proper prefix always lacks the trainer or normalizer spec, or cuts a field: never a success.
            Assert.True(e is ModelFormatException, $"truncated at {length}: {e?.GetType().Name}: {e?.Message}");
        }
    }

    [Fact]
    public void FlippedBytes_GiveAWorkingTokenizerOrACleanError()
    {
        var rng = new Random(1234);
        for (int n = 0; n < 120; n++)
        {
            var bytes = (byte[])RealModel.Clone();
            // Mostly the first 4 KB (tags, lengths, types of early pieces), then the specs at the end, then anywhere.
            int at = n % 3 == 0 ? rng.Next(4096) : n % 3 == 1 ? bytes.Length - 1 - rng.Next(400) : rng.Next(bytes.Length);
            bytes[at] ^= (byte)rng.Next(1, 256);
            AssertFormatOrUnsupported(Outcome(bytes), $"flip at {at}");
        }
    }

    [Fact]
    public void HugeLengthPrefix_IsAFormatErrorNamingTheOffset()
    {
        var bytes = new ProtoWriter().Tag(1, 2).RawVarint(0x7FFF_FFFF_FFFF).Raw(1, 2, 3).ToArray();
        var e = Assert.IsType<ModelFormatException>(Outcome(bytes));
        Assert.Equal("hostile.model", e.FilePath);
        Assert.Contains("pieces", e.Field);
        Assert.Equal(1, e.Offset);
        Assert.Contains("hostile.model", e.Message);
    }

    [Theory]
    [InlineData(new byte[] { 0x0A, 0x80 }, "varint")]                                        // truncated length
    [InlineData(new byte[] { 0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }, "varint")]
    [InlineData(new byte[] { 0x08, 0x01 }, "wire type")]                                      // pieces as a varint
    [InlineData(new byte[] { 0x0B }, "wire type")]                                            // start-group
    [InlineData(new byte[] { 0x00, 0x00 }, "field number")]                                   // field 0
    [InlineData(new byte[] { 0x0D, 0x01, 0x02 }, "wire type")]                                 // pieces as fixed32
    [InlineData(new byte[] { 0x0A, 0x04, 0x0A, 0x02, 0xC3, 0x28 }, "UTF-8")]                  // invalid UTF-8 piece
    [InlineData(new byte[] { 0x0A, 0x03, 0x0A, 0x05, 0x41 }, "length")]                       // piece longer than its message
    [InlineData(new byte[] { 0x0A, 0x05, 0x0A, 0x01, 0x41, 0x18, 0x09 }, "1..6")]             // piece type 9
    [InlineData(new byte[] { 0x0A, 0x02, 0x18, 0x01 }, "non-empty piece")]                     // a piece with no string
    public void MalformedBytes_AreFormatErrors(byte[] bytes, string expectedInMessage)
    {
        var e = Assert.IsType<ModelFormatException>(Outcome(bytes));
        Assert.Contains(expectedInMessage, e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void EmptyFile_IsAFormatError() => Assert.IsType<ModelFormatException>(Outcome([]));

    [Fact]
    public void UnigramModel_IsUnsupported()
    {
        var e = Assert.IsType<UnsupportedModelException>(Outcome(ProtoWriter.Model(ProtoWriter.SmallVocabulary, modelType: 1)));
        Assert.Contains("UNIGRAM", e.Message);
    }

    [Fact]
    public void NfkcNormalizer_IsUnsupported()
    {
        var bytes = ProtoWriter.Model(ProtoWriter.SmallVocabulary, normalizer: "nmt_nfkc", charsMap: [1, 2, 3, 4, 5]);
        var e = Assert.IsType<UnsupportedModelException>(Outcome(bytes));
        Assert.Contains("nmt_nfkc", e.Message);
    }

    [Fact]
    public void ByteFallbackWithoutByteTokens_IsAFormatError()
    {
        var e = Assert.IsType<ModelFormatException>(Outcome(ProtoWriter.Model(ProtoWriter.SmallVocabulary, byteFallback: true)));
        Assert.Contains("256", e.Message);
    }

    [Fact]
    public void UnknownFields_AreSkipped()
    {
        var model = new ProtoWriter()
            .Varint(99, 5).Fixed32(98, 1f).Tag(97, 1).Raw(1, 2, 3, 4, 5, 6, 7, 8).String(96, "extra")
            .Raw(ProtoWriter.Model(ProtoWriter.SmallVocabulary));
        var tok = SentencePieceModelReader.Parse(model.ToArray(), "extra.model");
        Assert.Equal(ProtoWriter.SmallVocabulary.Length, tok.VocabSize);
    }

    [Fact]
    public void Load_MissingFile_IsFileNotFound() =>
        Assert.Throws<FileNotFoundException>(() => Tokenizer.LoadSentencePieceModel("/nonexistent/tokenizer.model"));
}
