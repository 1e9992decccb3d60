// Our reference dequantizers against ggml's own: the same bytes (produced by ggml's quantizers) must decode to the
// same floats, bit for bit, for every type and every fixture row (testdata/ggml-quant, see its README).

using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Reference;

namespace Sirocco.Kernels.Tests.Reference;

public class GgmlFixtureTests
{
    public static TheoryData<GgmlType, string> AllRows => GgmlFixtures.Cases(GgmlFixtures.Types);

    [Theory]
    [MemberData(nameof(AllRows))]
    public void Dequantize_ReproducesGgmlBitExactly(GgmlType type, string row)
    {
        var fixture = GgmlFixtures.Row(type, row);
        var y = new float[fixture.Input.Length];
        Dequantize.Row(type, fixture.Bytes, y);
        for (int i = 0; i < y.Length; i++)
        {
            // Compare bit patterns: exact, and -0 is not +0.
            Assert.True(BitConverter.SingleToInt32Bits(fixture.Dequantized[i]) == BitConverter.SingleToInt32Bits(y[i]),
                $"{type} {row}[{i}]: ggml {fixture.Dequantized[i]:R}, ours {y[i]:R}");
        }
    }
}
