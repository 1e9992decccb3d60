// Q8_0 and Q4_0 weights (32-element blocks, f16 scale) times activations quantized with Q8_0's rule into a private
// planar row. Register-tiled AVX2 kernels: 4 weight rows × 1 token for decode, 2 rows × 4 tokens for prefill, each
// weight block unpacked once per tile; a portable Vector128 and a scalar path for other machines. With AVX-512BW,
// Q4_0 and Q8_0 prefill (and Q4_0 decode) run the 16-row tiles of MatMul.Avx512.cs instead. K-quant dispatch
// (MultiplyKQuant) lives here too: AVX-512 prefill tiles (MatMul.KQuantsAvx512.cs), else the row dots of QuantDot.

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels.Simd;

// The activation row for Q8_0/Q4_0 weights, n columns = nb blocks of 32 (ActivationQuantizer.Q8_0Planar):
//   [0, n)               codes       int8, block b at 32b: the codes Quantize.Q8_0 writes
//   [n, n + 4nb)         scales      f32, the block's f16 scale d16
//   [n + 4nb, n + 8nb)   scaledSums  f32, d16 · Σ codes of the block
// Per block and row, Σ w·a = dw·(da·Σ q·qa − offset·da·Σ qa), where the weight codes q are unsigned (Q4_0: the stored
// nibble, offset 8; Q8_0 with AVX-VNNI: code + 128, offset 128; Q8_0 with AVX2: the signed code, offset 0). Keeping
// the codes unsigned feeds vpmaddubsw / vpdpbusd directly (no sign juggling), and the offset costs nothing extra:
// the multiply by da becomes a multiply-add with −offset·da·Σqa / 8 in each of the 8 lanes.
public static unsafe partial class MatMul
{
    private const int Q8Block = 32;

    /// <summary>Bytes of the planar activation row used against Q8_0/Q4_0 weights.</summary>
    private static int PlanarQ8RowBytes(int columns) => columns + columns / Q8Block * 8;

    private static void QuantizePlanarQ8(ReadOnlySpan<float> activation, Span<byte> destination)
    {
        int n = activation.Length, blockCount = n / Q8Block;
        ActivationQuantizer.Q8_0Planar(activation,
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(destination.Slice(0, n)),
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(destination.Slice(n, 4 * blockCount)),
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(destination.Slice(n + 4 * blockCount, 4 * blockCount)));
    }

    private static void MultiplyPlanarQ8(in WeightMatrix w, int rowStart, int rowEnd, byte* act, int actBytes, int tokenCount, float* output, int stride)
    {
        bool isQ4 = w.Type == GgmlType.Q4_0;
        // AVX-512: 16-row tiles (MatMul.Avx512.cs) for Q4_0 and for Q8_0 prefill (Q8_0 decode already streams at
        // memory speed on the AVX2 tiles, 40 GB/s); matrices of fewer than 16 rows take the AVX2 tiles.
        if ((isQ4 || tokenCount > 1) && w.Rows >= Avx512TileRows && Avx512BW.IsSupported && Fma.IsSupported)
        {
            if (isQ4)
            {
                MultiplyPacked16<Q4_0Packed>(w, rowStart, rowEnd, act, actBytes, tokenCount, output, stride);
                return;
            }
            if (AvxVnni.IsSupported)
            {
                MultiplyPacked16<Q8_0PackedVnni>(w, rowStart, rowEnd, act, actBytes, tokenCount, output, stride);
                return;
            }
        }
        if (Avx2.IsSupported && Fma.IsSupported)
        {
            if (AvxVnni.IsSupported)
            {
                if (isQ4)
                {
                    MultiplyTiled<Q4_0Vnni>(w, rowStart, rowEnd, act, actBytes, tokenCount, output, stride);
                }
                else
                {
                    MultiplyTiled<Q8_0Vnni>(w, rowStart, rowEnd, act, actBytes, tokenCount, output, stride);
                }
            }
            else if (isQ4)
            {
                MultiplyTiled<Q4_0Avx2>(w, rowStart, rowEnd, act, actBytes, tokenCount, output, stride);
            }
            else
            {
                MultiplyTiled<Q8_0Avx2>(w, rowStart, rowEnd, act, actBytes, tokenCount, output, stride);
            }
            return;
        }
        int blockCount = w.Columns / Q8Block;
        for (int r = rowStart; r < rowEnd; r++)
        {
            byte* row = w.RowPointer(r);
            for (int t = 0; t < tokenCount; t++)
            {
                output[(long)t * stride + r] = Vector128.IsHardwareAccelerated
                    ? DotPlanarVector128(row, isQ4, act + (long)t * actBytes, blockCount)
                    : DotPlanarScalar(row, isQ4, act + (long)t * actBytes, blockCount);
            }
        }
    }

    /// <summary>K-quant rows against Q8_K activations: each weight row (a few KiB) is reused from L1 for every token.</summary>
    private static void MultiplyKQuant(in WeightMatrix w, int rowStart, int rowEnd, byte* act, int actBytes, int tokenCount, float* output, int stride)
    {
        // AVX-512: 16-row tiles packed once per tile for prefill (MatMul.KQuantsAvx512.cs). Decode stays on the AVX2
        // row dots: packing each super-block into L1 and multiplying it at once measured slower (Q4_K 25, Q5_K 22,
        // Q6_K 22 GB/s against 28, 28, 33 on 14336 × 4096), the pack costing more than the 16-lane products save.
        // Two tokens (batched decode of 2 sequences) on the decode kernels, rows outer and tokens inner: each
        // row streams from memory once and is reused from L1, and every token's result is bit-identical to decoding it
        // alone. From 3 tokens the packed tiles below are faster (`sirocco bench --parallel`, PERFORMANCE.md).
        if (tokenCount is > 1 and <= KDecodeBatchTokens && w.Type is GgmlType.Q4_K or GgmlType.Q6_K
            && Avx512BW.IsSupported && Avx512Vbmi.IsSupported && Fma.IsSupported)
        {
            MultiplyKDecodeAvx512(w, rowStart, rowEnd, act, actBytes, tokenCount, output, stride);
            return;
        }
        if (tokenCount > 1 && w.Rows >= Avx512TileRows && Avx512BW.IsSupported && Fma.IsSupported)
        {
            switch (w.Type)
            {
                case GgmlType.Q4_K:
                    MultiplyKPacked16<Q4_KPacked16>(w, rowStart, rowEnd, act, actBytes, tokenCount, output, stride);
                    return;
                case GgmlType.Q5_K:
                    MultiplyKPacked16<Q5_KPacked16>(w, rowStart, rowEnd, act, actBytes, tokenCount, output, stride);
                    return;
                case GgmlType.Q6_K:
                    MultiplyKPacked16<Q6_KPacked16>(w, rowStart, rowEnd, act, actBytes, tokenCount, output, stride);
                    return;
            }
        }
        // Decode of Q4_K/Q6_K on AVX-512: one row at a time, 64 codes per register, prefetching the weight stream
        // (MatMul.KQuantDecodeAvx512.cs). From DRAM, 1 thread: Q4_K 26 → 29.5 GB/s, Q6_K 30 → 40 GB/s. Q5_K stays on
        // the AVX2 row dots below.
        if (tokenCount == 1 && w.Type is GgmlType.Q4_K or GgmlType.Q6_K && Avx512BW.IsSupported && Avx512Vbmi.IsSupported && Fma.IsSupported)
        {
            MultiplyKDecodeAvx512(w, rowStart, rowEnd, act, actBytes, 1, output, stride);
            return;
        }
        int blockCount = w.Columns / 256;
        // Q4_K/Q5_K prefill: tiles of 1 row × 4 tokens decode each sub-block once for the 4 tokens.
        bool tiled = Avx2.IsSupported && w.Type is GgmlType.Q4_K or GgmlType.Q5_K;
        int tiledTokens = tiled ? tokenCount - tokenCount % 4 : 0;
        for (int r = rowStart; r < rowEnd; r++)
        {
            byte* row = w.RowPointer(r);
            for (int t = 0; t < tiledTokens; t += 4)
            {
                QuantDot.Q4_KTile1x4Avx2(row, w.Type == GgmlType.Q5_K, act + (long)t * actBytes, actBytes, blockCount, output + (long)t * stride + r, stride);
            }
            for (int t = tiledTokens; t < tokenCount; t++)
            {
                output[(long)t * stride + r] = QuantDot.DotKQuantQ8_K(w.Type, row, act + (long)t * actBytes, blockCount);
            }
        }
    }

    /// <summary>Tile walk: rows in pairs × tokens in fours (prefill); then the tokens left over (fewer than 4, or
    /// all of them when decoding) with rows in fours × 1 token; single rows last.</summary>
    private static void MultiplyTiled<TW>(in WeightMatrix w, int rowStart, int rowEnd, byte* act, int actBytes, int tokenCount, float* output, int stride)
        where TW : struct, IPlanarQ8Weights
    {
        int blockCount = w.Columns / Q8Block;
        long rowBytes = w.RowBytes;
        int tiledTokens = tokenCount - tokenCount % 4;
        if (tiledTokens > 0)
        {
            int r = rowStart;
            // Row pairs outermost so each weight row streams from memory once; the pair's blocks (2 · rowBytes,
            // a few KiB) stay in L1 while every 4-token tile of activations (from L2) passes over them.
            for (; r + 2 <= rowEnd; r += 2)
            {
                byte* row = w.RowPointer(r);
                for (int t = 0; t < tiledTokens; t += 4)
                {
                    Tile2x4<TW>(row, rowBytes, act + (long)t * actBytes, actBytes, blockCount, output + (long)t * stride + r, stride);
                }
            }
            for (; r < rowEnd; r++)
            {
                for (int t = 0; t < tiledTokens; t++)
                {
                    Tile1x1<TW>(w.RowPointer(r), act + (long)t * actBytes, blockCount, output + (long)t * stride + r);
                }
            }
        }
        for (int t = tiledTokens; t < tokenCount; t++)
        {
            byte* a = act + (long)t * actBytes;
            int r = rowStart;
            for (; r + 4 <= rowEnd; r += 4)
            {
                Tile4x1<TW>(w.RowPointer(r), rowBytes, a, blockCount, output + (long)t * stride + r);
            }
            for (; r < rowEnd; r++)
            {
                Tile1x1<TW>(w.RowPointer(r), a, blockCount, output + (long)t * stride + r);
            }
        }
    }

    // ---- AVX2 tiles. Per weight block: decode the 32 codes once (TW.Decode), then per token one integer dot
    // (8 int32 lanes, exact), a conversion to float, a multiply-add by da with the offset bias, and a multiply-add by dw
    // into the tile's accumulator (lane i of an accumulator: Σ over blocks of that lane's scaled partial sum).

    private static void Tile4x1<TW>(byte* w, long rowBytes, byte* act, int blockCount, float* output) where TW : struct, IPlanarQ8Weights
    {
        float* scales = (float*)(act + Q8Block * blockCount), scaledSums = scales + blockCount;
        Vector256<float> acc0 = Vector256<float>.Zero, acc1 = Vector256<float>.Zero, acc2 = Vector256<float>.Zero, acc3 = Vector256<float>.Zero;
        // The four rows are four short interleaved streams (a row is a few KiB), too short for the hardware prefetcher
        // to lock on; so while block b of the tile is read, the next tile's bytes 4b·BlockBytes … 4(b + 1)·BlockBytes
        // are prefetched (one tile is 4·rowBytes contiguous bytes). Measured on 14336 × 4096 Q4_0 (from DRAM): 7.6 → 21 GB/s,
        // docs/PERFORMANCE.md. Prefetching past the matrix end is harmless: prefetches never fault.
        byte* next = w + 4 * rowBytes;
        for (int b = 0; b < blockCount; b++, w += TW.BlockBytes, next += 4 * TW.BlockBytes)
        {
            for (int line = 0; line < (4 * TW.BlockBytes + 63) / 64; line++)
            {
                Sse.Prefetch0(next + 64 * line);
            }
            byte* codes = act + Q8Block * b;
            Vector256<float> da = Vector256.Create(scales[b]), bias = Bias<TW>(scaledSums[b]);
            acc0 = Accumulate<TW>(TW.Decode(w), WeightScale(w), codes, da, bias, acc0);
            acc1 = Accumulate<TW>(TW.Decode(w + rowBytes), WeightScale(w + rowBytes), codes, da, bias, acc1);
            acc2 = Accumulate<TW>(TW.Decode(w + 2 * rowBytes), WeightScale(w + 2 * rowBytes), codes, da, bias, acc2);
            acc3 = Accumulate<TW>(TW.Decode(w + 3 * rowBytes), WeightScale(w + 3 * rowBytes), codes, da, bias, acc3);
        }
        output[0] = Vector256.Sum(acc0);
        output[1] = Vector256.Sum(acc1);
        output[2] = Vector256.Sum(acc2);
        output[3] = Vector256.Sum(acc3);
    }

    private static void Tile2x4<TW>(byte* w, long rowBytes, byte* act, int actBytes, int blockCount, float* output, int stride) where TW : struct, IPlanarQ8Weights
    {
        // Accumulator accRT: weight row R of the pair, token T of the four.
        Vector256<float> acc00 = Vector256<float>.Zero, acc01 = Vector256<float>.Zero, acc02 = Vector256<float>.Zero, acc03 = Vector256<float>.Zero;
        Vector256<float> acc10 = Vector256<float>.Zero, acc11 = Vector256<float>.Zero, acc12 = Vector256<float>.Zero, acc13 = Vector256<float>.Zero;
        int scalesOffset = Q8Block * blockCount; // bytes from a token's row to its scales plane
        for (int b = 0; b < blockCount; b++, w += TW.BlockBytes)
        {
            Vector256<byte> q0 = TW.Decode(w), q1 = TW.Decode(w + rowBytes);
            Vector256<float> dw0 = WeightScale(w), dw1 = WeightScale(w + rowBytes);
            byte* a = act + Q8Block * b;
            float* s = (float*)(act + scalesOffset) + b;
            Vector256<float> da = Vector256.Create(s[0]), bias = Bias<TW>(s[blockCount]);
            acc00 = Accumulate<TW>(q0, dw0, a, da, bias, acc00);
            acc10 = Accumulate<TW>(q1, dw1, a, da, bias, acc10);
            a += actBytes;
            s = (float*)((byte*)s + actBytes);
            da = Vector256.Create(s[0]);
            bias = Bias<TW>(s[blockCount]);
            acc01 = Accumulate<TW>(q0, dw0, a, da, bias, acc01);
            acc11 = Accumulate<TW>(q1, dw1, a, da, bias, acc11);
            a += actBytes;
            s = (float*)((byte*)s + actBytes);
            da = Vector256.Create(s[0]);
            bias = Bias<TW>(s[blockCount]);
            acc02 = Accumulate<TW>(q0, dw0, a, da, bias, acc02);
            acc12 = Accumulate<TW>(q1, dw1, a, da, bias, acc12);
            a += actBytes;
            s = (float*)((byte*)s + actBytes);
            da = Vector256.Create(s[0]);
            bias = Bias<TW>(s[blockCount]);
            acc03 = Accumulate<TW>(q0, dw0, a, da, bias, acc03);
            acc13 = Accumulate<TW>(q1, dw1, a, da, bias, acc13);
        }
        output[0] = Vector256.Sum(acc00);
        output[1] = Vector256.Sum(acc10);
        output[stride] = Vector256.Sum(acc01);
        output[stride + 1] = Vector256.Sum(acc11);
        output[2 * stride] = Vector256.Sum(acc02);
        output[2 * stride + 1] = Vector256.Sum(acc12);
        output[3 * stride] = Vector256.Sum(acc03);
        output[3 * stride + 1] = Vector256.Sum(acc13);
    }

    private static void Tile1x1<TW>(byte* w, byte* act, int blockCount, float* output) where TW : struct, IPlanarQ8Weights
    {
        float* scales = (float*)(act + Q8Block * blockCount), scaledSums = scales + blockCount;
        Vector256<float> acc = Vector256<float>.Zero;
        for (int b = 0; b < blockCount; b++, w += TW.BlockBytes)
        {
            acc = Accumulate<TW>(TW.Decode(w), WeightScale(w), act + Q8Block * b, Vector256.Create(scales[b]), Bias<TW>(scaledSums[b]), acc);
        }
        *output = Vector256.Sum(acc);
    }

    /// <summary>acc + dw·(da·Σ products + bias), lane by lane: the products are exact int32 partial sums of 4
    /// (AVX2) or 4 (VNNI) adjacent elements, exact as floats (|Σ| ≤ 4·255·128 &lt; 2²⁴).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Accumulate<TW>(Vector256<byte> decoded, Vector256<float> dw, byte* codes, Vector256<float> da, Vector256<float> bias, Vector256<float> acc)
        where TW : struct, IPlanarQ8Weights
    {
        Vector256<float> products = Avx.ConvertToVector256Single(TW.Dot(decoded, (sbyte*)codes));
        return Fma.MultiplyAdd(Fma.MultiplyAdd(products, da, bias), dw, acc);
    }

    /// <summary>−offset·d16·Σ qa / 8 in every lane: the 8 lanes together subtract offset·da·Σ qa (exact: power-of-two
    /// factors of an exact product).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Bias<TW>(float scaledSum) where TW : struct, IPlanarQ8Weights =>
        TW.Offset == 0 ? Vector256<float>.Zero : Vector256.Create(scaledSum * (-TW.Offset / 8f));

    /// <summary>The block's f16 scale (its first two bytes, for Q8_0 and Q4_0) in all 8 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> WeightScale(byte* block) => Vector256.Create(QuantDot.HalfToSingle(Unsafe.ReadUnaligned<ushort>(block)));

    /// <summary>How one weight format's block turns into unsigned codes and an integer dot with 32 activation codes.</summary>
    private interface IPlanarQ8Weights
    {
        /// <summary>Bytes per 32-element block.</summary>
        static abstract int BlockBytes { get; }

        /// <summary>What the decoded codes exceed the weight codes by (subtracted through the activation sums).</summary>
        static abstract int Offset { get; }

        /// <summary>The block's 32 codes, element j in byte j (unsigned except for <see cref="Q8_0Avx2"/>).</summary>
        static abstract Vector256<byte> Decode(byte* block);

        /// <summary>8 int32 lanes whose total is Σ decoded[j]·activation[j] (lane i: elements 4i … 4i + 3).</summary>
        static abstract Vector256<int> Dot(Vector256<byte> decoded, sbyte* activation);
    }

    /// <summary>Q4_0 nibbles as unsigned codes 0 … 15 (offset 8); products by vpmaddubsw + vpmaddwd.</summary>
    private readonly struct Q4_0Avx2 : IPlanarQ8Weights
    {
        public static int BlockBytes => 18;

        public static int Offset => 8;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Decode(byte* block)
        {
            // Both 128-bit halves get the 16 packed bytes; the upper half's 32-bit lanes shift right by 4, so after
            // masking, byte j of the lower half is element j (low nibbles) and of the upper half element 16 + j.
            Vector256<uint> both = Avx2.BroadcastVector128ToVector256(block + 2).AsUInt32();
            Vector256<uint> shifted = Avx2.ShiftRightLogicalVariable(both, Vector256.Create(0u, 0, 0, 0, 4, 4, 4, 4));
            return shifted.AsByte() & Vector256.Create((byte)0x0F);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(Vector256<byte> decoded, sbyte* activation) =>
            // int16 pairs ≤ 2·15·128 = 3840 (no saturation), then pairs of pairs into int32.
            Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(decoded, Avx.LoadVector256(activation)), Vector256.Create((short)1));
    }

    /// <summary>Q4_0 with AVX-VNNI: vpdpbusd sums 4 unsigned × signed products straight into int32.</summary>
    private readonly struct Q4_0Vnni : IPlanarQ8Weights
    {
        public static int BlockBytes => 18;

        public static int Offset => 8;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Decode(byte* block) => Q4_0Avx2.Decode(block);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(Vector256<byte> decoded, sbyte* activation) =>
            AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, decoded, Avx.LoadVector256(activation));
    }

    /// <summary>Q8_0 with AVX2: codes stay signed; vpmaddubsw gets |w| and the activation with w's sign (offset 0).</summary>
    private readonly struct Q8_0Avx2 : IPlanarQ8Weights
    {
        public static int BlockBytes => 34;

        public static int Offset => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Decode(byte* block) => Avx.LoadVector256(block + 2);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(Vector256<byte> decoded, sbyte* activation)
        {
            // |w|·(sign(w)·a) = w·a; |w| ≤ 128 and |a| ≤ 127 keep the int16 pairs ≤ 32512.
            Vector256<sbyte> w = decoded.AsSByte();
            Vector256<short> pairs = Avx2.MultiplyAddAdjacent(Avx2.Abs(w), Avx2.Sign(Avx.LoadVector256(activation), w));
            return Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1));
        }
    }

    /// <summary>Q8_0 with AVX-VNNI: codes + 128 (flipping the top bit) as unsigned, offset 128; int32 sums cannot
    /// saturate.</summary>
    private readonly struct Q8_0Vnni : IPlanarQ8Weights
    {
        public static int BlockBytes => 34;

        public static int Offset => 128;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Decode(byte* block) => Avx.LoadVector256(block + 2) ^ Vector256.Create((byte)0x80);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(Vector256<byte> decoded, sbyte* activation) =>
            AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, decoded, Avx.LoadVector256(activation));
    }

    // ---- Portable Vector128 and scalar paths: one row and one token at a time, signed weight codes.

    private static float DotPlanarVector128(byte* w, bool isQ4, byte* act, int blockCount)
    {
        float* scales = (float*)(act + Q8Block * blockCount);
        Vector128<float> acc = Vector128<float>.Zero;
        int blockBytes = isQ4 ? 18 : 34;
        for (int b = 0; b < blockCount; b++, w += blockBytes)
        {
            Vector128<sbyte> w0, w1;
            if (isQ4)
            {
                Vector128<byte> packed = Vector128.Load(w + 2);
                w0 = (packed & Vector128.Create((byte)0x0F)).AsSByte() - Vector128.Create((sbyte)8); // elements 0–15
                w1 = Vector128.ShiftRightLogical(packed, 4).AsSByte() - Vector128.Create((sbyte)8);  // elements 16–31
            }
            else
            {
                w0 = Vector128.Load((sbyte*)(w + 2));
                w1 = Vector128.Load((sbyte*)(w + 18));
            }
            sbyte* a = (sbyte*)(act + Q8Block * b);
            Vector128<float> products = QuantDot.SumProducts128(w0, w1, Vector128.Load(a), Vector128.Load(a + 16));
            acc += products * Vector128.Create(QuantDot.HalfToSingle(Unsafe.ReadUnaligned<ushort>(w)) * scales[b]);
        }
        return Vector128.Sum(acc);
    }

    private static float DotPlanarScalar(byte* w, bool isQ4, byte* act, int blockCount)
    {
        float* scales = (float*)(act + Q8Block * blockCount);
        sbyte* a = (sbyte*)act;
        float sum = 0;
        int blockBytes = isQ4 ? 18 : 34;
        for (int b = 0; b < blockCount; b++, w += blockBytes, a += Q8Block)
        {
            int sumi = 0;
            for (int j = 0; j < Q8Block; j++)
            {
                int q = isQ4 ? (j < 16 ? w[2 + j] & 0xF : w[2 + j - 16] >> 4) - 8 : (sbyte)w[2 + j];
                sumi += q * a[j];
            }
            sum += HalfBits.ToSingle(Unsafe.ReadUnaligned<ushort>(w)) * scales[b] * sumi;
        }
        return sum;
    }
}
