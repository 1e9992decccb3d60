// MatMul with quantized weights: every supported type against a double-precision product of the dequantized weights,
// over row ranges that do not start at 0, token counts that exercise every tile shape and its tails, and output strides
// wider than the matrix; plus the argument checks and the bit-exactness of the fast activation quantizers.
// CI reruns this file with AVX-512, AVX2 and then all hardware intrinsics switched off, so each dispatch path is covered
// (in .NET 10 only DOTNET_EnableAVX512=0 switches AVX-512 off; DOTNET_EnableAVX512F=0 is ignored).

using System.Runtime.InteropServices;
using Sirocco.Kernels.Memory;
using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Reference;
using Sirocco.Kernels.Simd;

namespace Sirocco.Kernels.Tests.Simd;

public class MatMulTests
{
    // Against the dequantized activations (the reference quantizer's codes and scales): the kernels sum exact integer
    // block products and round once per block and lane in float, as the dot products do (QuantDotTests:
    // 1e-5 of Σ|w·a|); the Q4_0/Q8_0 offset trick adds one rounding of da·Σq·qa − offset·da·Σqa per block, whose two
    // terms are at most (15 or 255)/(mean |w code|) ≈ 4 times Σ|w·a| on these data, so the same 1e-5 still holds.
    private const double DequantizedTolerance = 1e-5;

    public static readonly GgmlType[] QuantizedTypes = [GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];

    public static TheoryData<GgmlType, int> Cases()
    {
        var data = new TheoryData<GgmlType, int>();
        foreach (var type in QuantizedTypes)
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
    public void Multiply_MatchesDoubleProductOfDequantizedRows(GgmlType type, int tokens) =>
        // 15 rows: the range [3, 14) leaves 11 rows = two 4-row tiles + 3 single rows, or five 2-row tiles + 1.
        CheckAgainstDoubleProduct(type, tokens, rows: 15, rowStart: 3, rowEnd: 14, columns: 768);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Multiply_WideTilesMatchDoubleProduct(GgmlType type, int tokens) =>
        // 36 rows in range = two 16-row tiles (AVX-512) + 4 rows for the narrower tiles; Q8_0/Q4_0 rows of 37 blocks
        // (an odd count), K-quant rows of 5 super-blocks.
        CheckAgainstDoubleProduct(type, tokens, rows: 40, rowStart: 3, rowEnd: 39,
            columns: type is GgmlType.Q8_0 or GgmlType.Q4_0 ? 37 * 32 : 5 * 256);

    private static void CheckAgainstDoubleProduct(GgmlType type, int tokens, int rows, int rowStart, int rowEnd, int columns)
    {
        var rng = new TestRandom((ulong)(100 * (int)type + tokens + rows));
        using var m = new QuantizedMatrix(type, rows, columns, rng);
        float[][] x = Enumerable.Range(0, tokens).Select(_ => rng.Gaussian(columns, 2)).ToArray();
        int actBytes = MatMul.ActivationRowBytes(type, columns);
        byte[] act = new byte[actBytes * tokens];
        for (int t = 0; t < tokens; t++)
        {
            MatMul.QuantizeActivation(type, x[t], act.AsSpan(t * actBytes, actBytes));
        }
        int stride = rows + 7;
        float[] output = new float[(tokens - 1) * stride + rows];
        output.AsSpan().Fill(float.NaN);
        MatMul.Multiply(m.View, rowStart, rowEnd, act, tokens, output, stride);

        for (int t = 0; t < tokens; t++)
        {
            // The activation as the reference quantizer stores it, then dequantized: what the integer kernels multiply.
            var aType = MatMul.ActivationType(type);
            byte[] reference = new byte[GgmlTypes.Get(aType).RowBytes(columns)];
            Quantize.Row(aType, x[t], reference);
            float[] xq = new float[columns];
            Dequantize.Row(aType, reference, xq);
            float[] stepBound = ActivationErrorBound(aType, x[t]);
            for (int r = 0; r < rows; r++)
            {
                float actual = output[t * stride + r];
                if (r < rowStart || r >= rowEnd)
                {
                    Assert.True(float.IsNaN(actual), $"row {r} outside the range was written");
                    continue;
                }
                double dot = 0, magnitude = 0, exact = 0, activationError = 0;
                for (int c = 0; c < columns; c++)
                {
                    double wv = m.Dequantized[r * columns + c];
                    dot += wv * xq[c];
                    magnitude += Math.Abs(wv * xq[c]);
                    exact += wv * x[t][c];
                    activationError += Math.Abs(wv) * stepBound[c];
                }
                double tolerance = DequantizedTolerance * magnitude;
                Assert.InRange(actual, dot - tolerance, dot + tolerance);
                // Against the true float activations: off by at most Σ|w|·(the activation quantizer's element bound).
                Assert.InRange(actual, exact - activationError - tolerance, exact + activationError + tolerance);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Multiply_RowRangesOnThreads_EqualOneCall(GgmlType type)
    {
        const int rows = 64, columns = 512, tokens = 6;
        var rng = new TestRandom((ulong)type);
        using var m = new QuantizedMatrix(type, rows, columns, rng);
        int actBytes = MatMul.ActivationRowBytes(type, columns);
        byte[] act = new byte[actBytes * tokens];
        for (int t = 0; t < tokens; t++)
        {
            MatMul.QuantizeActivation(type, rng.Gaussian(columns, 1), act.AsSpan(t * actBytes, actBytes));
        }
        float[] whole = new float[rows * tokens], split = new float[rows * tokens];
        MatMul.Multiply(m.View, 0, rows, act, tokens, whole, rows);
        var view = m.View;
        Parallel.For(0, 8, i => MatMul.Multiply(view, 8 * i, 8 * i + 8, act, tokens, split, rows));
        Assert.Equal(whole, split);
        // 16-row ranges (one AVX-512 tile each) on threads, for 6 tokens and for 1.
        Array.Fill(split, float.NaN);
        Parallel.For(0, 4, i => MatMul.Multiply(view, 16 * i, 16 * i + 16, act, tokens, split, rows));
        Assert.Equal(whole, split);
        float[] single = new float[rows];
        MatMul.Multiply(view, 0, rows, act, 1, single, rows);
        Array.Fill(split, float.NaN, 0, rows);
        Parallel.For(0, 4, i => MatMul.Multiply(view, 16 * i, 16 * i + 16, act, 1, split, rows));
        Assert.Equal(single, split.AsSpan(0, rows).ToArray());
    }

    [Theory]
    [InlineData(GgmlType.Q4_0, new[] { 2, 3, 4, 5, 8 })]
    [InlineData(GgmlType.Q4_K, new[] { 2 })]
    [InlineData(GgmlType.Q6_K, new[] { 2 })]
    public void Multiply_SmallBatch_GivesEachTokenItsResultAlone(GgmlType type, int[] tokenCounts)
    {
        // Batched decode (the scheduler's steps) does not change a sequence's logits for these types and batch sizes:
        // each token of the product equals the product over that token alone, bit for bit, on every instruction set.
        // (Larger batches and other types use multi-token tiles that accumulate in another order and agree within the
        // bounds the tests above check.)
        const int rows = 48, columns = 768;
        var rng = new TestRandom(7 + (ulong)type);
        using var m = new QuantizedMatrix(type, rows, columns, rng);
        int actBytes = MatMul.ActivationRowBytes(type, columns);
        foreach (int tokens in tokenCounts)
        {
            byte[] act = new byte[actBytes * tokens];
            for (int t = 0; t < tokens; t++)
            {
                MatMul.QuantizeActivation(type, rng.Gaussian(columns, 1), act.AsSpan(t * actBytes, actBytes));
            }
            float[] batch = new float[rows * tokens];
            MatMul.Multiply(m.View, 0, rows, act, tokens, batch, rows);
            for (int t = 0; t < tokens; t++)
            {
                float[] alone = new float[rows];
                MatMul.Multiply(m.View, 0, rows, act.AsSpan(t * actBytes, actBytes), 1, alone, rows);
                Assert.Equal(alone, batch.AsSpan(t * rows, rows).ToArray());
            }
        }
    }

    public static TheoryData<GgmlType> Types() => new(QuantizedTypes);

    [Theory]
    [MemberData(nameof(Types))]
    public void Multiply_RejectsBadRangesAndSizes(GgmlType type)
    {
        const int rows = 4, columns = 256;
        using var m = new QuantizedMatrix(type, rows, columns, new TestRandom(1));
        var view = m.View;
        int actBytes = MatMul.ActivationRowBytes(type, columns);
        byte[] act = new byte[2 * actBytes];
        float[] output = new float[2 * rows];
        Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.Multiply(view, -1, 2, act, 1, output, rows));
        Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.Multiply(view, 0, rows + 1, act, 1, output, rows));
        Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.Multiply(view, 3, 2, act, 1, output, rows));
        Assert.Throws<ArgumentException>(() => MatMul.Multiply(view, 0, rows, act, 3, output, rows));
        Assert.Throws<ArgumentException>(() => MatMul.Multiply(view, 0, rows, act, -1, output, rows));
        Assert.Throws<ArgumentException>(() => MatMul.Multiply(view, 0, rows, act, 2, output, rows + 1));
        Assert.Throws<ArgumentException>(() => MatMul.Multiply(view, 0, rows, act, 1, output, rows - 1));
        Assert.Throws<ArgumentException>(() => MatMul.Multiply(view, 0, rows, act.AsSpan(0, actBytes - 1), 1, output, rows));
        Assert.Throws<ArgumentException>(() => MatMul.QuantizeActivation(type, new float[columns], new byte[actBytes + 1]));
        Assert.Throws<ArgumentException>(() => MatMul.QuantizeActivation(type, new float[columns + 1], new byte[actBytes]));
        // Empty ranges and zero tokens do nothing.
        MatMul.Multiply(view, 2, 2, act, 1, output, rows);
        MatMul.Multiply(view, 0, rows, act, 0, [], rows);
    }

    [Theory]
    [InlineData(1, 1.0)]
    [InlineData(16, 3.0)]
    [InlineData(125, 1e-3)]
    public void FastQ8_K_EqualsReferenceBytes(int blocks, double sigma)
    {
        float[] x = new TestRandom((ulong)blocks).Gaussian(256 * blocks, sigma);
        // Ties: a block whose largest magnitude is 127 has iscale = −1, so x.5 values round half to even.
        for (int j = 0; j < 256; j++)
        {
            x[j] = j == 5 ? 127f : (j % 40) - 19.5f;
        }
        if (blocks > 1)
        {
            x.AsSpan(256, 256).Clear(); // an all-zero block
        }
        byte[] expected = new byte[292 * blocks], actual = new byte[292 * blocks];
        actual.AsSpan().Fill(0xCD);
        Quantize.Q8_K(x, expected);
        ActivationQuantizer.Q8_K(x, actual);
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData(1, 1.0)]
    [InlineData(128, 3.0)]
    [InlineData(1000, 1e-3)]
    public void FastQ8_0Planar_EqualsReferenceCodesAndScales(int blocks, double sigma)
    {
        float[] x = new TestRandom((ulong)blocks + 7).Gaussian(32 * blocks, sigma);
        // Ties: absmax 127 gives d = 1 exactly, so x.5 values must round away from zero, as the reference does.
        for (int j = 0; j < 32; j++)
        {
            x[j] = j == 3 ? -127f : (j % 9) - 4.5f;
        }
        if (blocks > 1)
        {
            x.AsSpan(32, 32).Clear();
        }
        byte[] expected = new byte[34 * blocks];
        Quantize.Q8_0(x, expected);
        sbyte[] codes = new sbyte[32 * blocks];
        float[] scales = new float[blocks], sums = new float[blocks];
        ActivationQuantizer.Q8_0Planar(x, codes, scales, sums);
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<sbyte> reference = MemoryMarshal.Cast<byte, sbyte>(expected.AsSpan(34 * b + 2, 32));
            Assert.True(reference.SequenceEqual(codes.AsSpan(32 * b, 32)), $"block {b} codes differ");
            Assert.Equal(HalfBits.ToSingle(BitConverter.ToUInt16(expected, 34 * b)), scales[b]);
            int sum = 0;
            foreach (sbyte q in reference)
            {
                sum += q;
            }
            Assert.Equal(scales[b] * sum, sums[b]);
        }
    }

    /// <summary>Per element, a bound on |x − dequantized activation| for the activation quantizer's rule: half a step
    /// (Q8_0: d = absmax/127, plus 127 f16 roundings of d, ≤ 2⁻¹¹·d each; Q8_K: d = absmax/127 in f32, 0.1% margin).</summary>
    private static float[] ActivationErrorBound(GgmlType activationType, float[] x)
    {
        int block = GgmlTypes.Get(activationType).BlockSize;
        float[] bound = new float[x.Length];
        for (int b = 0; b < x.Length / block; b++)
        {
            double amax = 0;
            for (int j = b * block; j < (b + 1) * block; j++)
            {
                amax = Math.Max(amax, Math.Abs(x[j]));
            }
            double d = amax / 127;
            double e = activationType == GgmlType.Q8_0 ? d / 2 + 127 * d * Math.Pow(2, -11) : d / 2 * 1.001;
            bound.AsSpan(b * block, block).Fill((float)e);
        }
        return bound;
    }

    /// <summary>A random quantized weight matrix in native memory, with its dequantized values.</summary>
    private sealed class QuantizedMatrix : IDisposable
    {
        private readonly NativeBuffer<byte> _buffer;

        public QuantizedMatrix(GgmlType type, int rows, int columns, TestRandom rng)
        {
            int rowBytes = (int)GgmlTypes.Get(type).RowBytes(columns);
            _buffer = new NativeBuffer<byte>((long)rows * rowBytes);
            Dequantized = new float[rows * columns];
            for (int r = 0; r < rows; r++)
            {
                Span<byte> row = _buffer.Slice((long)r * rowBytes, rowBytes);
                Quantize.Row(type, rng.Gaussian(columns, 0.05), row);
                Dequantize.Row(type, row, Dequantized.AsSpan(r * columns, columns));
            }
            View = new WeightMatrix(type, _buffer.Address, rows, columns);
        }

        public WeightMatrix View { get; }

        public float[] Dequantized { get; }

        public void Dispose() => _buffer.Dispose();
    }
}
