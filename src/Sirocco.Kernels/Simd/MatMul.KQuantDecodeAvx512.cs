// AVX-512 (F + BW + VBMI) decode kernels for Q4_K and Q6_K weights against one Q8_K activation row, called from
// MultiplyKQuant (MatMul.Quantized.cs) when one token is multiplied. Rows go in fours: the activation's codes and
// bsums are loaded once per super-block for the four rows, 64 codes per 512-bit register, and the next tiles' bytes
// are prefetched from inside the tile loop. Tests: tests/…/Simd/MatMulTests.cs and MatMulKQuantDecodeTests.cs.

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels.Simd;

// Per super-block and row the kernels compute what Reference/QuantDot.cs does:
//   Q4_K: d·da·Σ_s sc[s]·Σ q·qa − dmin·da·Σ_s m[s]·(bsum[2s] + bsum[2s + 1])
//   Q6_K: d·da·Σ_s sc[s]·(Σ q·qa − 32·bsum[s])        (q = stored code 0 … 63)
// The integer sums are exact in int32 lanes; each costs one int32 → f32 conversion (exact below 2²⁴) and one
// multiply-add per super-block. A row's arithmetic is the same whether it runs in a 4-row tile or alone (the single-
// row kernel calls the same per-row step), so results do not depend on how rows are split across threads.
public static unsafe partial class MatMul
{
    private const int Q4_KBlockBytes = 144; // f16 d, f16 dmin, 12 packed scale/min bytes, 128 nibble bytes
    private const int Q6_KBlockBytes = 210; // 128 low-nibble bytes, 64 bytes of 2-bit pairs, 16 int8 scales, f16 d

    /// <summary>How many 4-row tiles ahead of the one being multiplied the prefetches run. A tile of 4096-column rows
    /// is 9–13 KiB; two tiles ahead keeps about 20 KiB in flight, enough to cover DRAM latency at 25+ GB/s.</summary>
    private const int DecodePrefetchTiles = 2;

    /// <summary>One token × rows [rowStart, rowEnd) of a Q4_K or Q6_K matrix: 4-row tiles, then single rows.</summary>
    private static void MultiplyKDecodeAvx512(in WeightMatrix w, int rowStart, int rowEnd, byte* act, float* output)
    {
        int blockCount = w.Columns / QK_K;
        long rowBytes = w.RowBytes;
        bool isQ6 = w.Type == GgmlType.Q6_K;
        int r = rowStart;
        for (; r + 4 <= rowEnd; r += 4)
        {
            if (isQ6)
            {
                Q6_KDecode4(w.RowPointer(r), rowBytes, act, blockCount, output + r);
            }
            else
            {
                Q4_KDecode4(w.RowPointer(r), rowBytes, act, blockCount, output + r);
            }
        }
        for (; r < rowEnd; r++)
        {
            output[r] = isQ6 ? Q6_KDecode1(w.RowPointer(r), act, blockCount) : Q4_KDecode1(w.RowPointer(r), act, blockCount);
        }
    }

    /// <summary>Prefetches into L1 the part of the tile <see cref="DecodePrefetchTiles"/> ahead that matches super-block
    /// <paramref name="b"/>'s share of this one (<paramref name="tileBlockBytes"/> = 4 rows' block bytes). Past the
    /// matrix end this touches nothing that matters: prefetches never fault.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchAhead(byte* tile, long rowBytes, int b, int tileBlockBytes)
    {
        byte* next = tile + DecodePrefetchTiles * 4 * rowBytes + (long)b * tileBlockBytes;
        for (int line = 0; line < tileBlockBytes; line += 64)
        {
            Sse.Prefetch0(next + line);
        }
    }

    // ---- Q4_K. Group g (0 … 3) of a super-block is 32 qs bytes holding sub-block 2g in their low nibbles and
    // 2g + 1 in their high nibbles; broadcast to 512 bits and shifted right by 0 (lower half) or 4 (upper half), then
    // masked, the register holds elements 64g … 64g + 63 in order, matching one 512-bit load of activation codes.

    private static void Q4_KDecode4(byte* w, long rowBytes, byte* act, int blockCount, float* output)
    {
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero, acc2 = Vector512<float>.Zero, acc3 = Vector512<float>.Zero;
        Vector128<float> min0 = Vector128<float>.Zero, min1 = Vector128<float>.Zero, min2 = Vector128<float>.Zero, min3 = Vector128<float>.Zero;
        byte* tile = w;
        byte* a = act;
        for (int b = 0; b < blockCount; b++, w += Q4_KBlockBytes, a += Q8_KBytes)
        {
            PrefetchAhead(tile, rowBytes, b, 4 * Q4_KBlockBytes);
            var x = new Q8_KBlock(a);
            acc0 = Q4_KRowStep(w, x, acc0, ref min0);
            acc1 = Q4_KRowStep(w + rowBytes, x, acc1, ref min1);
            acc2 = Q4_KRowStep(w + 2 * rowBytes, x, acc2, ref min2);
            acc3 = Q4_KRowStep(w + 3 * rowBytes, x, acc3, ref min3);
        }
        output[0] = Vector512.Sum(acc0) - Vector128.Sum(min0);
        output[1] = Vector512.Sum(acc1) - Vector128.Sum(min1);
        output[2] = Vector512.Sum(acc2) - Vector128.Sum(min2);
        output[3] = Vector512.Sum(acc3) - Vector128.Sum(min3);
    }

    private static float Q4_KDecode1(byte* w, byte* act, int blockCount)
    {
        Vector512<float> acc = Vector512<float>.Zero;
        Vector128<float> min = Vector128<float>.Zero;
        for (int b = 0; b < blockCount; b++, w += Q4_KBlockBytes, act += Q8_KBytes)
        {
            acc = Q4_KRowStep(w, new Q8_KBlock(act), acc, ref min);
        }
        return Vector512.Sum(acc) - Vector128.Sum(min);
    }

    /// <summary>One Q4_K super-block of one row: acc + d·da·(16 int32 lanes of Σ sc·Σ q·qa); min + dmin·da·(4 lanes of
    /// Σ m·bsum pairs).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q4_KRowStep(byte* w, in Q8_KBlock x, Vector512<float> acc, ref Vector128<float> min)
    {
        var (scales, mins) = QuantDot.UnpackScaleMinK4(w + 4);
        // Bytes 0–7: sc[0..7]; bytes 8–15 are zero, so index 8 reads a zero high byte for each int16 lane.
        Vector512<byte> scaleBytes = Vector512.CreateScalar(scales).AsByte();
        // Lanes: m[s] as int16 × (bsum[2s] + bsum[2s + 1]) → 4 int32, each ≤ 2·63·4096.
        Vector128<int> minSum = Sse2.MultiplyAddAdjacent(Sse41.ConvertToVector128Int16(Vector128.CreateScalar(mins).AsByte()), x.SubBlockSums);
        Vector512<ushort> nibbleShift = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)4));
        Vector512<byte> lowNibbles = Vector512.Create((byte)0x0F);
        byte* qs = w + 16;
        Vector512<int> sumi = Q4_KGroup(qs, x.Codes0, scaleBytes, nibbleShift, lowNibbles, 0)
            + Q4_KGroup(qs + 32, x.Codes1, scaleBytes, nibbleShift, lowNibbles, 1)
            + Q4_KGroup(qs + 64, x.Codes2, scaleBytes, nibbleShift, lowNibbles, 2)
            + Q4_KGroup(qs + 96, x.Codes3, scaleBytes, nibbleShift, lowNibbles, 3);
        float d = QuantDot.HalfToSingle(Unsafe.ReadUnaligned<ushort>(w)) * x.Scale;
        float dmin = QuantDot.HalfToSingle(Unsafe.ReadUnaligned<ushort>(w + 2)) * x.Scale;
        min = Fma.MultiplyAdd(Sse2.ConvertToVector128Single(minSum), Vector128.Create(dmin), min);
        return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sumi), Vector512.Create(d), acc);
    }

    /// <summary>Group <paramref name="g"/>: 16 int32 lanes, lanes 0–7 summing sc[2g]·Σ q·qa over sub-block 2g and lanes
    /// 8–15 sc[2g + 1]·Σ q·qa over sub-block 2g + 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Q4_KGroup(byte* qs, Vector512<sbyte> codes, Vector512<byte> scaleBytes, Vector512<ushort> nibbleShift, Vector512<byte> lowNibbles, int g)
    {
        Vector512<ushort> packed = Avx512F.BroadcastVector256ToVector512((ulong*)qs).AsUInt16();
        Vector512<byte> q = Avx512BW.ShiftRightLogicalVariable(packed, nibbleShift).AsByte() & lowNibbles; // 0 … 15
        // int16 lanes: pairs of products, |pair| ≤ 2·15·128 = 3840.
        Vector512<short> pairs = Avx512BW.MultiplyAddAdjacent(q, codes);
        // vpermb: int16 lanes 0–15 get sc[2g], lanes 16–31 sc[2g + 1] (low byte from scaleBytes[2g or 2g+1], high byte
        // from the zero byte 8). int32 lanes ≤ 2·3840·63.
        Vector512<byte> index = Vector512.Create(Vector256.Create((ushort)(0x0800 + 2 * g)), Vector256.Create((ushort)(0x0800 + 2 * g + 1))).AsByte();
        return Avx512BW.MultiplyAddAdjacent(pairs, Avx512Vbmi.PermuteVar64x8(scaleBytes, index).AsInt16());
    }

    // ---- Q6_K. Half h (0, 1) of a super-block: 64 ql bytes and 32 qh bytes give elements 128h … 128h + 127. The 64 ql
    // bytes' low nibbles are elements 128h + 0 … 63 in order, their high nibbles 128h + 64 … 127; the 2-bit pairs of
    // qh byte l are the top bits of elements l, l + 32, l + 64, l + 96 (bits 0–1, 2–3, 4–5, 6–7). Broadcast to 512
    // bits and shifted by a different count per 256-bit half, each pair lands on bits 4–5 of the right byte.

    private static void Q6_KDecode4(byte* w, long rowBytes, byte* act, int blockCount, float* output)
    {
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero, acc2 = Vector512<float>.Zero, acc3 = Vector512<float>.Zero;
        byte* tile = w;
        byte* a = act;
        for (int b = 0; b < blockCount; b++, w += Q6_KBlockBytes, a += Q8_KBytes)
        {
            PrefetchAhead(tile, rowBytes, b, 4 * Q6_KBlockBytes);
            var x = new Q8_KBlock(a);
            acc0 = Q6_KRowStep(w, x, acc0);
            acc1 = Q6_KRowStep(w + rowBytes, x, acc1);
            acc2 = Q6_KRowStep(w + 2 * rowBytes, x, acc2);
            acc3 = Q6_KRowStep(w + 3 * rowBytes, x, acc3);
        }
        output[0] = Vector512.Sum(acc0);
        output[1] = Vector512.Sum(acc1);
        output[2] = Vector512.Sum(acc2);
        output[3] = Vector512.Sum(acc3);
    }

    private static float Q6_KDecode1(byte* w, byte* act, int blockCount)
    {
        Vector512<float> acc = Vector512<float>.Zero;
        for (int b = 0; b < blockCount; b++, w += Q6_KBlockBytes, act += Q8_KBytes)
        {
            acc = Q6_KRowStep(w, new Q8_KBlock(act), acc);
        }
        return Vector512.Sum(acc);
    }

    /// <summary>One Q6_K super-block of one row: acc + d·da·(16 int32 lanes of Σ_s sc[s]·(Σ q·qa − 32·bsum[s])).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q6_KRowStep(byte* w, in Q8_KBlock x, Vector512<float> acc)
    {
        // int16 scales s0 … s15 (sign-extended) in the lower 256 bits; the upper 256 bits are zero.
        Vector512<short> scales = Avx2.ConvertToVector256Int16(Sse2.LoadVector128((sbyte*)(w + 192))).ToVector512();
        // The codes are stored as q = w + 32; Σ (q − 32)·qa·s = Σ q·qa·s − 32·Σ_s s·bsum[s]: 8 int32 lanes of s·bsum
        // pairs (upper lanes zero), |·| ≤ 2·128·2048, exact even ×32.
        Vector512<int> offset = Avx512BW.MultiplyAddAdjacent(x.BlockSums, scales);
        Vector512<int> sumi = Q6_KHalf(w, w + 128, x.Codes0, x.Codes1, scales, 0) + Q6_KHalf(w + 64, w + 160, x.Codes2, x.Codes3, scales, 8);
        float d = QuantDot.HalfToSingle(Unsafe.ReadUnaligned<ushort>(w + 208)) * x.Scale;
        return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sumi - Avx512F.ShiftLeftLogical(offset, 5)), Vector512.Create(d), acc);
    }

    /// <summary>One half of a Q6_K super-block (64 ql bytes at <paramref name="ql"/>, 32 qh bytes at
    /// <paramref name="qhBytes"/>, sub-blocks <paramref name="s0"/> … s0 + 7) against its 128 activation codes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Q6_KHalf(byte* ql, byte* qhBytes, Vector512<sbyte> codesLow, Vector512<sbyte> codesHigh, Vector512<short> scales, int s0)
    {
        Vector512<byte> lowNibbles = Vector512.Create((byte)0x0F), highPair = Vector512.Create((byte)0x30);
        // Shift counts for qh: the low-nibble elements (0–31 | 32–63 of the half) need bits 0–1 | 2–3 at 4–5: left by
        // 4 | 2; the high-nibble ones (64–95 | 96–127) need bits 4–5 | 6–7: right by 0 | 2. 16-bit shifts of at most 4
        // never carry a neighbour byte's bits into bits 4–5, and the mask keeps bits 4–5 only.
        Vector512<ushort> leftCounts = Vector512.Create(Vector256.Create((ushort)4), Vector256.Create((ushort)2));
        Vector512<ushort> rightCounts = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)2));
        Vector512<byte> packed = Vector512.Load(ql);
        Vector512<ushort> qh = Avx512F.BroadcastVector256ToVector512((ulong*)qhBytes).AsUInt16();
        Vector512<byte> q0 = (packed & lowNibbles) | (Avx512BW.ShiftLeftLogicalVariable(qh, leftCounts).AsByte() & highPair);
        Vector512<byte> q1 = (Avx512BW.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & lowNibbles)
            | (Avx512BW.ShiftRightLogicalVariable(qh, rightCounts).AsByte() & highPair);
        return Q6_KChunk(q0, codesLow, scales, s0) + Q6_KChunk(q1, codesHigh, scales, s0 + 4);
    }

    /// <summary>64 codes (0 … 63), sub-blocks <paramref name="s0"/> … s0 + 3 (one per 128-bit lane), against their
    /// activations: int16 product pairs (≤ 2·63·128 = 16128), then × the lane's sub-block scale into int32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Q6_KChunk(Vector512<byte> q, Vector512<sbyte> codes, Vector512<short> scales, int s0)
    {
        // vpermw: int16 lanes 8k … 8k + 7 take scale s0 + k.
        Vector512<short> index = Vector512.Create(
            Vector256.Create(Vector128.Create((short)s0), Vector128.Create((short)(s0 + 1))),
            Vector256.Create(Vector128.Create((short)(s0 + 2)), Vector128.Create((short)(s0 + 3))));
        Vector512<short> pairs = Avx512BW.MultiplyAddAdjacent(q, codes);
        return Avx512BW.MultiplyAddAdjacent(pairs, Avx512BW.PermuteVar32x16(scales, index));
    }

    /// <summary>One Q8_K super-block's activation, loaded once and shared by the rows of a tile.</summary>
    private readonly ref struct Q8_KBlock
    {
        public readonly float Scale;
        public readonly Vector512<sbyte> Codes0, Codes1, Codes2, Codes3; // elements 0–63, 64–127, 128–191, 192–255

        /// <summary>The 16 bsums (sums of 16 codes) as int16 in the lower 256 bits, zero above (for Q6_K).</summary>
        public readonly Vector512<short> BlockSums;

        /// <summary>bsum[2s] + bsum[2s + 1] (the sum of sub-block s's 32 codes, |·| ≤ 4096) as int16 lane s (for Q4_K).</summary>
        public readonly Vector128<short> SubBlockSums;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Q8_KBlock(byte* a)
        {
            Scale = Unsafe.ReadUnaligned<float>(a);
            Codes0 = Vector512.Load((sbyte*)(a + 4));
            Codes1 = Vector512.Load((sbyte*)(a + 68));
            Codes2 = Vector512.Load((sbyte*)(a + 132));
            Codes3 = Vector512.Load((sbyte*)(a + 196));
            Vector256<short> bsums = Vector256.Load((short*)(a + 260));
            BlockSums = bsums.ToVector512();
            // Adjacent pairs summed (vpmaddwd by 1 → int32), narrowed back to int16 (no saturation: |·| ≤ 4096).
            Vector256<int> pairSums = Avx2.MultiplyAddAdjacent(bsums, Vector256.Create((short)1));
            SubBlockSums = Sse2.PackSignedSaturate(pairSums.GetLower(), pairSums.GetUpper());
        }
    }
}
