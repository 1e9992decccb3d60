// K-quant decode (one token) on real Mistral widths: MatMul.Multiply against the public one-row dots of QuantDot for
// every row, and row ranges of awkward sizes (1 to 7 rows, starting anywhere) equal to one call
// bit for bit. Exercises MatMul.KQuantDecodeAvx512.cs on AVX-512 machines and the row dots elsewhere; CI reruns it
// with AVX-512, AVX-VNNI, AVX2 and all intrinsics switched off.

using Sirocco.Kernels.Memory;
using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Simd;

namespace Sirocco.Kernels.Tests.Simd;

public class MatMulKQuantDecodeTests
{
    // Both sides sum exact integers per super-block and round in float per lane and super-block, in different lane
    // groupings; for these Gaussian data the roundings stay far below 1e-5 of Σ|w·a| (as in MatMulTests).
    private const double Tolerance = 1e-5;

    public static TheoryData<GgmlType, int> Cases() => new()
    {
        { GgmlType.Q4_K, 4096 }, { GgmlType.Q4_K, 14336 }, { GgmlType.Q5_K, 4096 },
        { GgmlType.Q6_K, 4096 }, { GgmlType.Q6_K, 14336 }, { GgmlType.Q6_K, 256 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decode_MatchesRowDotsAndSplitsExactly(GgmlType type, int columns)
    {
        const int rows = 23;
        var rng = new TestRandom((ulong)(7 * (int)type + columns));
        int rowBytes = (int)GgmlTypes.Get(type).RowBytes(columns);
        using var buffer = new NativeBuffer<byte>((long)rows * rowBytes);
        for (int r = 0; r < rows; r++)
        {
            Quantize.Row(type, rng.Gaussian(columns, 0.05), buffer.Slice((long)r * rowBytes, rowBytes));
        }
        var w = new WeightMatrix(type, buffer.Address, rows, columns);
        float[] x = rng.Gaussian(columns, 2);
        byte[] act = new byte[MatMul.ActivationRowBytes(type, columns)];
        MatMul.QuantizeActivation(type, x, act);

        float[] whole = new float[rows];
        MatMul.Multiply(w, 0, rows, act, 1, whole, rows);
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<byte> row = w.Row(r);
            float expected = type switch
            {
                GgmlType.Q4_K => QuantDot.DotQ4_KQ8_K(row, act, columns),
                GgmlType.Q5_K => QuantDot.DotQ5_KQ8_K(row, act, columns),
                _ => QuantDot.DotQ6_KQ8_K(row, act, columns),
            };
            double magnitude = 0;
            float[] wv = new float[columns], xq = new float[columns];
            Kernels.Reference.Dequantize.Row(type, row, wv);
            Kernels.Reference.Dequantize.Row(GgmlType.Q8_K, act, xq);
            for (int c = 0; c < columns; c++)
            {
                magnitude += Math.Abs((double)wv[c] * xq[c]);
            }
            Assert.InRange(whole[r], expected - Tolerance * magnitude, expected + Tolerance * magnitude);
        }

        // Ranges of 1, 2, 3, 5, 7 and 5 rows from odd starts: whatever tiling a path uses falls on different rows than in
        // the whole call, and each row's arithmetic must not depend on that.
        int[] bounds = [0, 1, 3, 6, 11, 18, rows];
        float[] split = new float[rows];
        Array.Fill(split, float.NaN);
        for (int i = 0; i + 1 < bounds.Length; i++)
        {
            MatMul.Multiply(w, bounds[i], bounds[i + 1], act, 1, split, rows);
        }
        Assert.Equal(whole, split);
    }
}
