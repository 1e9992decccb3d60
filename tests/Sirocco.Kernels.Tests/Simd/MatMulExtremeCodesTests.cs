// MatMul with weight rows of arbitrary bytes (every code value and every packed sub-block scale, rows of all-maximal
// codes) against activations whose codes are all ±127: the worst case for the int16 sums of the AVX-512 16-row tiles
// and the AVX2 tiles. Checked against the reference dot products (Reference/QuantDot.cs) of each row, over a row range
// that is not a multiple of 16 and ends at the matrix end (so the leftover tile is shifted back), for every token count
// shape. CI reruns it with AVX-512, AVX-VNNI, AVX2 and all intrinsics switched off.

using Sirocco.Kernels.Memory;
using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Simd;

namespace Sirocco.Kernels.Tests.Simd;

public class MatMulExtremeCodesTests
{
    // The kernels sum exact integers and round per block (or super-block) and lane in float; an int32 lane sum beyond
    // 2²⁴ (possible here: all-maximal codes and scales) adds one rounding of 2⁻²⁴. 1e-5 of Σ|w·a| covers both, as in
    // MatMulTests.
    private const double Tolerance = 1e-5;

    public static TheoryData<GgmlType, int> Cases()
    {
        var data = new TheoryData<GgmlType, int>();
        foreach (var type in MatMulTests.QuantizedTypes)
        {
            foreach (int tokens in new[] { 1, 2, 3, 4, 5, 8, 17 })
            {
                data.Add(type, tokens);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Multiply_ArbitraryBytesMatchReferenceDots(GgmlType type, int tokens)
    {
        const int rows = 37, rowStart = 5, rowEnd = 37;
        int columns = type is GgmlType.Q8_0 or GgmlType.Q4_0 ? 24 * 32 : 3 * 256;
        var info = GgmlTypes.Get(type);
        int rowBytes = (int)info.RowBytes(columns);
        var rng = new TestRandom((ulong)(1000 + 10 * (int)type + tokens));
        using var buffer = new NativeBuffer<byte>((long)rows * rowBytes);
        for (int r = 0; r < rows; r++)
        {
            Span<byte> row = buffer.Slice((long)r * rowBytes, rowBytes);
            for (int i = 0; i < rowBytes; i++)
            {
                // Every third row all 0xFF: the largest code (and, for Q6_K, scale −1) everywhere.
                row[i] = r % 3 == 0 ? (byte)0xFF : (byte)rng.NextUInt64();
            }
            SetScales(type, row, rng);
        }
        var w = new WeightMatrix(type, buffer.Address, rows, columns);

        var aType = MatMul.ActivationType(type);
        int actBytes = MatMul.ActivationRowBytes(type, columns);
        byte[] act = new byte[actBytes * tokens];
        float[][] x = new float[tokens][];
        for (int t = 0; t < tokens; t++)
        {
            // Constant magnitude, so every code is ±127; token 0 all positive, others with random signs.
            x[t] = Enumerable.Range(0, columns).Select(_ => t == 0 || rng.NextDouble() < 0.5 ? 3f : -3f).ToArray();
            MatMul.QuantizeActivation(type, x[t], act.AsSpan(t * actBytes, actBytes));
        }
        int stride = rows + 3;
        float[] output = new float[(tokens - 1) * stride + rows];
        output.AsSpan().Fill(float.NaN);
        MatMul.Multiply(w, rowStart, rowEnd, act, tokens, output, stride);

        for (int t = 0; t < tokens; t++)
        {
            byte[] reference = new byte[GgmlTypes.Get(aType).RowBytes(columns)];
            Quantize.Row(aType, x[t], reference);
            float[] xq = new float[columns], wq = new float[columns];
            Kernels.Reference.Dequantize.Row(aType, reference, xq);
            for (int r = 0; r < rows; r++)
            {
                float actual = output[t * stride + r];
                if (r < rowStart)
                {
                    Assert.True(float.IsNaN(actual), $"row {r} outside the range was written");
                    continue;
                }
                ReadOnlySpan<byte> row = buffer.Slice((long)r * rowBytes, rowBytes);
                float expected = ReferenceDot(type, row, reference, columns);
                Kernels.Reference.Dequantize.Row(type, row, wq);
                double magnitude = 0;
                for (int c = 0; c < columns; c++)
                {
                    magnitude += Math.Abs((double)wq[c] * xq[c]);
                }
                double tolerance = Tolerance * magnitude;
                Assert.True(Math.Abs(actual - expected) <= tolerance, $"{type} token {t} row {r}: {actual} vs {expected} (±{tolerance})");
            }
        }
    }

    /// <summary>Finite f16 super-scales (and block scales) in place of the random bytes, so results stay finite.</summary>
    private static void SetScales(GgmlType type, Span<byte> row, TestRandom rng)
    {
        ushort Half(double v) => BitConverter.HalfToUInt16Bits((Half)v);
        void Put(Span<byte> at, double v) => BitConverter.TryWriteBytes(at, Half(v));
        int blockBytes = (int)GgmlTypes.Get(type).RowBytes(GgmlTypes.Get(type).BlockSize);
        for (int b = 0; b < row.Length / blockBytes; b++)
        {
            Span<byte> block = row.Slice(b * blockBytes, blockBytes);
            double d = 1e-3 * (1 + rng.NextDouble());
            switch (type)
            {
                case GgmlType.Q4_K or GgmlType.Q5_K:
                    Put(block, d);
                    Put(block[2..], d / 2);
                    break;
                case GgmlType.Q6_K:
                    Put(block[208..], d);
                    break;
                default:
                    Put(block, d);
                    break;
            }
        }
    }

    private static float ReferenceDot(GgmlType type, ReadOnlySpan<byte> row, ReadOnlySpan<byte> activation, int columns) => type switch
    {
        GgmlType.Q8_0 => Kernels.Reference.QuantDot.DotQ8_0Q8_0(row, activation, columns),
        GgmlType.Q4_0 => Kernels.Reference.QuantDot.DotQ4_0Q8_0(row, activation, columns),
        GgmlType.Q4_K => Kernels.Reference.QuantDot.DotQ4_KQ8_K(row, activation, columns),
        GgmlType.Q5_K => Kernels.Reference.QuantDot.DotQ5_KQ8_K(row, activation, columns),
        _ => Kernels.Reference.QuantDot.DotQ6_KQ8_K(row, activation, columns),
    };
}
