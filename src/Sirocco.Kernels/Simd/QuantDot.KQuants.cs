// Fast K-quant dot products: one Q4_K, Q5_K or Q6_K weight row against a Q8_K activation row. Codes stay unsigned,
// the 6-bit (Q4_K/Q5_K) or int8 (Q6_K) sub-block scales are applied in the integer domain, and each 256-element
// super-block costs one float multiply-add. Specification: Reference/QuantDot.cs; tests: tests/…/Simd/QuantDotTests.cs.

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels.Simd;

// K-quant dots. Per super-block the integer sum Σ_s sc[s]·Σ q·qa is exact in int32, as is every min or offset term;
// the differences from the reference are the float rounding of d·da (one rounding), of the int32 → float conversion
// when a lane's sum exceeds 2^24 (Q6_K worst case only), of each lane's multiply-add and of the horizontal sum.
// The min term of Q4_K/Q5_K and the −32 offset of Q6_K are taken from the activation's bsums, which must be the sums
// of its codes (Quantize.Q8_K writes them so); the reference recomputes them from the codes.
public static unsafe partial class QuantDot
{
    private const int Q4_KBytes = 144; // f16 d, f16 dmin, 12 packed scale/min bytes, 128 nibble bytes
    private const int Q5_KBytes = 176; // as Q4_K plus 32 bytes of fifth bits before the nibbles
    private const int Q6_KBytes = 210; // 128 low-nibble bytes, 64 bytes of 2-bit pairs, 16 int8 scales, f16 d
    private const int Q8_KBytes = 292; // f32 d, 256 int8 codes, 16 int16 sums of 16 codes

    /// <summary>Σ w·a over a Q4_K weight row and a Q8_K activation row (see
    /// <see cref="Reference.QuantDot.DotQ4_KQ8_K"/>); the activation's bsums must be the sums of its codes.</summary>
    /// <exception cref="ArgumentException">A length is not a whole number of blocks or the byte counts disagree.</exception>
    public static float DotQ4_KQ8_K(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int elementCount)
    {
        int blockCount = BlockRows.Check(GgmlType.Q4_K, elementCount, weightRow.Length, nameof(elementCount), nameof(weightRow));
        BlockRows.Check(GgmlType.Q8_K, elementCount, activationRow.Length, nameof(elementCount), nameof(activationRow));
        fixed (byte* w = weightRow, a = activationRow)
        {
            if (Avx2.IsSupported)
            {
                return Q4_KAvx2(w, a, blockCount);
            }
            if (Vector128.IsHardwareAccelerated)
            {
                return Q4_KVector128(w, a, blockCount, hasFifthBit: false);
            }
        }
        return Reference.QuantDot.DotQ4_KQ8_K(weightRow, activationRow, elementCount);
    }

    /// <summary>Σ w·a over a Q5_K weight row and a Q8_K activation row (see
    /// <see cref="Reference.QuantDot.DotQ5_KQ8_K"/>); the activation's bsums must be the sums of its codes.</summary>
    /// <exception cref="ArgumentException">A length is not a whole number of blocks or the byte counts disagree.</exception>
    public static float DotQ5_KQ8_K(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int elementCount)
    {
        int blockCount = BlockRows.Check(GgmlType.Q5_K, elementCount, weightRow.Length, nameof(elementCount), nameof(weightRow));
        BlockRows.Check(GgmlType.Q8_K, elementCount, activationRow.Length, nameof(elementCount), nameof(activationRow));
        fixed (byte* w = weightRow, a = activationRow)
        {
            if (Avx2.IsSupported)
            {
                return Q5_KAvx2(w, a, blockCount);
            }
            if (Vector128.IsHardwareAccelerated)
            {
                return Q4_KVector128(w, a, blockCount, hasFifthBit: true);
            }
        }
        return Reference.QuantDot.DotQ5_KQ8_K(weightRow, activationRow, elementCount);
    }

    /// <summary>Σ w·a over a Q6_K weight row and a Q8_K activation row (see
    /// <see cref="Reference.QuantDot.DotQ6_KQ8_K"/>); the activation's bsums must be the sums of its codes.</summary>
    /// <exception cref="ArgumentException">A length is not a whole number of blocks or the byte counts disagree.</exception>
    public static float DotQ6_KQ8_K(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int elementCount)
    {
        int blockCount = BlockRows.Check(GgmlType.Q6_K, elementCount, weightRow.Length, nameof(elementCount), nameof(weightRow));
        BlockRows.Check(GgmlType.Q8_K, elementCount, activationRow.Length, nameof(elementCount), nameof(activationRow));
        fixed (byte* w = weightRow, a = activationRow)
        {
            if (Avx2.IsSupported)
            {
                return Q6_KAvx2(w, a, blockCount);
            }
            if (Vector128.IsHardwareAccelerated)
            {
                return Q6_KVector128(w, a, blockCount);
            }
        }
        return Reference.QuantDot.DotQ6_KQ8_K(weightRow, activationRow, elementCount);
    }

    /// <summary>Unchecked dispatch for MatMul: the dot of <paramref name="blockCount"/> super-blocks of a Q4_K, Q5_K or
    /// Q6_K row at <paramref name="w"/> with a Q8_K row at <paramref name="a"/>, on the widest path available.</summary>
    internal static float DotKQuantQ8_K(GgmlType type, byte* w, byte* a, int blockCount)
    {
        if (Avx2.IsSupported)
        {
            return type switch
            {
                GgmlType.Q4_K => Q4_KAvx2(w, a, blockCount),
                GgmlType.Q5_K => Q5_KAvx2(w, a, blockCount),
                _ => Q6_KAvx2(w, a, blockCount),
            };
        }
        if (Vector128.IsHardwareAccelerated)
        {
            return type == GgmlType.Q6_K ? Q6_KVector128(w, a, blockCount) : Q4_KVector128(w, a, blockCount, hasFifthBit: type == GgmlType.Q5_K);
        }
        int n = 256 * blockCount;
        var weightRow = new ReadOnlySpan<byte>(w, checked((int)GgmlTypes.Get(type).RowBytes(n)));
        var activationRow = new ReadOnlySpan<byte>(a, Q8_KBytes * blockCount);
        return type switch
        {
            GgmlType.Q4_K => Reference.QuantDot.DotQ4_KQ8_K(weightRow, activationRow, n),
            GgmlType.Q5_K => Reference.QuantDot.DotQ5_KQ8_K(weightRow, activationRow, n),
            _ => Reference.QuantDot.DotQ6_KQ8_K(weightRow, activationRow, n),
        };
    }

    // ---- Scale unpacking shared by every width.

    /// <summary>The 8 six-bit scales and 8 six-bit mins of a Q4_K/Q5_K block from its 12 packed bytes (layout in
    /// <see cref="Reference.Dequantize.ScaleMinK4"/>): byte j of <c>Scales</c> is sc[j], byte j of <c>Mins</c> is m[j].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static (ulong Scales, ulong Mins) UnpackScaleMinK4(byte* packed)
    {
        uint u0 = Unsafe.ReadUnaligned<uint>(packed);     // sc[0..3] in bits 0–5 of each byte, sc[4..7] bits 4–5 on top
        uint u1 = Unsafe.ReadUnaligned<uint>(packed + 4); // m[0..3] likewise, m[4..7] bits 4–5 on top
        uint u2 = Unsafe.ReadUnaligned<uint>(packed + 8); // bits 0–3 of sc[4..7] (low nibbles) and m[4..7] (high)
        uint scales03 = u0 & 0x3F3F3F3F, mins03 = u1 & 0x3F3F3F3F;
        uint scales47 = (u2 & 0x0F0F0F0F) | ((u0 >> 6) & 0x03030303) << 4;
        uint mins47 = ((u2 >> 4) & 0x0F0F0F0F) | ((u1 >> 6) & 0x03030303) << 4;
        return (scales03 | (ulong)scales47 << 32, mins03 | (ulong)mins47 << 32);
    }

    // ---- AVX2: 32 codes per register; vpmaddubsw (unsigned codes × signed activations → int16 pairs), then
    // vpmaddwd against the sub-block scale (→ int32, the scale applied exactly). No tail: rows are whole super-blocks.

    private static float Q4_KAvx2(byte* w, byte* a, int blockCount)
    {
        Vector256<float> acc = Vector256<float>.Zero, accMin = Vector256<float>.Zero;
        for (int b = 0; b < blockCount; b++, w += Q4_KBytes, a += Q8_KBytes)
        {
            float da = Unsafe.ReadUnaligned<float>(a);
            var (scales, mins) = UnpackScaleMinK4(w + 4);
            accMin = MultiplyAdd(Vector256.Create(HalfToSingle(Unsafe.ReadUnaligned<ushort>(w + 2)) * da), MinTermAvx2(mins, a), accMin);
            Vector256<byte> scalePairs = ScalePairsAvx2(scales);
            byte* qs = w + 16;
            sbyte* qa = (sbyte*)(a + 4);
            Vector256<int> sumi = Q4_KPairAvx2(qs, qa, scalePairs, 0, Vector256<byte>.Zero, Vector256<byte>.Zero)
                + Q4_KPairAvx2(qs, qa, scalePairs, 1, Vector256<byte>.Zero, Vector256<byte>.Zero)
                + Q4_KPairAvx2(qs, qa, scalePairs, 2, Vector256<byte>.Zero, Vector256<byte>.Zero)
                + Q4_KPairAvx2(qs, qa, scalePairs, 3, Vector256<byte>.Zero, Vector256<byte>.Zero);
            acc = MultiplyAdd(Vector256.Create(HalfToSingle(Unsafe.ReadUnaligned<ushort>(w)) * da), Avx.ConvertToVector256Single(sumi), acc);
        }
        return Vector256.Sum(acc) - Vector256.Sum(accMin);
    }

    private static float Q5_KAvx2(byte* w, byte* a, int blockCount)
    {
        Vector256<float> acc = Vector256<float>.Zero, accMin = Vector256<float>.Zero;
        Vector256<byte> bit4 = Vector256.Create((byte)0x10);
        for (int b = 0; b < blockCount; b++, w += Q5_KBytes, a += Q8_KBytes)
        {
            float da = Unsafe.ReadUnaligned<float>(a);
            var (scales, mins) = UnpackScaleMinK4(w + 4);
            accMin = MultiplyAdd(Vector256.Create(HalfToSingle(Unsafe.ReadUnaligned<ushort>(w + 2)) * da), MinTermAvx2(mins, a), accMin);
            Vector256<byte> scalePairs = ScalePairsAvx2(scales);
            // Byte i of qh: bit s is bit 4 of element 32s + i. Moved to bit 4 of each byte with 16-bit shifts: a
            // shift by at most 4 never carries a bit across the byte boundary into bit 4, and the mask keeps bit 4 only.
            Vector256<ushort> qh = Avx.LoadVector256(w + 16).AsUInt16();
            byte* qs = w + 48;
            sbyte* qa = (sbyte*)(a + 4);
            Vector256<int> sumi =
                Q4_KPairAvx2(qs, qa, scalePairs, 0, Avx2.ShiftLeftLogical(qh, 4).AsByte() & bit4, Avx2.ShiftLeftLogical(qh, 3).AsByte() & bit4)
                + Q4_KPairAvx2(qs, qa, scalePairs, 1, Avx2.ShiftLeftLogical(qh, 2).AsByte() & bit4, Avx2.ShiftLeftLogical(qh, 1).AsByte() & bit4)
                + Q4_KPairAvx2(qs, qa, scalePairs, 2, qh.AsByte() & bit4, Avx2.ShiftRightLogical(qh, 1).AsByte() & bit4)
                + Q4_KPairAvx2(qs, qa, scalePairs, 3, Avx2.ShiftRightLogical(qh, 2).AsByte() & bit4, Avx2.ShiftRightLogical(qh, 3).AsByte() & bit4);
            acc = MultiplyAdd(Vector256.Create(HalfToSingle(Unsafe.ReadUnaligned<ushort>(w)) * da), Avx.ConvertToVector256Single(sumi), acc);
        }
        return Vector256.Sum(acc) - Vector256.Sum(accMin);
    }

    /// <summary>Prefill tile for MatMul: one Q4_K or Q5_K row against 4 Q8_K activation rows (<paramref name="a"/>,
    /// <paramref name="actBytes"/> apart), writing output[t·<paramref name="stride"/>] for t = 0 … 3. Each sub-block's
    /// codes and scale are decoded once for the 4 tokens; per token the arithmetic is that of <see cref="Q4_KAvx2"/>,
    /// with the min term folded into the same accumulator by a second multiply-add.</summary>
    internal static void Q4_KTile1x4Avx2(byte* w, bool hasFifthBit, byte* a, int actBytes, int blockCount, float* output, int stride)
    {
        Vector256<float> acc0 = Vector256<float>.Zero, acc1 = Vector256<float>.Zero, acc2 = Vector256<float>.Zero, acc3 = Vector256<float>.Zero;
        Vector256<byte> lowNibbles = Vector256.Create((byte)0x0F), bit4 = Vector256.Create((byte)0x10);
        int blockBytes = hasFifthBit ? Q5_KBytes : Q4_KBytes;
        for (int b = 0; b < blockCount; b++, w += blockBytes, a += Q8_KBytes)
        {
            float d = HalfToSingle(Unsafe.ReadUnaligned<ushort>(w)), dmin = HalfToSingle(Unsafe.ReadUnaligned<ushort>(w + 2));
            var (scales, mins) = UnpackScaleMinK4(w + 4);
            Vector256<byte> scalePairs = ScalePairsAvx2(scales);
            float da0 = Unsafe.ReadUnaligned<float>(a), da1 = Unsafe.ReadUnaligned<float>(a + actBytes);
            float da2 = Unsafe.ReadUnaligned<float>(a + 2 * actBytes), da3 = Unsafe.ReadUnaligned<float>(a + 3 * actBytes);
            acc0 = MultiplyAdd(Vector256.Create(-dmin * da0), MinTermAvx2(mins, a), acc0);
            acc1 = MultiplyAdd(Vector256.Create(-dmin * da1), MinTermAvx2(mins, a + actBytes), acc1);
            acc2 = MultiplyAdd(Vector256.Create(-dmin * da2), MinTermAvx2(mins, a + 2 * actBytes), acc2);
            acc3 = MultiplyAdd(Vector256.Create(-dmin * da3), MinTermAvx2(mins, a + 3 * actBytes), acc3);
            Vector256<int> sumi0 = Vector256<int>.Zero, sumi1 = Vector256<int>.Zero, sumi2 = Vector256<int>.Zero, sumi3 = Vector256<int>.Zero;
            byte* qs = w + (hasFifthBit ? 48 : 16);
            Vector256<ushort> qh = hasFifthBit ? Avx.LoadVector256(w + 16).AsUInt16() : Vector256<ushort>.Zero;
            sbyte* qa = (sbyte*)(a + 4);
            for (int g = 0; g < 4; g++)
            {
                Vector256<byte> packed = Avx.LoadVector256(qs + 32 * g);
                Vector256<byte> codes0 = packed & lowNibbles;
                Vector256<byte> codes1 = Avx2.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & lowNibbles;
                if (hasFifthBit)
                {
                    // Bits 2g and 2g + 1 of each qh byte to bit 4: shift the running copy so bit 2g sits at bit 0.
                    codes0 |= Avx2.ShiftLeftLogical(qh, 4).AsByte() & bit4;
                    codes1 |= Avx2.ShiftLeftLogical(qh, 3).AsByte() & bit4;
                    qh = Avx2.ShiftRightLogical(qh, 2);
                }
                Vector256<short> scale0 = Avx2.Shuffle(scalePairs, ScaleBroadcastMask(2 * g)).AsInt16();
                Vector256<short> scale1 = Avx2.Shuffle(scalePairs, ScaleBroadcastMask(2 * g + 1)).AsInt16();
                sumi0 += Q4_KTokenAvx2(codes0, codes1, scale0, scale1, qa + 64 * g);
                sumi1 += Q4_KTokenAvx2(codes0, codes1, scale0, scale1, qa + actBytes + 64 * g);
                sumi2 += Q4_KTokenAvx2(codes0, codes1, scale0, scale1, qa + 2 * actBytes + 64 * g);
                sumi3 += Q4_KTokenAvx2(codes0, codes1, scale0, scale1, qa + 3 * actBytes + 64 * g);
            }
            acc0 = MultiplyAdd(Vector256.Create(d * da0), Avx.ConvertToVector256Single(sumi0), acc0);
            acc1 = MultiplyAdd(Vector256.Create(d * da1), Avx.ConvertToVector256Single(sumi1), acc1);
            acc2 = MultiplyAdd(Vector256.Create(d * da2), Avx.ConvertToVector256Single(sumi2), acc2);
            acc3 = MultiplyAdd(Vector256.Create(d * da3), Avx.ConvertToVector256Single(sumi3), acc3);
        }
        output[0] = Vector256.Sum(acc0);
        output[stride] = Vector256.Sum(acc1);
        output[2 * stride] = Vector256.Sum(acc2);
        output[3 * stride] = Vector256.Sum(acc3);
    }

    /// <summary>One token's share of a Q4_K/Q5_K sub-block pair: as <see cref="Q4_KPairAvx2"/> with decoded codes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q4_KTokenAvx2(Vector256<byte> codes0, Vector256<byte> codes1, Vector256<short> scale0, Vector256<short> scale1, sbyte* qa) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(codes0, Avx.LoadVector256(qa)), scale0)
        + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(codes1, Avx.LoadVector256(qa + 32)), scale1);

    /// <summary>Sub-blocks 2g and 2g + 1 of a Q4_K/Q5_K block: 32 bytes of qs hold sub-block 2g in their low nibbles
    /// and 2g + 1 in their high nibbles; <paramref name="fifthLow"/>/<paramref name="fifthHigh"/> are 0x10 where the
    /// code has bit 4 set (Q5_K) or zero (Q4_K). Returns 8 int32 lanes summing to sc[2g]·Σ q·qa + sc[2g+1]·Σ q·qa.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q4_KPairAvx2(byte* qs, sbyte* qa, Vector256<byte> scalePairs, int g, Vector256<byte> fifthLow, Vector256<byte> fifthHigh)
    {
        Vector256<byte> lowNibbles = Vector256.Create((byte)0x0F);
        Vector256<byte> packed = Avx.LoadVector256(qs + 32 * g);
        Vector256<byte> codes0 = (packed & lowNibbles) | fifthLow;                                           // 0 … 31
        Vector256<byte> codes1 = (Avx2.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & lowNibbles) | fifthHigh;
        // int16 lanes: pairs of products; |pair| ≤ 2·31·128 = 7936, no saturation.
        Vector256<short> pairs0 = Avx2.MultiplyAddAdjacent(codes0, Avx.LoadVector256(qa + 64 * g));
        Vector256<short> pairs1 = Avx2.MultiplyAddAdjacent(codes1, Avx.LoadVector256(qa + 64 * g + 32));
        // int32 lanes: pairs × the sub-block scale (every int16 lane holds it), ≤ 2·7936·63 = 999936.
        return Avx2.MultiplyAddAdjacent(pairs0, Avx2.Shuffle(scalePairs, ScaleBroadcastMask(2 * g)).AsInt16())
            + Avx2.MultiplyAddAdjacent(pairs1, Avx2.Shuffle(scalePairs, ScaleBroadcastMask(2 * g + 1)).AsInt16());
    }

    /// <summary>The 8 scales as int16 lanes 0–7 of both 128-bit halves, for <see cref="ScaleBroadcastMask"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> ScalePairsAvx2(ulong scales)
    {
        Vector128<short> scales16 = Sse41.ConvertToVector128Int16(Vector128.CreateScalar(scales).AsByte()); // zero-extend
        return Vector256.Create(scales16, scales16).AsByte();
    }

    /// <summary>vpshufb control copying int16 lane <paramref name="j"/> (bytes 2j, 2j + 1) into every int16 lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> ScaleBroadcastMask(int j) => Vector256.Create((ushort)(0x0100 + 0x0202 * j)).AsByte();

    /// <summary>Σ_s m[s]·Σ qa over sub-block s, spread over 8 float lanes (lane s holds sub-block s): the 16 bsums
    /// (int16, one per 16 codes) against the mins duplicated per pair, by one vpmaddwd. Exact: ≤ 2·2048·63.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MinTermAvx2(ulong mins, byte* a)
    {
        // Bytes m0 m0 m1 m1 … m7 m7, zero-extended to 16 int16 lanes.
        Vector128<byte> duplicated = Ssse3.Shuffle(Vector128.CreateScalar(mins).AsByte(), Vector128.Create((byte)0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
        Vector256<short> mins16 = Avx2.ConvertToVector256Int16(duplicated);
        Vector256<short> bsums = Avx.LoadVector256((short*)(a + 260));
        return Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(bsums, mins16));
    }

    private static float Q6_KAvx2(byte* w, byte* a, int blockCount)
    {
        Vector256<float> acc = Vector256<float>.Zero;
        for (int b = 0; b < blockCount; b++, w += Q6_KBytes, a += Q8_KBytes)
        {
            float d = HalfToSingle(Unsafe.ReadUnaligned<ushort>(w + 208)) * Unsafe.ReadUnaligned<float>(a);
            // int16 scales s0 … s15 (sign-extended), lanes [s0..s7 | s8..s15].
            Vector256<short> scales = Avx2.ConvertToVector256Int16(Sse2.LoadVector128((sbyte*)(w + 192)));
            // The codes are stored as q = w + 32 (0 … 63); Σ (q − 32)·qa·s = Σ q·qa·s − 32·Σ_s s·bsum[s], with the
            // bsums one per 16 codes, the scales' own granularity: one vpmaddwd gives 8 lanes of s·bsum pairs.
            Vector256<int> offset = Avx2.MultiplyAddAdjacent(Avx.LoadVector256((short*)(a + 260)), scales);
            // Scales of each half (s[8h] … s[8h + 7]) in both 128-bit halves, for Q6_KQuarterAvx2's shuffles.
            sbyte* qa = (sbyte*)(a + 4);
            Vector256<int> sumi = Q6_KHalfAvx2(w, w + 128, qa, Avx2.Permute2x128(scales, scales, 0x00).AsByte())
                + Q6_KHalfAvx2(w + 64, w + 160, qa + 128, Avx2.Permute2x128(scales, scales, 0x11).AsByte());
            // Exact in int32 (|Σ| ≤ 256·63·128·128 < 2^31); the float conversion rounds only lanes beyond 2^24.
            acc = MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi - Avx2.ShiftLeftLogical(offset, 5)), acc);
        }
        return Vector256.Sum(acc);
    }

    /// <summary>One half (128 elements) of a Q6_K block, from its 64 low-nibble bytes <paramref name="ql"/> and 32
    /// high-pair bytes <paramref name="qhBytes"/>: 8 int32 lanes of Σ s·Σ q·qa over its 8 sub-blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6_KHalfAvx2(byte* ql, byte* qhBytes, sbyte* qa, Vector256<byte> halfScales)
    {
        Vector256<byte> lowNibbles = Vector256.Create((byte)0x0F), highPair = Vector256.Create((byte)0x30);
        Vector256<byte> ql0 = Avx.LoadVector256(ql), ql1 = Avx.LoadVector256(ql + 32);
        Vector256<ushort> qh = Avx.LoadVector256(qhBytes).AsUInt16();
        // Quarter t: low nibbles of ql0/ql1 for t = 0/1, high nibbles for t = 2/3; bits 2t, 2t + 1 of qh moved to
        // bits 4, 5 by 16-bit shifts (a shift by at most 4 never carries across a byte into bits 4–5) and masked.
        Vector256<byte> q0 = (ql0 & lowNibbles) | (Avx2.ShiftLeftLogical(qh, 4).AsByte() & highPair);
        Vector256<byte> q1 = (ql1 & lowNibbles) | (Avx2.ShiftLeftLogical(qh, 2).AsByte() & highPair);
        Vector256<byte> q2 = (Avx2.ShiftRightLogical(ql0.AsUInt16(), 4).AsByte() & lowNibbles) | (qh.AsByte() & highPair);
        Vector256<byte> q3 = (Avx2.ShiftRightLogical(ql1.AsUInt16(), 4).AsByte() & lowNibbles) | (Avx2.ShiftRightLogical(qh, 2).AsByte() & highPair);
        return Q6_KQuarterAvx2(q0, qa, halfScales, 0) + Q6_KQuarterAvx2(q1, qa + 32, halfScales, 1)
            + Q6_KQuarterAvx2(q2, qa + 64, halfScales, 2) + Q6_KQuarterAvx2(q3, qa + 96, halfScales, 3);
    }

    /// <summary>32 codes (0 … 63) of quarter <paramref name="t"/> against their activations: int16 product pairs
    /// (≤ 2·63·128 = 16128), then × the scale of elements 0–15 (lower 128 bits) or 16–31 (upper) into int32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6_KQuarterAvx2(Vector256<byte> codes, sbyte* qa, Vector256<byte> halfScales, int t)
    {
        // Lower 128 bits take int16 lane 2t of the half's scales (bytes 4t, 4t + 1), upper 128 bits lane 2t + 1.
        Vector256<byte> mask = Vector256.Create(Vector128.Create((ushort)(0x0100 + 0x0404 * t)), Vector128.Create((ushort)(0x0302 + 0x0404 * t))).AsByte();
        Vector256<short> pairs = Avx2.MultiplyAddAdjacent(codes, Avx.LoadVector256(qa));
        return Avx2.MultiplyAddAdjacent(pairs, Avx2.Shuffle(halfScales, mask).AsInt16());
    }

    // ---- Portable Vector128: 16 codes at a time, widened to int16 for the products and to int32 for the sums.

    private static float Q4_KVector128(byte* w, byte* a, int blockCount, bool hasFifthBit)
    {
        int blockBytes = hasFifthBit ? Q5_KBytes : Q4_KBytes, qsOffset = hasFifthBit ? 48 : 16;
        Vector128<byte> lowNibbles = Vector128.Create((byte)0x0F), one = Vector128.Create((byte)1);
        Vector128<float> acc = Vector128<float>.Zero;
        float minSum = 0;
        for (int b = 0; b < blockCount; b++, w += blockBytes, a += Q8_KBytes)
        {
            float da = Unsafe.ReadUnaligned<float>(a);
            var (scales, mins) = UnpackScaleMinK4(w + 4);
            short* bsums = (short*)(a + 260);
            int minTerm = 0;
            for (int s = 0; s < 8; s++)
            {
                minTerm += (int)((mins >> (8 * s)) & 0xFF) * (bsums[2 * s] + bsums[2 * s + 1]);
            }
            minSum += HalfToSingle(Unsafe.ReadUnaligned<ushort>(w + 2)) * da * minTerm;
            Vector128<int> sumi = Vector128<int>.Zero;
            sbyte* qa = (sbyte*)(a + 4);
            for (int s = 0; s < 8; s++)
            {
                // Sub-block s: nibble (s odd: high) of qs bytes 32·(s / 2) … + 31; Q5_K's bit 4 is bit s of qh bytes 0 … 31.
                byte* qs = w + qsOffset + 32 * (s / 2);
                Vector128<byte> codes0 = Vector128.ShiftRightLogical(Vector128.Load(qs), 4 * (s % 2)) & lowNibbles;
                Vector128<byte> codes1 = Vector128.ShiftRightLogical(Vector128.Load(qs + 16), 4 * (s % 2)) & lowNibbles;
                if (hasFifthBit)
                {
                    codes0 |= Vector128.ShiftLeft(Vector128.ShiftRightLogical(Vector128.Load(w + 16), s) & one, 4);
                    codes1 |= Vector128.ShiftLeft(Vector128.ShiftRightLogical(Vector128.Load(w + 32), s) & one, 4);
                }
                Vector128<int> products = SumProducts16(codes0, Vector128.Load(qa + 32 * s)) + SumProducts16(codes1, Vector128.Load(qa + 32 * s + 16));
                sumi += products * Vector128.Create((int)((scales >> (8 * s)) & 0xFF));
            }
            acc += Vector128.ConvertToSingle(sumi) * Vector128.Create(HalfToSingle(Unsafe.ReadUnaligned<ushort>(w)) * da);
        }
        return Vector128.Sum(acc) - minSum;
    }

    private static float Q6_KVector128(byte* w, byte* a, int blockCount)
    {
        Vector128<byte> lowNibbles = Vector128.Create((byte)0x0F), three = Vector128.Create((byte)3);
        Vector128<byte> thirtyTwo = Vector128.Create((byte)32);
        Vector128<float> acc = Vector128<float>.Zero;
        for (int b = 0; b < blockCount; b++, w += Q6_KBytes, a += Q8_KBytes)
        {
            float d = HalfToSingle(Unsafe.ReadUnaligned<ushort>(w + 208)) * Unsafe.ReadUnaligned<float>(a);
            sbyte* scales = (sbyte*)(w + 192), qa = (sbyte*)(a + 4);
            Vector128<int> sumi = Vector128<int>.Zero;
            for (int s = 0; s < 16; s++)
            {
                // Sub-block s = elements 16s … 16s + 15 = half h, quarter t, offset l0 = 0 or 16 (layout: Dequantize.Q6_K).
                int h = s / 8, t = s % 8 / 2, l0 = 16 * (s % 2);
                Vector128<byte> low = Vector128.ShiftRightLogical(Vector128.Load(w + 64 * h + 32 * (t % 2) + l0), 4 * (t / 2)) & lowNibbles;
                Vector128<byte> high = Vector128.ShiftRightLogical(Vector128.Load(w + 128 + 32 * h + l0), 2 * t) & three;
                Vector128<byte> codes = low | Vector128.ShiftLeft(high, 4);
                // Σ (q − 32)·qa = Σ q·qa − 32·Σ qa, both exact in int32 lanes.
                Vector128<int> products = SumProducts16(codes, Vector128.Load(qa + 16 * s)) - SumProducts16(thirtyTwo, Vector128.Load(qa + 16 * s));
                sumi += products * Vector128.Create((int)scales[s]);
            }
            acc += Vector128.ConvertToSingle(sumi) * Vector128.Create(d);
        }
        return Vector128.Sum(acc);
    }

    /// <summary>16 products of unsigned codes (≤ 63) and signed activations, summed into 4 exact int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> SumProducts16(Vector128<byte> codes, Vector128<sbyte> activations)
    {
        // int16 products ≤ 63·128 = 8064; lane k of the sum adds elements k and k + 8 (≤ 16128, no overflow).
        Vector128<short> products = Vector128.WidenLower(codes).AsInt16() * Vector128.WidenLower(activations)
            + Vector128.WidenUpper(codes).AsInt16() * Vector128.WidenUpper(activations);
        return Vector128.WidenLower(products) + Vector128.WidenUpper(products);
    }
}
