// Golden tests for the tokenizer.model path (the SentencePiece ModelProto reader); the cases are in GoldenTokenizerTests.

using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Tokenization;

public sealed class SentencePieceGoldenTests : GoldenTokenizerTests
{
    protected override Tokenizer Tok => GoldenData.Model;
}
