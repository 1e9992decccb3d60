// AVX-512 (F + BW + VBMI) decode kernels for Q4_K and Q6_K weights against one Q8_K activation row, called from
// MultiplyKQuant (MatMul.Quantized.cs) when one token is multiplied. One row at a time, 64 codes per 512-bit register,
// the weight stream prefetched 8 KiB ahead. Tests: tests/…/Simd/MatMulTests.cs, MatMulExtremeCodesTests.cs and
// MatMulKQuantDecodeTests.cs.

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels.Simd;

// Per super-block and row the kernels compute what Reference/QuantDot.cs does:
//   Q4_K: d·da·Σ_s sc[s]·Σ q·qa − dmin·da·Σ_s m[s]·(bsum[2s] + bsum[2s + 1])
//   Q6_K: d·da·Σ_s sc[s]·(Σ q·qa − 32·bsum[s])        (q = stored code 0 … 63)
// The integer sums are exact in int32 lanes; each costs one int32 → f32 conversion (exact below 2²⁴) and one
// multiply-add per super-block. Each row is computed alone, so results do not depend on how rows are split.
public static unsafe partial class MatMul
{
    private const int Q4_KBlockBytes = 144; // f16 d, f16 dmin, 12 packed scale/min bytes, 128 nibble bytes
    private const int Q6_KBlockBytes = 210; // 128 low-nibble bytes, 64 bytes of 2-bit pairs, 16 int8 scales, f16 d

    /// <summary>How far ahead in the weight stream each super-block's bytes are prefetched. Rows are contiguous, so
    /// this runs into the next rows: 8 KiB is 2–3 rows of 4096 columns, about 300 ns of streaming at 27 GB/s, enough to
    /// cover DRAM latency. Measured on 14336 × 4096 and 32000 × 4096 matrices cycled beyond L3 (MatMulBench, 1 thread):
    /// none 26.3 / 31 GB/s (Q4_K / Q6_K), 1 KiB 21.6 / 27.5, 4 KiB 27.6 / 33.8, 8 KiB 27.8 / 38, 16 KiB 25.9 / 39.</summary>
    private const int DecodePrefetchBytes = 8192;

    /// <summary>Up to this many tokens, Q4_K and Q6_K products run the decode kernel per token with rows outer.</summary>
    private const int KDecodeBatchTokens = 2;

    /// <summary><paramref name="tokenCount"/> tokens (<paramref name="actBytes"/> apart) × rows [rowStart, rowEnd) of a
    /// Q4_K or Q6_K matrix, one row at a time (one sequential stream: tiles of 4 rows sharing the activation loads
    /// measured slower, 20 GB/s for Q4_K, the four interleaved streams needing software prefetch that cost more than
    /// the shared loads saved). For several tokens each row is read from memory once and from L1 for the others; each
    /// token gets exactly the arithmetic of a one-token call. Output row t at <paramref name="output"/> +
    /// t·<paramref name="stride"/>.</summary>
    private static void MultiplyKDecodeAvx512(in WeightMatrix w, int rowStart, int rowEnd, byte* act, int actBytes, int tokenCount, float* output, int stride)
    {
        int blockCount = w.Columns / QK_K;
        if (w.Type == GgmlType.Q6_K)
        {
            for (int r = rowStart; r < rowEnd; r++)
            {
                byte* row = w.RowPointer(r);
                for (int t = 0; t < tokenCount; t++)
                {
                    output[(long)t * stride + r] = Q6_KDecode(row, act + (long)t * actBytes, blockCount);
                }
            }
            return;
        }
        sbyte* pairedCodes = (sbyte*)PackBuffer((long)QK_K * blockCount * tokenCount);
        for (int t = 0; t < tokenCount; t++)
        {
            PairQ4_KActivation(act + (long)t * actBytes, blockCount, pairedCodes + (long)t * QK_K * blockCount);
        }
        if (tokenCount == 2)
        {
            for (int r = rowStart; r < rowEnd; r++)
            {
                Q4_KDecode2(w.RowPointer(r), act, pairedCodes, act + actBytes, pairedCodes + (long)QK_K * blockCount, blockCount,
                    out output[r], out output[stride + r]);
            }
            return;
        }
        for (int r = rowStart; r < rowEnd; r++)
        {
            byte* row = w.RowPointer(r);
            for (int t = 0; t < tokenCount; t++)
            {
                output[(long)t * stride + r] = Q4_KDecode(row, act + (long)t * actBytes, pairedCodes + (long)t * QK_K * blockCount, blockCount);
            }
        }
    }

    /// <summary>One Q4_K row against two tokens: the row's nibbles, scales and mins are unpacked once per super-block
    /// and multiplied with each token's codes. Each token's integer sums, conversions and multiply-adds are exactly
    /// <see cref="Q4_KRowStep"/>'s, in the same order, so each result is bit-identical to <see cref="Q4_KDecode"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Q4_KDecode2(byte* w, byte* act0, sbyte* paired0, byte* act1, sbyte* paired1, int blockCount, out float result0, out float result1)
    {
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero;
        Vector512<byte> lowNibbles = Vector512.Create((byte)0x0F);
        for (int b = 0; b < blockCount; b++, w += Q4_KBlockBytes, act0 += Q8_KBytes, act1 += Q8_KBytes, paired0 += QK_K, paired1 += QK_K)
        {
            PrefetchBlock(w, Q4_KBlockBytes);
            var (scales, mins) = QuantDot.UnpackScaleMinK4(w + 4);
            Vector512<byte> scaleBytes = Vector512.CreateScalar(scales).AsByte();
            Vector512<short> sc02 = Avx512Vbmi.PermuteVar64x8(scaleBytes, Halves16(0x0800 + 0, 0x0800 + 2).AsByte()).AsInt16();
            Vector512<short> sc13 = Avx512Vbmi.PermuteVar64x8(scaleBytes, Halves16(0x0800 + 1, 0x0800 + 3).AsByte()).AsInt16();
            Vector512<short> sc46 = Avx512Vbmi.PermuteVar64x8(scaleBytes, Halves16(0x0800 + 4, 0x0800 + 6).AsByte()).AsInt16();
            Vector512<short> sc57 = Avx512Vbmi.PermuteVar64x8(scaleBytes, Halves16(0x0800 + 5, 0x0800 + 7).AsByte()).AsInt16();
            Vector128<short> minCodes = Sse41.ConvertToVector128Int16(Vector128.CreateScalar(mins).AsByte());
            Vector512<byte> packed0 = Vector512.Load(w + 16), packed1 = Vector512.Load(w + 80);
            Vector512<byte> q0 = packed0 & lowNibbles, q1 = Avx512BW.ShiftRightLogical(packed0.AsUInt16(), 4).AsByte() & lowNibbles;
            Vector512<byte> q2 = packed1 & lowNibbles, q3 = Avx512BW.ShiftRightLogical(packed1.AsUInt16(), 4).AsByte() & lowNibbles;
            float dw = HalfToSingleNoBranch(Unsafe.ReadUnaligned<ushort>(w));
            float dminw = HalfToSingleNoBranch(Unsafe.ReadUnaligned<ushort>(w + 2));
            acc0 = Q4_KTokenStep(q0, q1, q2, q3, sc02, sc13, sc46, sc57, minCodes, dw, dminw, act0, paired0, acc0);
            acc1 = Q4_KTokenStep(q0, q1, q2, q3, sc02, sc13, sc46, sc57, minCodes, dw, dminw, act1, paired1, acc1);
        }
        result0 = Vector512.Sum(acc0);
        result1 = Vector512.Sum(acc1);
    }

    /// <summary>The per-token half of <see cref="Q4_KRowStep"/>, given the row's unpacked codes, permuted scales, mins
    /// and f16 factors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q4_KTokenStep(Vector512<byte> q0, Vector512<byte> q1, Vector512<byte> q2, Vector512<byte> q3,
        Vector512<short> sc02, Vector512<short> sc13, Vector512<short> sc46, Vector512<short> sc57, Vector128<short> minCodes,
        float dw, float dminw, byte* a, sbyte* paired, Vector512<float> acc)
    {
        Vector128<int> minSum = Sse2.MultiplyAddAdjacent(minCodes, SubBlockSums(a));
        Vector512<int> sumi = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q0, Vector512.Load(paired)), sc02)
            + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q1, Vector512.Load(paired + 64)), sc13)
            + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q2, Vector512.Load(paired + 128)), sc46)
            + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q3, Vector512.Load(paired + 192)), sc57);
        float da = Unsafe.ReadUnaligned<float>(a);
        float d = dw * da;
        float dmin = dminw * da;
        acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sumi), Vector512.Create(d), acc);
        return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(minSum.ToVector256().ToVector512()), Vector512.Create(-dmin), acc);
    }

    /// <summary>Prefetches into L1 the bytes <see cref="DecodePrefetchBytes"/> past the super-block at
    /// <paramref name="block"/>: lines at offsets 0, 64, 128 (and 192 for blocks over 192 bytes), at most 64 bytes
    /// apart, so over consecutive blocks every line is touched. Straight-line code: a loop here made the JIT keep
    /// vectors on the stack. Past the matrix end this touches nothing that matters: prefetches never fault.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchBlock(byte* block, int blockBytes)
    {
        byte* p = block + DecodePrefetchBytes;
        Sse.Prefetch0(p);
        Sse.Prefetch0(p + 64);
        Sse.Prefetch0(p + 128);
        if (blockBytes > 192)
        {
            Sse.Prefetch0(p + 192);
        }
    }

    /// <summary>int16 lanes 0–15 = <paramref name="lower"/>, 16–31 = <paramref name="upper"/>. Built from 8 ulongs so the
    /// JIT folds it to one constant in the data section (from two Vector256 halves it assembled it on the stack).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ushort> Halves16(int lower, int upper)
    {
        const ulong Every16 = 0x0001_0001_0001_0001;
        ulong lo = (ulong)lower * Every16, hi = (ulong)upper * Every16;
        return Vector512.Create(lo, lo, lo, lo, hi, hi, hi, hi).AsUInt16();
    }

    /// <summary><see cref="QuantDot.HalfToSingle"/> without its branch (same bits for every f16): the branch split the
    /// loop body into several blocks, and in the 4-row tiles tried first the JIT then kept the accumulators on the stack.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HalfToSingleNoBranch(ushort bits)
    {
        const float TwoPow112 = 5.192296858534828E+33f; // 2^112 exactly
        uint shifted = (bits & 0x7FFFu) << 13;
        uint finite = BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(shifted) * TwoPow112);
        // All ones when the exponent field is 31 (infinity or NaN): shifted ≤ 0x0FFFE000, so the difference is negative
        // exactly when shifted ≥ 0x7C00 << 13.
        uint special = (uint)((int)(0x0F7FFFFFu - shifted) >> 31);
        uint magnitude = (finite & ~special) | ((shifted | 0x7F800000u) & special);
        return BitConverter.UInt32BitsToSingle(magnitude | (uint)(bits & 0x8000) << 16);
    }

    /// <summary>The 32 bytes at <paramref name="p"/> in both 256-bit halves. Not Avx512F.BroadcastVector256ToVector512:
    /// in fully optimized code .NET 10 emitted it with a 128-bit memory operand (wrong results; Tier0 was right), which
    /// MatMulKQuantDecodeTests catches when run with DOTNET_TieredCompilation=0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Broadcast256(byte* p)
    {
        // One load and one vinserti64x4 (Vector512.Create(v, v) went through a stack temporary).
        Vector256<byte> v = Vector256.Load(p);
        return Avx512F.InsertVector256(v.ToVector512Unsafe(), v, 1);
    }

    // ---- Q4_K. 64 qs bytes (j = 0, 1: bytes 64j … 64j + 63) hold sub-blocks 4j and 4j + 2 in their low nibbles (bytes
    // 0–31 and 32–63) and 4j + 1, 4j + 3 in their high nibbles. Masked (and shifted) as one 512-bit register each, they
    // meet activation codes laid out to match: PairQ4_KActivation writes, per super-block, the codes of sub-blocks
    // (0 | 2), (1 | 3), (4 | 6), (5 | 7), 64 bytes each, once per matrix product for all rows.

    /// <summary>The activation codes of <paramref name="blockCount"/> Q8_K blocks in the sub-block order the Q4_K decode
    /// kernel's registers hold: per block, 256 bytes = sub-blocks 0, 2, 1, 3, 4, 6, 5, 7 (32 codes each).</summary>
    private static void PairQ4_KActivation(byte* act, int blockCount, sbyte* paired)
    {
        for (int b = 0; b < blockCount; b++, act += Q8_KBytes, paired += QK_K)
        {
            byte* codes = act + 4;
            for (int j = 0; j < 2; j++)
            {
                Vector256.Load(codes + 128 * j).Store((byte*)paired + 128 * j);           // sub-block 4j
                Vector256.Load(codes + 128 * j + 64).Store((byte*)paired + 128 * j + 32); // sub-block 4j + 2
                Vector256.Load(codes + 128 * j + 32).Store((byte*)paired + 128 * j + 64); // sub-block 4j + 1
                Vector256.Load(codes + 128 * j + 96).Store((byte*)paired + 128 * j + 96); // sub-block 4j + 3
            }
        }
    }

    // AggressiveOptimization: no Tier0 passes over the first tokens' matrices, and tests always run the fully optimized
    // code (where the broadcast miscompile above lived). Measured equal or slightly faster (Q4_K 27.9 → 28.1 GB/s).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q4_KDecode(byte* w, byte* act, sbyte* pairedCodes, int blockCount)
    {
        Vector512<float> acc = Vector512<float>.Zero;
        for (int b = 0; b < blockCount; b++, w += Q4_KBlockBytes, act += Q8_KBytes, pairedCodes += QK_K)
        {
            PrefetchBlock(w, Q4_KBlockBytes);
            acc = Q4_KRowStep(w, act, pairedCodes, SubBlockSums(act), acc);
        }
        return Vector512.Sum(acc);
    }

    /// <summary>bsum[2s] + bsum[2s + 1] of a Q8_K block (the sum of sub-block s's 32 codes, |·| ≤ 4096) as int16 lane s:
    /// adjacent bsums summed by vpmaddwd with 1 into int32, then narrowed (no saturation).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<short> SubBlockSums(byte* a)
    {
        Vector256<int> pairSums = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(a + 260)), Vector256.Create((short)1));
        return Sse2.PackSignedSaturate(pairSums.GetLower(), pairSums.GetUpper());
    }

    /// <summary>One Q4_K super-block of one row against the Q8_K block at <paramref name="a"/> (its codes paired at
    /// <paramref name="paired"/>): acc + d·da·(16 int32 lanes of Σ sc·Σ q·qa) − dmin·da·(4 int32 lanes of Σ m·sub-block
    /// sums, zero-extended to 16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q4_KRowStep(byte* w, byte* a, sbyte* paired, Vector128<short> subBlockSums, Vector512<float> acc)
    {
        var (scales, mins) = QuantDot.UnpackScaleMinK4(w + 4);
        // Bytes 0–7: sc[0..7]; bytes 8–15 are zero, so index 8 reads a zero high byte for each int16 lane.
        Vector512<byte> scaleBytes = Vector512.CreateScalar(scales).AsByte();
        // Lanes: m[s] as int16 × sub-block sums → 4 int32, each ≤ 2·63·4096.
        Vector128<int> minSum = Sse2.MultiplyAddAdjacent(Sse41.ConvertToVector128Int16(Vector128.CreateScalar(mins).AsByte()), subBlockSums);
        Vector512<byte> lowNibbles = Vector512.Create((byte)0x0F);
        Vector512<byte> packed0 = Vector512.Load(w + 16), packed1 = Vector512.Load(w + 80);
        Vector512<int> sumi = Q4_KSubBlocks(packed0 & lowNibbles, paired, scaleBytes, 0, 2)
            + Q4_KSubBlocks(Avx512BW.ShiftRightLogical(packed0.AsUInt16(), 4).AsByte() & lowNibbles, paired + 64, scaleBytes, 1, 3)
            + Q4_KSubBlocks(packed1 & lowNibbles, paired + 128, scaleBytes, 4, 6)
            + Q4_KSubBlocks(Avx512BW.ShiftRightLogical(packed1.AsUInt16(), 4).AsByte() & lowNibbles, paired + 192, scaleBytes, 5, 7);
        float da = Unsafe.ReadUnaligned<float>(a);
        float d = HalfToSingleNoBranch(Unsafe.ReadUnaligned<ushort>(w)) * da;
        float dmin = HalfToSingleNoBranch(Unsafe.ReadUnaligned<ushort>(w + 2)) * da;
        acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sumi), Vector512.Create(d), acc);
        return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(minSum.ToVector256().ToVector512()), Vector512.Create(-dmin), acc);
    }

    /// <summary>64 codes (0 … 15) of sub-blocks <paramref name="s0"/> (bytes 0–31) and <paramref name="s1"/> (32–63)
    /// against their paired activation codes: 16 int32 lanes, lanes 0–7 summing sc[s0]·Σ q·qa, lanes 8–15 sc[s1]·Σ q·qa.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Q4_KSubBlocks(Vector512<byte> q, sbyte* paired, Vector512<byte> scaleBytes, int s0, int s1)
    {
        // int16 lanes: pairs of products, |pair| ≤ 2·15·128 = 3840.
        Vector512<short> pairs = Avx512BW.MultiplyAddAdjacent(q, Vector512.Load(paired));
        // vpermb: int16 lanes 0–15 get sc[s0], lanes 16–31 sc[s1] (low byte from scaleBytes[s], high byte from the zero
        // byte 8). int32 lanes ≤ 2·3840·63.
        Vector512<byte> index = Halves16(0x0800 + s0, 0x0800 + s1).AsByte();
        return Avx512BW.MultiplyAddAdjacent(pairs, Avx512Vbmi.PermuteVar64x8(scaleBytes, index).AsInt16());
    }

    // ---- Q6_K. Half h (0, 1) of a super-block: 64 ql bytes and 32 qh bytes give elements 128h … 128h + 127. The 64 ql
    // bytes' low nibbles are elements 128h + 0 … 63 in order, their high nibbles 128h + 64 … 127; the 2-bit pairs of
    // qh byte l are the top bits of elements l, l + 32, l + 64, l + 96 (bits 0–1, 2–3, 4–5, 6–7). Broadcast to 512
    // bits and shifted by a different count per 256-bit half, each pair lands on bits 4–5 of the right byte.

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q6_KDecode(byte* w, byte* act, int blockCount)
    {
        Vector512<float> acc = Vector512<float>.Zero;
        for (int b = 0; b < blockCount; b++, w += Q6_KBlockBytes, act += Q8_KBytes)
        {
            PrefetchBlock(w, Q6_KBlockBytes);
            acc = Q6_KRowStep(w, act, Vector256.Load((short*)(act + 260)).ToVector512(), acc);
        }
        return Vector512.Sum(acc);
    }

    /// <summary>One Q6_K super-block of one row against the Q8_K block at <paramref name="a"/> (its 16 bsums as int16 in
    /// the lower 256 bits of <paramref name="blockSums"/>, zero above): acc + d·da·(16 int32 lanes of
    /// Σ_s sc[s]·(Σ q·qa − 32·bsum[s])).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q6_KRowStep(byte* w, byte* a, Vector512<short> blockSums, Vector512<float> acc)
    {
        // int16 scales s0 … s15 (sign-extended) in the lower 256 bits; the upper 256 bits are zero.
        Vector512<short> scales = Avx2.ConvertToVector256Int16(Sse2.LoadVector128((sbyte*)(w + 192))).ToVector512();
        // The codes are stored as q = w + 32; Σ (q − 32)·qa·s = Σ q·qa·s − 32·Σ_s s·bsum[s]: 8 int32 lanes of s·bsum
        // pairs (upper lanes zero), |·| ≤ 2·128·2048, exact even ×32.
        Vector512<int> offset = Avx512BW.MultiplyAddAdjacent(blockSums, scales);
        sbyte* qa = (sbyte*)(a + 4);
        Vector512<int> sumi = Q6_KHalf(w, w + 128, qa, scales, 0) + Q6_KHalf(w + 64, w + 160, qa + 128, scales, 8);
        float d = HalfToSingleNoBranch(Unsafe.ReadUnaligned<ushort>(w + 208)) * Unsafe.ReadUnaligned<float>(a);
        return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sumi - Avx512F.ShiftLeftLogical(offset, 5)), Vector512.Create(d), acc);
    }

    /// <summary>One half of a Q6_K super-block (64 ql bytes at <paramref name="ql"/>, 32 qh bytes at
    /// <paramref name="qhBytes"/>, sub-blocks <paramref name="s0"/> … s0 + 7) against its 128 activation codes at <paramref name="qa"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Q6_KHalf(byte* ql, byte* qhBytes, sbyte* qa, Vector512<short> scales, int s0)
    {
        Vector512<byte> lowNibbles = Vector512.Create((byte)0x0F), highPair = Vector512.Create((byte)0x30);
        // Shift counts for qh: the low-nibble elements (0–31 | 32–63 of the half) need bits 0–1 | 2–3 at 4–5: left by
        // 4 | 2; the high-nibble ones (64–95 | 96–127) need bits 4–5 | 6–7: right by 0 | 2. 16-bit shifts of at most 4
        // never carry a neighbour byte's bits into bits 4–5, and the mask keeps bits 4–5 only.
        Vector512<ushort> leftCounts = Halves16(4, 2), rightCounts = Halves16(0, 2);
        Vector512<byte> packed = Vector512.Load(ql);
        Vector512<ushort> qh = Broadcast256(qhBytes).AsUInt16();
        Vector512<byte> q0 = (packed & lowNibbles) | (Avx512BW.ShiftLeftLogicalVariable(qh, leftCounts).AsByte() & highPair);
        Vector512<byte> q1 = (Avx512BW.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & lowNibbles)
            | (Avx512BW.ShiftRightLogicalVariable(qh, rightCounts).AsByte() & highPair);
        return Q6_KChunk(q0, Vector512.Load(qa), scales, s0) + Q6_KChunk(q1, Vector512.Load(qa + 64), scales, s0 + 4);
    }

    /// <summary>64 codes (0 … 63), sub-blocks <paramref name="s0"/> … s0 + 3 (one per 128-bit lane), against their
    /// activations: int16 product pairs (≤ 2·63·128 = 16128), then × the lane's sub-block scale into int32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Q6_KChunk(Vector512<byte> q, Vector512<sbyte> codes, Vector512<short> scales, int s0)
    {
        // vpermw: int16 lanes 8k … 8k + 7 take scale s0 + k.
        const ulong Every16 = 0x0001_0001_0001_0001;
        Vector512<short> index = Vector512.Create((ulong)s0 * Every16, (ulong)s0 * Every16, (ulong)(s0 + 1) * Every16, (ulong)(s0 + 1) * Every16,
            (ulong)(s0 + 2) * Every16, (ulong)(s0 + 2) * Every16, (ulong)(s0 + 3) * Every16, (ulong)(s0 + 3) * Every16).AsInt16();
        Vector512<short> pairs = Avx512BW.MultiplyAddAdjacent(q, codes);
        return Avx512BW.MultiplyAddAdjacent(pairs, Avx512BW.PermuteVar32x16(scales, index));
    }
}
