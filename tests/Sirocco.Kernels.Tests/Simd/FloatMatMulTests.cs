// MatMul.Multiply with F32, F16 and BF16 weights (Simd/MatMul.Float.cs) against the double dot products of the
// dequantized rows: awkward column counts, a row range not starting at 0 that crosses the prefill tile's rows, token
// counts that leave every remainder of the 3-token kernel, and an output stride wider than the rows. CI reruns this
// file with AVX2 and then all hardware intrinsics off, so the portable path is covered too.

using Sirocco.Kernels.Memory;
using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Reference;
using Sirocco.Kernels.Simd;

namespace Sirocco.Kernels.Tests.Simd;

public class FloatMatMulTests
{
    private const double U = 1.0 / (1 << 24);

    // Each output sums float multiply-adds in 8 lanes of ≤ columns/8 terms each (decode), or per 256-column chunk
    // ≤ 32 terms per lane, then a horizontal sum (3 adds) and one add per chunk into the output: at most
    // (columns/8 + columns/256 + 8)·U of Σ|w·x| in the worst case; the portable path (Ops.Dot per chunk) is inside
    // the same bound. The weights are exactly the dequantized values, so no other error enters.
    private static double Tolerance(int columns) => (columns / 8.0 + columns / 256.0 + 16) * U;

    private const int Rows = 70, RowStart = 5, RowEnd = 68, Padding = 3;

    public static TheoryData<GgmlType, int, int> Cases()
    {
        var data = new TheoryData<GgmlType, int, int>();
        foreach (var type in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16 })
        {
            foreach (int columns in new[] { 1, 3, 7, 8, 31, 32, 33, 255, 256, 257, 4096 + 7 })
            {
                foreach (int tokens in new[] { 1, 2, 3, 5, 17 })
                {
                    data.Add(type, columns, tokens);
                }
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Multiply_MatchesDoubleReference(GgmlType type, int columns, int tokenCount)
    {
        var rng = new TestRandom((ulong)(columns * 100 + tokenCount * 10 + (int)type));
        int rowBytes = (int)GgmlTypes.Get(type).RowBytes(columns);
        using var buffer = new NativeBuffer<byte>((long)Rows * rowBytes);
        float[][] weights = new float[Rows][];
        for (int r = 0; r < Rows; r++)
        {
            Span<byte> row = buffer.Slice((long)r * rowBytes, rowBytes);
            Quantize.Row(type, rng.Gaussian(columns, 0.05), row);
            weights[r] = new float[columns];
            Dequantize.Row(type, row, weights[r]); // the exact values the kernel multiplies
        }
        var matrix = new WeightMatrix(type, buffer.Address, Rows, columns);

        int actBytes = MatMul.ActivationRowBytes(type, columns);
        byte[] activations = new byte[actBytes * tokenCount];
        float[][] x = new float[tokenCount][];
        for (int t = 0; t < tokenCount; t++)
        {
            x[t] = rng.Gaussian(columns, 1);
            MatMul.QuantizeActivation(type, x[t], activations.AsSpan(t * actBytes, actBytes));
        }

        int stride = RowEnd + Padding;
        float[] output = new float[tokenCount * stride];
        output.AsSpan().Fill(float.NaN);
        MatMul.Multiply(matrix, RowStart, RowEnd, activations, tokenCount, output, stride);

        for (int t = 0; t < tokenCount; t++)
        {
            for (int r = 0; r < stride; r++)
            {
                float actual = output[t * stride + r];
                if (r < RowStart || r >= RowEnd)
                {
                    Assert.True(float.IsNaN(actual), $"t={t} r={r} outside the row range was written");
                    continue;
                }
                double sum = 0, scale = 0;
                for (int c = 0; c < columns; c++)
                {
                    double product = (double)weights[r][c] * x[t][c];
                    sum += product;
                    scale += Math.Abs(product);
                }
                OpsTests.AssertClose(sum, actual, Tolerance(columns) * scale, $"{type} t={t} r={r}");
            }
        }
    }

    [Theory]
    [InlineData(GgmlType.F16, 1)]
    [InlineData(GgmlType.F16, 7)]
    [InlineData(GgmlType.BF16, 7)]
    [InlineData(GgmlType.F32, 7)]
    public void Multiply_AllocatesNothing(GgmlType type, int tokenCount)
    {
        const int rows = 64, columns = 1000;
        int rowBytes = (int)GgmlTypes.Get(type).RowBytes(columns);
        using var buffer = new NativeBuffer<byte>((long)rows * rowBytes);
        buffer.Span.Clear();
        var matrix = new WeightMatrix(type, buffer.Address, rows, columns);
        byte[] activations = new byte[MatMul.ActivationRowBytes(type, columns) * tokenCount];
        float[] output = new float[rows * tokenCount];
        MatMul.Multiply(matrix, 0, rows, activations, tokenCount, output, rows); // warm up (tiering, statics)
        long before = GC.GetAllocatedBytesForCurrentThread();
        MatMul.Multiply(matrix, 0, rows, activations, tokenCount, output, rows);
        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
    }
}
