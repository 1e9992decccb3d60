// Quantized dot products: the reference equals the double dot product of the dequantized rows, and the SIMD kernels
// equal the reference, over small block counts, Mistral row lengths, extreme codes and rows offset by one byte.
// CI reruns this file with AVX2 and then all hardware intrinsics switched off, so each dispatch path is covered.

using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Reference;
using Fast = Sirocco.Kernels.Simd.QuantDot;
using Ref = Sirocco.Kernels.Reference.QuantDot;

namespace Sirocco.Kernels.Tests.Simd;

public class QuantDotTests
{
    // Reference vs dequantized: the reference sums exact block products in double; the dequantized values carry one
    // float rounding each (weights of Q4_K/Q6_K, activations of Q8_K), ≤ 2⁻²⁴ relative, plus the returned float's
    // rounding. 1e-6 of Σ|w·a| is 16·2⁻²⁴: margin for those three roundings.
    private const double ReferenceTolerance = 1e-6;

    // Fast vs reference: same exact integer block sums, but each lane accumulates one float multiply-add per block
    // (≤ 2⁻²⁴ relative each), then a horizontal sum: worst case about (blocks + 3)·2⁻²⁴ ≈ 6e-5 of Σ|w·a| at 1000
    // blocks. Rounding errors of random sign grow like √blocks, so 1e-5 still has a wide margin in practice. The
    // K-quants add one rounding of d·da per super-block and (Q4_K/Q5_K) a separately accumulated min term, of the same
    // size as the main term on these data, so the same bound holds with their (at most 125) super-blocks.
    private const double FastTolerance = 1e-5;

    /// <summary>Block counts (of 32 elements): 0..10 (0..320 elements), then 4096, 14336 and 32000 elements.</summary>
    public static TheoryData<int> BlockCounts => new([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 128, 448, 1000]);

    public enum Data { Gaussian, RandomCodes, Extremes }

    public static TheoryData<int, Data> Cases()
    {
        var data = new TheoryData<int, Data>();
        foreach (int blocks in BlockCounts)
        {
            foreach (var kind in Enum.GetValues<Data>())
            {
                data.Add(blocks, kind);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Q8_0Q8_0_FastEqualsReference_ReferenceEqualsDequantizedDot(int blocks, Data kind)
    {
        var rng = new TestRandom((ulong)(1000 * blocks + (int)kind));
        int n = 32 * blocks;
        byte[] w = Weights(GgmlType.Q8_0, n, kind, rng);
        byte[] a = Activation(GgmlType.Q8_0, n, kind, rng);
        Check(GgmlType.Q8_0, w, GgmlType.Q8_0, a, n, Ref.DotQ8_0Q8_0, Fast.DotQ8_0Q8_0);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Q4_0Q8_0_FastEqualsReference_ReferenceEqualsDequantizedDot(int blocks, Data kind)
    {
        var rng = new TestRandom((ulong)(2000 * blocks + (int)kind));
        int n = 32 * blocks;
        byte[] w = Weights(GgmlType.Q4_0, n, kind, rng);
        byte[] a = Activation(GgmlType.Q8_0, n, kind, rng);
        Check(GgmlType.Q4_0, w, GgmlType.Q8_0, a, n, Ref.DotQ4_0Q8_0, Fast.DotQ4_0Q8_0);
    }

    /// <summary>Super-block counts (of 256): small ones, then 4096, 14336 and 32000 elements.</summary>
    public static TheoryData<int, Data> KCases()
    {
        var data = new TheoryData<int, Data>();
        foreach (int blocks in new[] { 0, 1, 2, 3, 7, 16, 56, 125 })
        {
            foreach (var kind in Enum.GetValues<Data>())
            {
                data.Add(blocks, kind);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(KCases))]
    public void Q4_KQ8_K_FastEqualsReference_ReferenceEqualsDequantizedDot(int blocks, Data kind)
    {
        var rng = new TestRandom((ulong)(3000 * blocks + (int)kind));
        int n = 256 * blocks;
        Check(GgmlType.Q4_K, Weights(GgmlType.Q4_K, n, kind, rng), GgmlType.Q8_K,
            Activation(GgmlType.Q8_K, n, kind, rng), n, Ref.DotQ4_KQ8_K, Fast.DotQ4_KQ8_K);
    }

    [Theory]
    [MemberData(nameof(KCases))]
    public void Q5_KQ8_K_FastEqualsReference_ReferenceEqualsDequantizedDot(int blocks, Data kind)
    {
        var rng = new TestRandom((ulong)(5000 * blocks + (int)kind));
        int n = 256 * blocks;
        Check(GgmlType.Q5_K, Weights(GgmlType.Q5_K, n, kind, rng), GgmlType.Q8_K,
            Activation(GgmlType.Q8_K, n, kind, rng), n, Ref.DotQ5_KQ8_K, Fast.DotQ5_KQ8_K);
    }

    [Theory]
    [MemberData(nameof(KCases))]
    public void Q6_KQ8_K_FastEqualsReference_ReferenceEqualsDequantizedDot(int blocks, Data kind)
    {
        var rng = new TestRandom((ulong)(4000 * blocks + (int)kind));
        int n = 256 * blocks;
        Check(GgmlType.Q6_K, Weights(GgmlType.Q6_K, n, kind, rng), GgmlType.Q8_K,
            Activation(GgmlType.Q8_K, n, kind, rng), n, Ref.DotQ6_KQ8_K, Fast.DotQ6_KQ8_K);
    }

    [Fact]
    public void Q4_0_AllMinusEightAgainstPlus127_IsExact()
    {
        // Every weight code 0 (value −8), scale 1; every activation +127, scale 1: Σ = −8·127 per element.
        const int n = 32 * 448;
        byte[] w = new byte[GgmlTypes.Get(GgmlType.Q4_0).RowBytes(n)];
        byte[] a = new byte[GgmlTypes.Get(GgmlType.Q8_0).RowBytes(n)];
        for (int b = 0; b < n / 32; b++)
        {
            BitConverter.TryWriteBytes(w.AsSpan(18 * b), HalfBits.FromSingle(1f));
            BitConverter.TryWriteBytes(a.AsSpan(34 * b), HalfBits.FromSingle(1f));
            a.AsSpan(34 * b + 2, 32).Fill(127);
        }
        Assert.Equal(-8f * 127 * n, Ref.DotQ4_0Q8_0(w, a, n));
        Assert.Equal(-8f * 127 * n, Fast.DotQ4_0Q8_0(w, a, n));
    }

    public delegate float DotFunc(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int elementCount);

    public static TheoryData<string> DotNames => new(["Ref.Q8_0", "Ref.Q4_0", "Ref.Q4_K", "Ref.Q5_K", "Ref.Q6_K",
        "Fast.Q8_0", "Fast.Q4_0", "Fast.Q4_K", "Fast.Q5_K", "Fast.Q6_K"]);

    [Theory]
    [MemberData(nameof(DotNames))]
    public void RejectsWrongLengths(string name)
    {
        var (dot, weightType, activationType) = Lookup(name);
        int n = 2 * GgmlTypes.Get(activationType).BlockSize;
        int wBytes = (int)GgmlTypes.Get(weightType).RowBytes(n), aBytes = (int)GgmlTypes.Get(activationType).RowBytes(n);
        Assert.Equal(0f, dot(new byte[wBytes], new byte[aBytes], n));
        Assert.Equal(0f, dot([], [], 0));
        Assert.Throws<ArgumentException>("weightRow", () => dot(new byte[wBytes - 1], new byte[aBytes], n));
        Assert.Throws<ArgumentException>("activationRow", () => dot(new byte[wBytes], new byte[aBytes + 1], n));
        Assert.Throws<ArgumentException>("elementCount", () => dot(new byte[wBytes], new byte[aBytes], n + 1));
    }

    private static (DotFunc Dot, GgmlType Weight, GgmlType Activation) Lookup(string name) => name switch
    {
        "Ref.Q8_0" => (Ref.DotQ8_0Q8_0, GgmlType.Q8_0, GgmlType.Q8_0),
        "Ref.Q4_0" => (Ref.DotQ4_0Q8_0, GgmlType.Q4_0, GgmlType.Q8_0),
        "Ref.Q4_K" => (Ref.DotQ4_KQ8_K, GgmlType.Q4_K, GgmlType.Q8_K),
        "Ref.Q5_K" => (Ref.DotQ5_KQ8_K, GgmlType.Q5_K, GgmlType.Q8_K),
        "Ref.Q6_K" => (Ref.DotQ6_KQ8_K, GgmlType.Q6_K, GgmlType.Q8_K),
        "Fast.Q8_0" => (Fast.DotQ8_0Q8_0, GgmlType.Q8_0, GgmlType.Q8_0),
        "Fast.Q4_0" => (Fast.DotQ4_0Q8_0, GgmlType.Q4_0, GgmlType.Q8_0),
        "Fast.Q4_K" => (Fast.DotQ4_KQ8_K, GgmlType.Q4_K, GgmlType.Q8_K),
        "Fast.Q5_K" => (Fast.DotQ5_KQ8_K, GgmlType.Q5_K, GgmlType.Q8_K),
        "Fast.Q6_K" => (Fast.DotQ6_KQ8_K, GgmlType.Q6_K, GgmlType.Q8_K),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    private static void Check(GgmlType wType, byte[] w, GgmlType aType, byte[] a, int n, DotFunc reference, DotFunc fast)
    {
        double bound = CheckReference(wType, w, aType, a, n, reference);
        float expected = reference(w, a, n);
        Assert.InRange(fast(w, a, n), expected - FastTolerance * bound, expected + FastTolerance * bound);

        // The same rows one byte into their buffers (unaligned loads, no reliance on array alignment).
        byte[] wShifted = new byte[w.Length + 1], aShifted = new byte[a.Length + 1];
        w.CopyTo(wShifted, 1);
        a.CopyTo(aShifted, 1);
        float shifted = fast(wShifted.AsSpan(1), aShifted.AsSpan(1), n);
        Assert.InRange(shifted, expected - FastTolerance * bound, expected + FastTolerance * bound);
    }

    /// <summary>Asserts reference ≈ Σ dequant(w)·dequant(a) in double; returns Σ|w·a|, the scale of all errors.</summary>
    private static double CheckReference(GgmlType wType, byte[] w, GgmlType aType, byte[] a, int n, DotFunc reference)
    {
        float[] wf = new float[n], af = new float[n];
        Dequantize.Row(wType, w, wf);
        Dequantize.Row(aType, a, af);
        double dot = 0, bound = 0;
        for (int i = 0; i < n; i++)
        {
            dot += (double)wf[i] * af[i];
            bound += Math.Abs((double)wf[i] * af[i]);
        }
        Assert.InRange(reference(w, a, n), dot - ReferenceTolerance * bound, dot + ReferenceTolerance * bound);
        return bound;
    }

    /// <summary>A weight row: quantized Gaussian values, uniformly random code bytes under random scales, or the
    /// extreme codes (all bytes 0x00 or 0x80/0xFF/0x7F patterns) under large scales.</summary>
    private static byte[] Weights(GgmlType type, int n, Data kind, TestRandom rng)
    {
        var info = GgmlTypes.Get(type);
        byte[] row = new byte[info.RowBytes(n)];
        if (kind == Data.Gaussian)
        {
            Quantize.Row(type, rng.Gaussian(n, 0.02), row);
            return row;
        }
        for (int i = 0; i < row.Length; i++)
        {
            row[i] = kind == Data.RandomCodes ? (byte)rng.NextUInt64() : ExtremeByte(type, i, rng);
        }
        // Overwrite each block's f16 scales with finite values (random bytes could be NaN or infinite).
        int blocks = n / info.BlockSize;
        foreach (int offset in ScaleOffsets(type))
        {
            for (int b = 0; b < blocks; b++)
            {
                float scale = kind == Data.RandomCodes ? (float)(0.01 * rng.NextGaussian()) : (b % 2 == 0 ? 60000f : -1e-3f);
                BitConverter.TryWriteBytes(row.AsSpan(b * info.BlockBytes + offset), HalfBits.FromSingle(scale));
            }
        }
        return row;
    }

    private static byte ExtremeByte(GgmlType type, int i, TestRandom rng) => type switch
    {
        GgmlType.Q8_0 => (byte)(rng.NextUInt64() % 2 == 0 ? 0x80 : 0x7F), // −128 or +127
        GgmlType.Q4_0 => (byte)(i % 3 == 0 ? 0xFF : 0x00),                // all −8, some +7
        _ => (byte)(i % 2 == 0 ? 0xFF : 0x00),
    };

    private static int[] ScaleOffsets(GgmlType type) => type switch
    {
        GgmlType.Q8_0 or GgmlType.Q4_0 => [0],
        GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],
        GgmlType.Q6_K => [208],
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>An activation row: quantized Gaussian values (the real use), random codes in −127..127 under random
    /// scales, or codes all ±127.</summary>
    private static byte[] Activation(GgmlType type, int n, Data kind, TestRandom rng)
    {
        var info = GgmlTypes.Get(type);
        byte[] row = new byte[info.RowBytes(n)];
        float[] x = kind switch
        {
            Data.Gaussian => rng.Gaussian(n, 3),
            Data.RandomCodes => rng.Uniform(n, 1),
            _ => Enumerable.Range(0, n).Select(i => (rng.NextUInt64() % 2 == 0 ? 1f : -1f) * (1 + i % 7)).ToArray(),
        };
        Quantize.Row(type, x, row);
        if (kind == Data.Extremes)
        {
            // Push every code to ±127 (keeping its sign); the bsums of Q8_K are recomputed to stay consistent.
            int qsOffset = type == GgmlType.Q8_0 ? 2 : 4, qsCount = info.BlockSize;
            for (int b = 0; b < n / info.BlockSize; b++)
            {
                Span<byte> qs = row.AsSpan(b * info.BlockBytes + qsOffset, qsCount);
                for (int j = 0; j < qs.Length; j++)
                {
                    qs[j] = (byte)(sbyte)((sbyte)qs[j] < 0 ? -127 : 127);
                }
                if (type == GgmlType.Q8_K)
                {
                    for (int g = 0; g < 16; g++)
                    {
                        int sum = 0;
                        for (int j = 16 * g; j < 16 * g + 16; j++)
                        {
                            sum += (sbyte)qs[j];
                        }
                        BitConverter.TryWriteBytes(row.AsSpan(b * info.BlockBytes + 260 + 2 * g), (short)sum);
                    }
                }
            }
        }
        return row;
    }
}
