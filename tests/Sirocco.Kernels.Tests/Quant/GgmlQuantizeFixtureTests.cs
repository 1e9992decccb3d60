// Our quantizers against ggml's reference quantizers on the fixture rows (testdata/ggml-quant): the formats with a
// closed-form rounding rule must give ggml's bytes exactly; the K-quants (our own scale search) must give an RMS
// error within a stated factor of ggml's on the same input.

using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Reference;

namespace Sirocco.Kernels.Tests.Quant;

public class GgmlQuantizeFixtureTests
{
    /// <summary>Our K-quant RMS error may be at most this multiple of ggml's on a fixture row. Measured: 0.96–1.06 on
    /// the 256- and 512-element random rows (1.061 worst, Q4_K on N(0, 0.02²)); on 4M N(0,1) values the ratio is
    /// 1.000 (Q4_K), 0.99 (Q5_K), 0.98 (Q6_K). 1.1 leaves room for the noise of a single super-block.</summary>
    private const double KQuantRmsFactor = 1.1;

    /// <summary>Absolute slack, relative to the row's RMS value, for rows where ggml's error is zero or nearly
    /// (a lone spike, constant rows): a difference of one f16 rounding in a scale is then a large ratio but a
    /// negligible error. Measured worst: 5.2e−5 (Q4_K, single_spike).</summary>
    private const double KQuantRmsSlackRelative = 1e-4;

    public static TheoryData<GgmlType, string> ExactRows => GgmlFixtures.Cases(
        GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1);

    public static TheoryData<GgmlType, string> KQuantRows => GgmlFixtures.Cases(GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K);

    [Theory]
    [MemberData(nameof(ExactRows))]
    public void Quantize_ProducesGgmlBytes(GgmlType type, string row)
    {
        var fixture = GgmlFixtures.Row(type, row);
        var bytes = new byte[fixture.Bytes.Length];
        Quantize.Row(type, fixture.Input, bytes);
        Assert.Equal(Convert.ToHexString(fixture.Bytes), Convert.ToHexString(bytes));
    }

    [Theory]
    [MemberData(nameof(KQuantRows))]
    public void KQuant_RmsErrorIsWithinFactorOfGgml(GgmlType type, string row)
    {
        var fixture = GgmlFixtures.Row(type, row);
        var bytes = new byte[fixture.Bytes.Length];
        Quantize.Row(type, fixture.Input, bytes);
        var y = new float[fixture.Input.Length];
        Dequantize.Row(type, bytes, y);

        double ours = ErrorStats.Rms(fixture.Input, y);
        double ggml = ErrorStats.Rms(fixture.Input, fixture.Dequantized);
        double bound = KQuantRmsFactor * ggml + KQuantRmsSlackRelative * ErrorStats.Rms(fixture.Input);
        Assert.True(ours <= bound, $"{type} {row}: RMS error {ours:E3}, ggml {ggml:E3}, bound {bound:E3}");
    }
}
