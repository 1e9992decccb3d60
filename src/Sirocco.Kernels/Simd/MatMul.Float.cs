// Float weights (F32, F16, BF16) against f32 activation rows: the matrix products of unquantized models, called through
// MatMul.Multiply (see MatMul.cs for the protocol). F16 and BF16 weights are widened to f32 on the fly, in registers
// for one token (decode) and into an L1-resident tile reused across tokens for several (prefill). Tests:
// tests/…/Simd/FloatMatMulTests.cs, against a double dot product of the dequantized rows.

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels.Simd;

public static partial class MatMul
{
    /// <summary>Weight rows widened together for prefill: with <see cref="TileColumns"/>, a 32 KiB f32 tile that stays
    /// in L1 while every token's activations stream past it.</summary>
    private const int TileRows = 32;

    /// <summary>Columns per tile (and per chunk on the portable path).</summary>
    private const int TileColumns = 256;

    /// <summary>Tokens per micro-kernel call: 4 rows × 3 tokens are 12 accumulators, which with 3 activation vectors
    /// and 1 weight vector fill AVX2's 16 registers.</summary>
    private const int KernelTokens = 3;

    /// <summary>Rows per micro-kernel call (both the decode and the prefill kernels).</summary>
    private const int KernelRows = 4;

    /// <remarks>Arguments were checked by <see cref="Multiply"/>: rows in range, activations hold
    /// <paramref name="tokenCount"/> rows of <paramref name="actBytes"/> = 4·Columns bytes, output fits.
    /// Each output is the float sum of per-lane float multiply-adds (8 lanes, then per 256-column chunk when tiled);
    /// the error is at most about (Columns/8 + 32)·2⁻²⁴ of Σ|w·x|, as FloatMatMulTests checks.</remarks>
    private static unsafe void MultiplyFloat(in WeightMatrix w, int rowStart, int rowEnd, ReadOnlySpan<byte> act, int actBytes, int tokenCount, Span<float> output, int stride)
    {
        int columns = w.Columns;
        int actStride = actBytes / sizeof(float);
        fixed (byte* activationBytes = act)
        fixed (float* o = output)
        {
            float* x = (float*)activationBytes;
            if (Avx2.IsSupported && Fma.IsSupported)
            {
                switch (w.Type)
                {
                    case GgmlType.F32:
                        MultiplyAvx2<F32Weights>(w, rowStart, rowEnd, x, actStride, tokenCount, o, stride);
                        return;
                    case GgmlType.F16:
                        MultiplyAvx2<F16Weights>(w, rowStart, rowEnd, x, actStride, tokenCount, o, stride);
                        return;
                    case GgmlType.BF16:
                        MultiplyAvx2<BF16Weights>(w, rowStart, rowEnd, x, actStride, tokenCount, o, stride);
                        return;
                }
                throw Unsupported(w.Type);
            }
            // Portable: per row, widen a chunk of columns onto the stack and take each token's dot with Ops.Dot
            // (Vector128 or scalar). The chunk is reused by every token.
            float* chunk = stackalloc float[TileColumns];
            for (int r = rowStart; r < rowEnd; r++)
            {
                byte* row = w.RowPointer(r);
                for (int c0 = 0; c0 < columns; c0 += TileColumns)
                {
                    int count = Math.Min(TileColumns, columns - c0);
                    float* weights = WidenPortable(w.Type, row, c0, count, chunk);
                    var weightSpan = new ReadOnlySpan<float>(weights, count);
                    for (int t = 0; t < tokenCount; t++)
                    {
                        float partial = Ops.Dot(weightSpan, new ReadOnlySpan<float>(x + (long)t * actStride + c0, count));
                        float* destination = o + (long)t * stride + r;
                        *destination = c0 == 0 ? partial : *destination + partial;
                    }
                }
            }
        }
    }

    /// <summary>Columns [c0, c0 + count) of a row as f32: in place for F32, else widened into <paramref name="buffer"/>.</summary>
    private static unsafe float* WidenPortable(GgmlType type, byte* row, int c0, int count, float* buffer)
    {
        switch (type)
        {
            case GgmlType.F32:
                return (float*)row + c0;
            case GgmlType.F16:
                Ops.FromHalf((ushort*)row + c0, buffer, count);
                return buffer;
            case GgmlType.BF16:
                ushort* bits = (ushort*)row + c0;
                for (int i = 0; i < count; i++)
                {
                    buffer[i] = BFloat16Bits.ToSingle(bits[i]);
                }
                return buffer;
            default:
                throw Unsupported(type);
        }
    }

    // ---- AVX2 + FMA.

    private static unsafe void MultiplyAvx2<TWeights>(in WeightMatrix w, int rowStart, int rowEnd, float* x, int actStride, int tokenCount, float* o, int stride)
        where TWeights : struct, IFloatWeights
    {
        int columns = w.Columns;
        if (tokenCount == 1)
        {
            // Decode: the weights stream from memory once, each widened in registers; 4 rows share each load of x.
            // A last group of fewer than 4 rows repeats its last row and keeps only the real sums.
            for (int r = rowStart; r < rowEnd; r += KernelRows)
            {
                int rows = Math.Min(KernelRows, rowEnd - r);
                byte* r0 = w.RowPointer(r);
                byte* r1 = w.RowPointer(r + Math.Min(1, rows - 1));
                byte* r2 = w.RowPointer(r + Math.Min(2, rows - 1));
                byte* r3 = w.RowPointer(r + Math.Min(3, rows - 1));
                Vector128<float> sums = MatVec4Rows<TWeights>(r0, r1, r2, r3, x, columns);
                StoreRows(sums, o + r, rows, accumulate: false);
            }
            return;
        }

        // Prefill: widen a tile of TileRows × TileColumns weights once (F32 is used in place), then run every token
        // against it, 4 rows × 3 tokens per micro-kernel call; partial sums of later column chunks add to the output.
        float* tile = stackalloc float[TileRows * TileColumns];
        long rowFloats = w.RowBytes / sizeof(float); // F32 only: the in-place tile's row stride
        for (int tileRow = rowStart; tileRow < rowEnd; tileRow += TileRows)
        {
            int tileRowCount = Math.Min(TileRows, rowEnd - tileRow);
            for (int c0 = 0; c0 < columns; c0 += TileColumns)
            {
                int count = Math.Min(TileColumns, columns - c0);
                float* weights;
                long weightStride;
                if (typeof(TWeights) == typeof(F32Weights))
                {
                    weights = (float*)w.RowPointer(tileRow) + c0;
                    weightStride = rowFloats;
                }
                else
                {
                    for (int i = 0; i < tileRowCount; i++)
                    {
                        TWeights.Widen(w.RowPointer(tileRow + i), c0, count, tile + i * TileColumns);
                    }
                    weights = tile;
                    weightStride = TileColumns;
                }
                bool accumulate = c0 > 0;
                for (int t = 0; t < tokenCount; t += KernelTokens)
                {
                    // Fewer than 3 tokens left: repeat the last one and keep only the real sums.
                    int tokens = Math.Min(KernelTokens, tokenCount - t);
                    float* x0 = x + (long)t * actStride + c0;
                    float* x1 = x0 + (tokens > 1 ? actStride : 0);
                    float* x2 = x0 + (tokens > 2 ? 2L * actStride : 0);
                    for (int i = 0; i < tileRowCount; i += KernelRows)
                    {
                        int rows = Math.Min(KernelRows, tileRowCount - i);
                        float* w0 = weights + i * weightStride;
                        float* w1 = w0 + Math.Min(1, rows - 1) * weightStride;
                        float* w2 = w0 + Math.Min(2, rows - 1) * weightStride;
                        float* w3 = w0 + Math.Min(3, rows - 1) * weightStride;
                        Kernel4x3(w0, w1, w2, w3, x0, x1, x2, count, out var s0, out var s1, out var s2);
                        float* destination = o + (long)t * stride + tileRow + i;
                        StoreRows(s0, destination, rows, accumulate);
                        if (tokens > 1)
                        {
                            StoreRows(s1, destination + stride, rows, accumulate);
                        }
                        if (tokens > 2)
                        {
                            StoreRows(s2, destination + 2L * stride, rows, accumulate);
                        }
                    }
                }
            }
        }
    }

    /// <summary>Dot products of 4 weight rows with x over <paramref name="columns"/> columns, lane i for row i.</summary>
    /// <remarks>Lane j of accumulator k sums row k's products at columns ≡ j (mod 8); the four rows' chains are
    /// independent, enough to hide FMA latency behind the widening work. Scalar tail for columns mod 8.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe Vector128<float> MatVec4Rows<TWeights>(byte* r0, byte* r1, byte* r2, byte* r3, float* x, int columns)
        where TWeights : struct, IFloatWeights
    {
        Vector256<float> acc0 = Vector256<float>.Zero, acc1 = acc0, acc2 = acc0, acc3 = acc0;
        int c = 0;
        for (; c + 8 <= columns; c += 8)
        {
            Vector256<float> xv = Avx.LoadVector256(x + c);
            acc0 = Fma.MultiplyAdd(TWeights.Load8(r0, c), xv, acc0);
            acc1 = Fma.MultiplyAdd(TWeights.Load8(r1, c), xv, acc1);
            acc2 = Fma.MultiplyAdd(TWeights.Load8(r2, c), xv, acc2);
            acc3 = Fma.MultiplyAdd(TWeights.Load8(r3, c), xv, acc3);
        }
        Vector128<float> sums = SumEach(acc0, acc1, acc2, acc3);
        if (c < columns)
        {
            float t0 = 0, t1 = 0, t2 = 0, t3 = 0;
            for (; c < columns; c++)
            {
                t0 += TWeights.Load1(r0, c) * x[c];
                t1 += TWeights.Load1(r1, c) * x[c];
                t2 += TWeights.Load1(r2, c) * x[c];
                t3 += TWeights.Load1(r3, c) * x[c];
            }
            sums += Vector128.Create(t0, t1, t2, t3);
        }
        return sums;
    }

    /// <summary>The 4 × 3 dot products of f32 weight rows w0…w3 with activation rows x0…x2 over
    /// <paramref name="count"/> columns; <paramref name="s0"/> holds token 0's four row sums, and so on.</summary>
    /// <remarks>Per 8 columns: 3 activation loads, then per row one weight load and 3 FMAs into that (row, token)'s
    /// accumulator: 12 FMAs per 7 loads, all from L1. Scalar tail for count mod 8.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel4x3(float* w0, float* w1, float* w2, float* w3, float* x0, float* x1, float* x2, int count,
        out Vector128<float> s0, out Vector128<float> s1, out Vector128<float> s2)
    {
        Vector256<float> a00 = Vector256<float>.Zero, a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
        Vector256<float> a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00; // a{row}{token}
        int c = 0;
        for (; c + 8 <= count; c += 8)
        {
            Vector256<float> v0 = Avx.LoadVector256(x0 + c), v1 = Avx.LoadVector256(x1 + c), v2 = Avx.LoadVector256(x2 + c);
            Vector256<float> wv = Avx.LoadVector256(w0 + c);
            a00 = Fma.MultiplyAdd(wv, v0, a00);
            a01 = Fma.MultiplyAdd(wv, v1, a01);
            a02 = Fma.MultiplyAdd(wv, v2, a02);
            wv = Avx.LoadVector256(w1 + c);
            a10 = Fma.MultiplyAdd(wv, v0, a10);
            a11 = Fma.MultiplyAdd(wv, v1, a11);
            a12 = Fma.MultiplyAdd(wv, v2, a12);
            wv = Avx.LoadVector256(w2 + c);
            a20 = Fma.MultiplyAdd(wv, v0, a20);
            a21 = Fma.MultiplyAdd(wv, v1, a21);
            a22 = Fma.MultiplyAdd(wv, v2, a22);
            wv = Avx.LoadVector256(w3 + c);
            a30 = Fma.MultiplyAdd(wv, v0, a30);
            a31 = Fma.MultiplyAdd(wv, v1, a31);
            a32 = Fma.MultiplyAdd(wv, v2, a32);
        }
        s0 = SumEach(a00, a10, a20, a30);
        s1 = SumEach(a01, a11, a21, a31);
        s2 = SumEach(a02, a12, a22, a32);
        if (c < count)
        {
            Vector128<float> t0 = Vector128<float>.Zero, t1 = t0, t2 = t0;
            for (; c < count; c++)
            {
                var wc = Vector128.Create(w0[c], w1[c], w2[c], w3[c]);
                t0 += wc * Vector128.Create(x0[c]);
                t1 += wc * Vector128.Create(x1[c]);
                t2 += wc * Vector128.Create(x2[c]);
            }
            s0 += t0;
            s1 += t1;
            s2 += t2;
        }
    }

    /// <summary>(Σ lanes of a, Σ of b, Σ of c, Σ of d).</summary>
    /// <remarks>Each vhaddps adds neighbouring lanes within each 128-bit half: after two rounds lane k of each half holds
    /// the sum of that half of input k; adding the halves finishes it (3 hadds and an add for four sums).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> SumEach(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d)
    {
        Vector256<float> pairs = Avx.HorizontalAdd(Avx.HorizontalAdd(a, b), Avx.HorizontalAdd(c, d));
        return pairs.GetLower() + pairs.GetUpper();
    }

    /// <summary>Writes (or adds to) the first <paramref name="rows"/> lanes of <paramref name="sums"/> at consecutive
    /// outputs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreRows(Vector128<float> sums, float* destination, int rows, bool accumulate)
    {
        if (rows == KernelRows)
        {
            (accumulate ? sums + Vector128.Load(destination) : sums).Store(destination);
            return;
        }
        for (int i = 0; i < rows; i++)
        {
            destination[i] = accumulate ? destination[i] + sums.GetElement(i) : sums.GetElement(i);
        }
    }

    /// <summary>How a float weight format widens to f32 (AVX2), one implementation per format so the kernels
    /// specialize per type.</summary>
    private unsafe interface IFloatWeights
    {
        /// <summary>Columns c … c + 7 of a row.</summary>
        static abstract Vector256<float> Load8(byte* row, int c);

        /// <summary>Column c of a row.</summary>
        static abstract float Load1(byte* row, int c);

        /// <summary>Columns [c0, c0 + count) of a row into <paramref name="destination"/>.</summary>
        static abstract void Widen(byte* row, int c0, int count, float* destination);
    }

    private readonly unsafe struct F32Weights : IFloatWeights
    {
        public static Vector256<float> Load8(byte* row, int c) => Avx.LoadVector256((float*)row + c);

        public static float Load1(byte* row, int c) => ((float*)row)[c];

        public static void Widen(byte* row, int c0, int count, float* destination) =>
            Buffer.MemoryCopy((float*)row + c0, destination, (long)count * sizeof(float), (long)count * sizeof(float));
    }

    private readonly unsafe struct F16Weights : IFloatWeights
    {
        public static Vector256<float> Load8(byte* row, int c) =>
            Ops.LoadHalfValueVector256((ushort*)row + c);

        public static float Load1(byte* row, int c) => HalfBits.ToSingle(((ushort*)row)[c]);

        public static void Widen(byte* row, int c0, int count, float* destination) =>
            Ops.FromHalf((ushort*)row + c0, destination, count);
    }

    private readonly unsafe struct BF16Weights : IFloatWeights
    {
        // vpmovzxwd puts each bfloat16 in the low half of its lane; shifting it to the high half makes the float.
        public static Vector256<float> Load8(byte* row, int c) =>
            (Avx2.ConvertToVector256Int32((ushort*)row + c) << 16).AsSingle();

        public static float Load1(byte* row, int c) => BFloat16Bits.ToSingle(((ushort*)row)[c]);

        public static void Widen(byte* row, int c0, int count, float* destination)
        {
            int i = 0;
            for (; i + 8 <= count; i += 8)
            {
                Load8(row, c0 + i).Store(destination + i);
            }
            for (; i < count; i++)
            {
                destination[i] = Load1(row, c0 + i);
            }
        }
    }
}
