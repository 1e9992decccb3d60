// Quantize.Q8_K (the K-quant activation format): ggml's quantize_row_q8_K_ref rules checked on seeded rows, the
// per-16 sums, the zero block, and the round trip through Dequantize.Q8_K.

using System.Buffers.Binary;
using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Reference;

namespace Sirocco.Kernels.Tests.Quant;

public class Q8KQuantizeTests
{
    [Theory]
    [InlineData(1, 1.0)]
    [InlineData(16, 3.0)]
    [InlineData(125, 1e-3)]
    public void Q8_K_FollowsGgmlRules_AndRoundTripsWithinHalfAStep(int blocks, double sigma)
    {
        float[] x = new TestRandom((ulong)blocks).Gaussian(256 * blocks, sigma);
        byte[] row = new byte[292 * blocks];
        row.AsSpan().Fill(0xCD);
        Quantize.Row(GgmlType.Q8_K, x, row);
        float[] y = new float[x.Length];
        Dequantize.Row(GgmlType.Q8_K, row, y);
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<byte> block = row.AsSpan(292 * b, 292);
            ReadOnlySpan<float> xb = x.AsSpan(256 * b, 256);
            float max = 0;
            foreach (float v in xb)
            {
                max = Math.Abs(v) > Math.Abs(max) ? v : max;
            }
            float iscale = -127f / max;
            Assert.Equal(1f / iscale, BinaryPrimitives.ReadSingleLittleEndian(block));
            for (int g = 0; g < 16; g++)
            {
                int sum = 0;
                for (int j = 16 * g; j < 16 * g + 16; j++)
                {
                    int q = (sbyte)block[4 + j];
                    Assert.Equal(Math.Min(127, (int)MathF.Round(iscale * xb[j], MidpointRounding.ToEven)), q);
                    Assert.InRange(q, -127, 127);
                    sum += q;
                }
                Assert.Equal(sum, BinaryPrimitives.ReadInt16LittleEndian(block.Slice(260 + 2 * g)));
            }
            // The element of largest magnitude maps to code −127 exactly.
            Assert.Equal(-127, (sbyte)block[4 + xb.IndexOf(max)]);
            double step = Math.Abs(1.0 / iscale);
            for (int j = 0; j < 256; j++)
            {
                Assert.InRange(y[256 * b + j] - (double)xb[j], -0.5001 * step, 0.5001 * step);
            }
        }
    }

    [Fact]
    public void Q8_K_ZeroBlock_IsAllZeroBytes()
    {
        byte[] row = new byte[2 * 292];
        row.AsSpan().Fill(0xCD);
        float[] x = new float[512];
        x[300] = 1f; // second block non-zero
        Quantize.Q8_K(x, row);
        Assert.All(row.AsSpan(0, 292).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal(1f / -127f, BinaryPrimitives.ReadSingleLittleEndian(row.AsSpan(292))); // d = 1 / (−127 / max)
    }

    [Fact]
    public void Q8_K_RejectsWrongLengths()
    {
        Assert.Throws<ArgumentException>("src", () => Quantize.Q8_K(new float[255], new byte[292]));
        Assert.Throws<ArgumentException>("dst", () => Quantize.Q8_K(new float[256], new byte[291]));
        Assert.Throws<ArgumentException>("src", () => Dequantize.Q8_K(new byte[291], new float[256]));
    }
}
