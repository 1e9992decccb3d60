// AVX-512 (F + BW) prefill kernels for Q4_K and Q6_K weights against Q8_K activations, called from MultiplyKQuant
// (MatMul.Quantized.cs) when Avx512BW is supported and more than one token is multiplied. Same design as the Q4_0/Q8_0
// tiles of MatMul.Avx512.cs: 16 weight rows, one per 32-bit lane; each 256-element super-block of the 16 rows is packed
// once per row tile into a per-thread buffer (codes transposed so lane r holds 4 codes of row r, sub-block scales and
// mins widened per lane, super-scales as f32) and reused for every token. Tests: tests/…/Simd/MatMulTests.cs.

using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sirocco.Kernels.Simd;

// Per super-block, token and row (lane r) the kernels compute, as the reference does (Reference/QuantDot.cs):
//   Q4_K: d·da·Σ_s sc[s]·Σ q·qa − dmin·da·Σ_s m[s]·(bsum[2s] + bsum[2s + 1])
//   Q6_K: d·da·Σ_s sc[s]·(Σ q·qa − 32·bsum[s])        (q = stored code 0 … 63)
// Both integer sums are exact in int32 lanes; each super-block then costs one int32 → f32 conversion per sum (exact
// below 2²⁴; a lane's sum can exceed that only for extreme codes and scales, then rounds by at most 2⁻²⁴ relative) and
// one multiply-add per sum. Lanes never mix, and a row is computed the same way whichever tile or range holds it.
public static unsafe partial class MatMul
{
    private const int QK_K = 256;
    private const int Q8_KBytes = 292; // f32 d, 256 int8 codes at 4, 16 int16 bsums (sums of 16 codes) at 260

    /// <summary>K-quant prefill on AVX-512: 16-row tiles packed once and multiplied against every token, 4 at a time
    /// then singly. Leftover rows go through a tile shifted back over rows already done (see
    /// <see cref="MultiplyPacked16{TP}"/>), so results do not depend on how rows are split.</summary>
    private static void MultiplyKPacked16<TK>(in WeightMatrix w, int rowStart, int rowEnd, byte* act, int actBytes, int tokenCount, float* output, int stride)
        where TK : struct, IKQuantTile16
    {
        Debug.Assert(w.Rows >= Avx512TileRows);
        int blockCount = w.Columns / QK_K;
        long rowBytes = w.RowBytes;
        byte* packed = PackBuffer((long)blockCount * TK.PackedBlockBytes);
        float* partial = stackalloc float[4 * Avx512TileRows]; // [4 tokens][16 rows]: a leftover tile's results
        for (int r = rowStart; r < rowEnd; r += Avx512TileRows)
        {
            int tile = Math.Min(r, w.Rows - Avx512TileRows), skip = r - tile, keep = Math.Min(rowEnd - r, Avx512TileRows);
            bool whole = skip == 0 && keep == Avx512TileRows;
            byte* row0 = w.RowPointer(tile);
            for (int b = 0; b < blockCount; b++)
            {
                TK.Pack(row0 + (long)b * TK.BlockBytes, rowBytes, packed + (long)b * TK.PackedBlockBytes);
            }
            for (int t = 0; t < tokenCount; t += 4)
            {
                int count = Math.Min(4, tokenCount - t);
                byte* a = act + (long)t * actBytes;
                float* o = whole ? output + (long)t * stride + r : partial;
                int oStride = whole ? stride : Avx512TileRows;
                if (count == 4)
                {
                    TK.Tile16x4(packed, blockCount, a, actBytes, o, oStride);
                }
                else
                {
                    for (int i = 0; i < count; i++)
                    {
                        KTile16x1<TK>(packed, blockCount, a + (long)i * actBytes, o + i * oStride);
                    }
                }
                if (!whole)
                {
                    for (int i = 0; i < count; i++)
                    {
                        new ReadOnlySpan<float>(partial + i * Avx512TileRows + skip, keep).CopyTo(new Span<float>(output + (long)(t + i) * stride + r, keep));
                    }
                }
            }
        }
    }

    /// <summary>A packed tile × 1 token (the tokens after the groups of 4).</summary>
    private static void KTile16x1<TK>(byte* packed, int blockCount, byte* act, float* output) where TK : struct, IKQuantTile16
    {
        Vector512<float> acc = Vector512<float>.Zero;
        for (int b = 0; b < blockCount; b++, packed += TK.PackedBlockBytes, act += Q8_KBytes)
        {
            acc = TK.Block16x1(packed, act, acc);
        }
        acc.Store(output);
    }

    /// <summary>f16 values in the low 16 bits of each lane as f32 (the conversion of <see cref="QuantDot.HalfToSingle"/>
    /// vectorised: exact for every f16, infinities and NaNs included).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> HalfToSingle16(Vector512<uint> h)
    {
        Vector512<uint> shifted = Vector512.ShiftLeft(h & Vector512.Create(0x7FFFu), 13);
        // Normal and subnormal halves: the exponent rebias is a multiplication by 2^112 (exact).
        Vector512<uint> finite = (shifted.AsSingle() * Vector512.Create(5.192296858534828E+33f)).AsUInt32();
        Vector512<uint> special = Vector512.GreaterThanOrEqual(shifted, Vector512.Create(0x7C00u << 13));
        Vector512<uint> magnitude = Vector512.ConditionalSelect(special, shifted | Vector512.Create(0x7F800000u), finite);
        return (magnitude | Vector512.ShiftLeft(h & Vector512.Create(0x8000u), 16)).AsSingle();
    }

    /// <summary>Each lane's low 16 bits copied into its high 16 bits: an int16 pair (v, v) for vpmaddwd.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Twice16(Vector512<uint> v) => (v & Vector512.Create(0xFFFFu)) | Vector512.ShiftLeft(v, 16);

    /// <summary>Two int16 values (<paramref name="lo"/>, <paramref name="hi"/>: the low 16 bits of each lane) as one
    /// int16 pair per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Pair16(Vector512<uint> lo, Vector512<uint> hi) => (lo & Vector512.Create(0xFFFFu)) | Vector512.ShiftLeft(hi, 16);

    /// <summary>The int16 pair at <paramref name="p"/> (one dword of the activation) in every lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> BroadcastPair(byte* p) => Vector512.Create(Unsafe.ReadUnaligned<int>(p)).AsInt16();

    /// <summary>A K-quant's 16-row packed super-block: its layout, how to build it and how to multiply it.</summary>
    private interface IKQuantTile16
    {
        /// <summary>Bytes of one 256-element super-block in the weight row.</summary>
        static abstract int BlockBytes { get; }

        /// <summary>Bytes of one packed super-block of 16 rows (a multiple of 64).</summary>
        static abstract int PackedBlockBytes { get; }

        /// <summary>Packs super-block <paramref name="block"/> of row 0 and the same super-block of rows 1 … 15.</summary>
        static abstract void Pack(byte* block, long rowBytes, byte* packed);

        /// <summary>Packed tile × 4 Q8_K rows (<paramref name="actBytes"/> apart); token t's 16 results at
        /// <paramref name="output"/> + t·<paramref name="stride"/>.</summary>
        static abstract void Tile16x4(byte* packed, int blockCount, byte* act, int actBytes, float* output, int stride);

        /// <summary>acc + one packed super-block × one Q8_K super-block (<paramref name="act"/>), with the per-token
        /// arithmetic of <see cref="Tile16x4"/> (same bits).</summary>
        static abstract Vector512<float> Block16x1(byte* packed, byte* act, Vector512<float> acc);
    }

    /// <summary>Q4_K packed, 5248 bytes per super-block:
    /// <code>
    ///   [0, 4096)     codes    sub-block s, vector i at 512s + 64i: in dword lane r the codes (0 … 15) of elements
    ///                          32s + 4i … 32s + 4i + 3 of row r
    ///   [4096, 4608)  scales   vector s: int16 pair (sc[s], sc[s]) in lane r
    ///   [4608, 5120)  mins     vector s: int16 pair (m[s], m[s]) in lane r
    ///   [5120, 5184)  d        f32 per lane;   [5184, 5248)  dmin  f32 per lane
    /// </code>
    /// Per sub-block and token: 8 vpmaddubsw (codes × the activation dword broadcast; int16 pairs ≤ 2·15·127) summed
    /// in int16 (≤ 8·3810 = 30480), then one vpmaddwd by (sc, sc) into int32 (≤ 63·60960). The min term: vpmaddwd of
    /// (m[s], m[s]) with the activation's bsum pair s, whose sum is Σ qa over sub-block s.</summary>
    private readonly struct Q4_KPacked16 : IKQuantTile16, IQ4_KSubBlock
    {
        private const int ScalesOffset = 4096, MinsOffset = 4608, DOffset = 5120, DminOffset = 5184;

        public static int BlockBytes => 144;

        public static int PackedBlockBytes => 5248;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Pack(byte* block, long rowBytes, byte* packed) => Pack(block, rowBytes, packed, fifthBits: false);

        /// <summary>Packs a Q4_K block, or with <paramref name="fifthBits"/> a Q5_K block (32 bytes of fifth bits
        /// before the nibbles: bit s of byte l is bit 4 of element l of sub-block s).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal static void Pack(byte* block, long rowBytes, byte* packed, bool fifthBits)
        {
            // Bytes 0 … 15 of each row's block: head = d | dmin << 16, then the 12 packed scale/min bytes as u0, u1, u2
            // (layout: Reference/Dequantize.ScaleMinK4; the unpacking is QuantDot.UnpackScaleMinK4's, per lane).
            Transpose16x4(block, rowBytes, out var head, out var u0, out var u1, out var u2);
            ((Vector512<float>*)(packed + DOffset))[0] = HalfToSingle16(head);
            ((Vector512<float>*)(packed + DminOffset))[0] = HalfToSingle16(Vector512.ShiftRightLogical(head, 16));
            Vector512<uint> six = Vector512.Create(0x3Fu), four = Vector512.Create(0x0Fu), two = Vector512.Create(3u);
            Vector512<uint>* scales = (Vector512<uint>*)(packed + ScalesOffset), mins = (Vector512<uint>*)(packed + MinsOffset);
            for (int s = 0; s < 4; s++)
            {
                scales[s] = Twice16(Vector512.ShiftRightLogical(u0, 8 * s) & six);
                mins[s] = Twice16(Vector512.ShiftRightLogical(u1, 8 * s) & six);
                scales[s + 4] = Twice16((Vector512.ShiftRightLogical(u2, 8 * s) & four) | Vector512.ShiftLeft(Vector512.ShiftRightLogical(u0, 8 * s + 6) & two, 4));
                mins[s + 4] = Twice16((Vector512.ShiftRightLogical(u2, 8 * s + 4) & four) | Vector512.ShiftLeft(Vector512.ShiftRightLogical(u1, 8 * s + 6) & two, 4));
            }
            // qs group g (32 bytes): low nibbles are sub-block 2g, high nibbles 2g + 1; its half j (16 bytes) holds
            // elements 16j … 16j + 15 of both, so dword k of the half is code vector 4j + k.
            Vector512<uint> nibble = Vector512.Create(0x0F0F0F0Fu), bit4 = Vector512.Create(0x10101010u);
            Vector512<uint>* codes = (Vector512<uint>*)packed;
            byte* qs = block + (fifthBits ? 48 : 16);
            for (int j = 0; j < 2; j++)
            {
                // Q5_K: dword k of the qh transpose holds the fifth bits of elements 16j + 4k … of every sub-block.
                Vector512<uint> h0 = default, h1 = default, h2 = default, h3 = default;
                if (fifthBits)
                {
                    Transpose16x4(block + 16 + 16 * j, rowBytes, out h0, out h1, out h2, out h3);
                }
                for (int g = 0; g < 4; g++)
                {
                    Transpose16x4(qs + 32 * g + 16 * j, rowBytes, out var p0, out var p1, out var p2, out var p3);
                    Vector512<uint>* low = codes + 16 * g + 4 * j, high = low + 8;
                    low[0] = p0 & nibble;
                    low[1] = p1 & nibble;
                    low[2] = p2 & nibble;
                    low[3] = p3 & nibble;
                    high[0] = Vector512.ShiftRightLogical(p0, 4) & nibble;
                    high[1] = Vector512.ShiftRightLogical(p1, 4) & nibble;
                    high[2] = Vector512.ShiftRightLogical(p2, 4) & nibble;
                    high[3] = Vector512.ShiftRightLogical(p3, 4) & nibble;
                    if (fifthBits)
                    {
                        low[0] |= FifthBit(h0, 2 * g) & bit4;
                        low[1] |= FifthBit(h1, 2 * g) & bit4;
                        low[2] |= FifthBit(h2, 2 * g) & bit4;
                        low[3] |= FifthBit(h3, 2 * g) & bit4;
                        high[0] |= FifthBit(h0, 2 * g + 1) & bit4;
                        high[1] |= FifthBit(h1, 2 * g + 1) & bit4;
                        high[2] |= FifthBit(h2, 2 * g + 1) & bit4;
                        high[3] |= FifthBit(h3, 2 * g + 1) & bit4;
                    }
                }
            }
        }

        /// <summary>Bit <paramref name="s"/> of each byte moved to bit 4 (other bits garbage): a 32-bit shift by at most
        /// 4 never carries another byte's bit into bit 4.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<uint> FifthBit(Vector512<uint> h, int s) =>
            s <= 4 ? Vector512.ShiftLeft(h, 4 - s) : Vector512.ShiftRightLogical(h, s - 4);

        public static void Tile16x4(byte* packed, int blockCount, byte* act, int actBytes, float* output, int stride) =>
            Tile16x4<Q4_KPacked16>(packed, blockCount, act, actBytes, output, stride);

        public static Vector512<float> Block16x1(byte* packed, byte* act, Vector512<float> acc) =>
            Block16x1<Q4_KPacked16>(packed, act, acc);

        /// <summary>sc·Σ q·qa over sub-block s, per lane: 8 vpmaddubsw summed in int16, one vpmaddwd by (sc, sc).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<int> SubBlock(
            Vector512<byte> c0, Vector512<byte> c1, Vector512<byte> c2, Vector512<byte> c3,
            Vector512<byte> c4, Vector512<byte> c5, Vector512<byte> c6, Vector512<byte> c7, Vector512<short> scale, byte* codes) =>
            Avx512BW.MultiplyAddAdjacent(Q4_0Packed.Sum16(c0, c1, c2, c3, c4, c5, c6, c7, codes), scale);

        /// <summary>Tile16x4 for the Q4_K layout (Q4_K and Q5_K), <typeparamref name="TS"/> giving each sub-block's sum.</summary>
        internal static void Tile16x4<TS>(byte* packed, int blockCount, byte* act, int actBytes, float* output, int stride) where TS : struct, IQ4_KSubBlock
        {
            Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero, acc2 = Vector512<float>.Zero, acc3 = Vector512<float>.Zero;
            for (int b = 0; b < blockCount; b++, packed += PackedBlockBytes, act += Q8_KBytes)
            {
                byte* a0 = act, a1 = act + actBytes, a2 = act + 2 * actBytes, a3 = act + 3 * actBytes;
                Vector512<int> sum0 = Vector512<int>.Zero, sum1 = Vector512<int>.Zero, sum2 = Vector512<int>.Zero, sum3 = Vector512<int>.Zero;
                Vector512<int> min0 = Vector512<int>.Zero, min1 = Vector512<int>.Zero, min2 = Vector512<int>.Zero, min3 = Vector512<int>.Zero;
                for (int s = 0; s < 8; s++)
                {
                    // The sub-block's 8 code vectors stay in registers for the 4 tokens.
                    Vector512<byte>* c = (Vector512<byte>*)(packed + 512 * s);
                    Vector512<byte> c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], c4 = c[4], c5 = c[5], c6 = c[6], c7 = c[7];
                    Vector512<short> scale = ((Vector512<short>*)(packed + ScalesOffset))[s], m = ((Vector512<short>*)(packed + MinsOffset))[s];
                    int q = 4 + 32 * s, bsum = 260 + 4 * s;
                    sum0 += TS.SubBlock(c0, c1, c2, c3, c4, c5, c6, c7, scale, a0 + q);
                    sum1 += TS.SubBlock(c0, c1, c2, c3, c4, c5, c6, c7, scale, a1 + q);
                    sum2 += TS.SubBlock(c0, c1, c2, c3, c4, c5, c6, c7, scale, a2 + q);
                    sum3 += TS.SubBlock(c0, c1, c2, c3, c4, c5, c6, c7, scale, a3 + q);
                    min0 += Avx512BW.MultiplyAddAdjacent(m, BroadcastPair(a0 + bsum));
                    min1 += Avx512BW.MultiplyAddAdjacent(m, BroadcastPair(a1 + bsum));
                    min2 += Avx512BW.MultiplyAddAdjacent(m, BroadcastPair(a2 + bsum));
                    min3 += Avx512BW.MultiplyAddAdjacent(m, BroadcastPair(a3 + bsum));
                }
                Vector512<float> d = ((Vector512<float>*)(packed + DOffset))[0], dmin = ((Vector512<float>*)(packed + DminOffset))[0];
                acc0 = Accumulate(sum0, min0, d, dmin, *(float*)a0, acc0);
                acc1 = Accumulate(sum1, min1, d, dmin, *(float*)a1, acc1);
                acc2 = Accumulate(sum2, min2, d, dmin, *(float*)a2, acc2);
                acc3 = Accumulate(sum3, min3, d, dmin, *(float*)a3, acc3);
            }
            acc0.Store(output);
            acc1.Store(output + stride);
            acc2.Store(output + 2 * stride);
            acc3.Store(output + 3 * stride);
        }

        /// <summary>Block16x1 for the Q4_K layout, with the per-token arithmetic of <see cref="Tile16x4{TS}"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal static Vector512<float> Block16x1<TS>(byte* packed, byte* act, Vector512<float> acc) where TS : struct, IQ4_KSubBlock
        {
            {
                Vector512<int> sum = Vector512<int>.Zero, min = Vector512<int>.Zero;
                for (int s = 0; s < 8; s++)
                {
                    Vector512<byte>* c = (Vector512<byte>*)(packed + 512 * s);
                    Vector512<short> scale = ((Vector512<short>*)(packed + ScalesOffset))[s], m = ((Vector512<short>*)(packed + MinsOffset))[s];
                    sum += TS.SubBlock(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], scale, act + 4 + 32 * s);
                    min += Avx512BW.MultiplyAddAdjacent(m, BroadcastPair(act + 260 + 4 * s));
                }
                return Accumulate(sum, min, ((Vector512<float>*)(packed + DOffset))[0], ((Vector512<float>*)(packed + DminOffset))[0], *(float*)act, acc);
            }
        }

        /// <summary>acc + d·da·sum − dmin·da·min, lane by lane.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Accumulate(Vector512<int> sum, Vector512<int> min, Vector512<float> d, Vector512<float> dmin, float da, Vector512<float> acc)
        {
            Vector512<float> scale = Vector512.Create(da);
            acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sum), d * scale, acc);
            return Avx512F.FusedMultiplyAddNegated(Avx512F.ConvertToVector512Single(min), dmin * scale, acc);
        }
    }

    /// <summary>Q6_K packed, 5696 bytes per super-block:
    /// <code>
    ///   [0, 4096)     codes    sub-block s (16 elements), vector i at 256s + 64i: in dword lane r the stored codes
    ///                          (0 … 63) of elements 16s + 4i … 16s + 4i + 3 of row r
    ///   [4096, 5120)  scales   vector s: int16 pair (sc[s], sc[s]) in lane r
    ///   [5120, 5632)  offsets  vector k: int16 pair (−32·sc[2k], −32·sc[2k + 1]) in lane r (|·| ≤ 4096)
    ///   [5632, 5696)  d        f32 per lane
    /// </code>
    /// Per sub-block and token: 4 vpmaddubsw (int16 pairs ≤ 2·63·127 = 16002) summed two by two (≤ 32004, exact in
    /// int16), each sum times (sc, sc) by vpmaddwd into int32. The −32 of every code: vpmaddwd of offset pair k with
    /// the activation's bsum pair k (bsum[s] = Σ qa over sub-block s), 2·4096·2032 at most per lane.</summary>
    private readonly struct Q6_KPacked16 : IKQuantTile16
    {
        private const int ScalesOffset = 4096, OffsetsOffset = 5120, DOffset = 5632;

        public static int BlockBytes => 210;

        public static int PackedBlockBytes => 5696;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Pack(byte* block, long rowBytes, byte* packed)
        {
            // Bytes 194 … 209 (a load at 208 would run past the block): dwords 0 … 2 hold scales 2 … 13, dword 3
            // scales 14, 15 and d. Bytes 192 … 207 give every scale: dword k holds sc[4k] … sc[4k + 3].
            Transpose16x4(block + 194, rowBytes, out _, out _, out _, out var tail);
            ((Vector512<float>*)(packed + DOffset))[0] = HalfToSingle16(Vector512.ShiftRightLogical(tail, 16));
            Transpose16x4(block + 192, rowBytes, out var s0, out var s1, out var s2, out var s3);
            Vector512<uint>* scales = (Vector512<uint>*)(packed + ScalesOffset), offsets = (Vector512<uint>*)(packed + OffsetsOffset);
            for (int k = 0; k < 4; k++)
            {
                Vector512<int> dword = (k == 0 ? s0 : k == 1 ? s1 : k == 2 ? s2 : s3).AsInt32();
                // Byte j sign-extended: moved to the top byte, then shifted back arithmetically.
                Vector512<int> sc0 = Vector512.ShiftRightArithmetic(Vector512.ShiftLeft(dword, 24), 24);
                Vector512<int> sc1 = Vector512.ShiftRightArithmetic(Vector512.ShiftLeft(dword, 16), 24);
                Vector512<int> sc2 = Vector512.ShiftRightArithmetic(Vector512.ShiftLeft(dword, 8), 24);
                Vector512<int> sc3 = Vector512.ShiftRightArithmetic(dword, 24);
                scales[4 * k] = Twice16(sc0.AsUInt32());
                scales[4 * k + 1] = Twice16(sc1.AsUInt32());
                scales[4 * k + 2] = Twice16(sc2.AsUInt32());
                scales[4 * k + 3] = Twice16(sc3.AsUInt32());
                offsets[2 * k] = Pair16((sc0 * -32).AsUInt32(), (sc1 * -32).AsUInt32());
                offsets[2 * k + 1] = Pair16((sc2 * -32).AsUInt32(), (sc3 * -32).AsUInt32());
            }
            // Element e = 128h + 32t + l: low nibble t / 2 of ql[64h + 32(t % 2) + l], high pair bits 2t of qh[32h + l].
            // For each half h and l-half j (l = 16j … 16j + 15), dword k of the three transposes is code vector k of
            // sub-block 8h + 2t + j. 32-bit shifts move bits across bytes, but each byte's mask keeps only its own.
            Vector512<uint> nibble = Vector512.Create(0x0F0F0F0Fu), pair = Vector512.Create(0x30303030u);
            Vector512<uint>* codes = (Vector512<uint>*)packed;
            for (int h = 0; h < 2; h++)
            {
                for (int j = 0; j < 2; j++)
                {
                    Transpose16x4(block + 64 * h + 16 * j, rowBytes, out var a0, out var a1, out var a2, out var a3);
                    Transpose16x4(block + 64 * h + 32 + 16 * j, rowBytes, out var b0, out var b1, out var b2, out var b3);
                    Transpose16x4(block + 128 + 32 * h + 16 * j, rowBytes, out var h0, out var h1, out var h2, out var h3);
                    Vector512<uint>* sub = codes + 4 * (8 * h + j); // sub-block 8h + j, then + 2t sub-blocks = + 8t vectors
                    Quarters(a0, b0, h0, sub, nibble, pair);
                    Quarters(a1, b1, h1, sub + 1, nibble, pair);
                    Quarters(a2, b2, h2, sub + 2, nibble, pair);
                    Quarters(a3, b3, h3, sub + 3, nibble, pair);
                }
            }
        }

        /// <summary>One code vector of each quarter t = 0 … 3 (8t vectors apart) from the ql dwords
        /// <paramref name="a"/> (quarters 0, 2), <paramref name="b"/> (1, 3) and the qh dword <paramref name="h"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Quarters(Vector512<uint> a, Vector512<uint> b, Vector512<uint> h, Vector512<uint>* v, Vector512<uint> nibble, Vector512<uint> pair)
        {
            v[0] = (a & nibble) | (Vector512.ShiftLeft(h, 4) & pair);
            v[8] = (b & nibble) | (Vector512.ShiftLeft(h, 2) & pair);
            v[16] = (Vector512.ShiftRightLogical(a, 4) & nibble) | (h & pair);
            v[24] = (Vector512.ShiftRightLogical(b, 4) & nibble) | (Vector512.ShiftRightLogical(h, 2) & pair);
        }

        public static void Tile16x4(byte* packed, int blockCount, byte* act, int actBytes, float* output, int stride)
        {
            Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero, acc2 = Vector512<float>.Zero, acc3 = Vector512<float>.Zero;
            for (int b = 0; b < blockCount; b++, packed += PackedBlockBytes, act += Q8_KBytes)
            {
                byte* a0 = act, a1 = act + actBytes, a2 = act + 2 * actBytes, a3 = act + 3 * actBytes;
                Vector512<int> sum0 = Vector512<int>.Zero, sum1 = Vector512<int>.Zero, sum2 = Vector512<int>.Zero, sum3 = Vector512<int>.Zero;
                for (int s = 0; s < 16; s++)
                {
                    Vector512<byte>* c = (Vector512<byte>*)(packed + 256 * s);
                    Vector512<byte> c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
                    Vector512<short> scale = ((Vector512<short>*)(packed + ScalesOffset))[s];
                    int q = 4 + 16 * s;
                    sum0 += SubBlock(c0, c1, c2, c3, scale, a0 + q);
                    sum1 += SubBlock(c0, c1, c2, c3, scale, a1 + q);
                    sum2 += SubBlock(c0, c1, c2, c3, scale, a2 + q);
                    sum3 += SubBlock(c0, c1, c2, c3, scale, a3 + q);
                }
                for (int k = 0; k < 8; k++)
                {
                    Vector512<short> offset = ((Vector512<short>*)(packed + OffsetsOffset))[k];
                    int bsum = 260 + 4 * k;
                    sum0 += Avx512BW.MultiplyAddAdjacent(offset, BroadcastPair(a0 + bsum));
                    sum1 += Avx512BW.MultiplyAddAdjacent(offset, BroadcastPair(a1 + bsum));
                    sum2 += Avx512BW.MultiplyAddAdjacent(offset, BroadcastPair(a2 + bsum));
                    sum3 += Avx512BW.MultiplyAddAdjacent(offset, BroadcastPair(a3 + bsum));
                }
                Vector512<float> d = ((Vector512<float>*)(packed + DOffset))[0];
                acc0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sum0), d * Vector512.Create(*(float*)a0), acc0);
                acc1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sum1), d * Vector512.Create(*(float*)a1), acc1);
                acc2 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sum2), d * Vector512.Create(*(float*)a2), acc2);
                acc3 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sum3), d * Vector512.Create(*(float*)a3), acc3);
            }
            acc0.Store(output);
            acc1.Store(output + stride);
            acc2.Store(output + 2 * stride);
            acc3.Store(output + 3 * stride);
        }

        public static Vector512<float> Block16x1(byte* packed, byte* act, Vector512<float> acc)
        {
            {
                Vector512<int> sum = Vector512<int>.Zero;
                for (int s = 0; s < 16; s++)
                {
                    Vector512<byte>* c = (Vector512<byte>*)(packed + 256 * s);
                    sum += SubBlock(c[0], c[1], c[2], c[3], ((Vector512<short>*)(packed + ScalesOffset))[s], act + 4 + 16 * s);
                }
                for (int k = 0; k < 8; k++)
                {
                    sum += Avx512BW.MultiplyAddAdjacent(((Vector512<short>*)(packed + OffsetsOffset))[k], BroadcastPair(act + 260 + 4 * k));
                }
                Vector512<float> d = ((Vector512<float>*)(packed + DOffset))[0];
                return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sum), d * Vector512.Create(*(float*)act), acc);
            }
        }

        /// <summary>sc·Σ q·qa over one 16-element sub-block, per lane (int32, exact).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<int> SubBlock(Vector512<byte> c0, Vector512<byte> c1, Vector512<byte> c2, Vector512<byte> c3, Vector512<short> scale, byte* codes)
        {
            Vector512<short> x01 = Avx512BW.MultiplyAddAdjacent(c0, Broadcast4(codes)) + Avx512BW.MultiplyAddAdjacent(c1, Broadcast4(codes + 4));
            Vector512<short> x23 = Avx512BW.MultiplyAddAdjacent(c2, Broadcast4(codes + 8)) + Avx512BW.MultiplyAddAdjacent(c3, Broadcast4(codes + 12));
            return Avx512BW.MultiplyAddAdjacent(x01, scale) + Avx512BW.MultiplyAddAdjacent(x23, scale);
        }
    }

    /// <summary>The per-lane sum sc·Σ q·qa of one 32-element sub-block in the Q4_K packed layout.</summary>
    private interface IQ4_KSubBlock
    {
        /// <summary>Code vectors <paramref name="c0"/> … <paramref name="c7"/> against the activation codes at
        /// <paramref name="codes"/>, times the (sc, sc) pairs <paramref name="scale"/>; exact int32 per lane.</summary>
        static abstract Vector512<int> SubBlock(
            Vector512<byte> c0, Vector512<byte> c1, Vector512<byte> c2, Vector512<byte> c3,
            Vector512<byte> c4, Vector512<byte> c5, Vector512<byte> c6, Vector512<byte> c7, Vector512<short> scale, byte* codes);
    }

    /// <summary>Q5_K packed in the Q4_K layout (<see cref="Q4_KPacked16"/>) with codes 0 … 31. Product pairs reach
    /// 2·31·127 = 7874, so the 8 vpmaddubsw are summed in two int16 groups of 4 (≤ 31496), each then multiplied by
    /// (sc, sc) into int32.</summary>
    private readonly struct Q5_KPacked16 : IKQuantTile16, IQ4_KSubBlock
    {
        public static int BlockBytes => 176;

        public static int PackedBlockBytes => Q4_KPacked16.PackedBlockBytes;

        public static void Pack(byte* block, long rowBytes, byte* packed) => Q4_KPacked16.Pack(block, rowBytes, packed, fifthBits: true);

        public static void Tile16x4(byte* packed, int blockCount, byte* act, int actBytes, float* output, int stride) =>
            Q4_KPacked16.Tile16x4<Q5_KPacked16>(packed, blockCount, act, actBytes, output, stride);

        public static Vector512<float> Block16x1(byte* packed, byte* act, Vector512<float> acc) =>
            Q4_KPacked16.Block16x1<Q5_KPacked16>(packed, act, acc);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<int> SubBlock(
            Vector512<byte> c0, Vector512<byte> c1, Vector512<byte> c2, Vector512<byte> c3,
            Vector512<byte> c4, Vector512<byte> c5, Vector512<byte> c6, Vector512<byte> c7, Vector512<short> scale, byte* codes)
        {
            Vector512<short> x03 = (Avx512BW.MultiplyAddAdjacent(c0, Broadcast4(codes)) + Avx512BW.MultiplyAddAdjacent(c1, Broadcast4(codes + 4)))
                + (Avx512BW.MultiplyAddAdjacent(c2, Broadcast4(codes + 8)) + Avx512BW.MultiplyAddAdjacent(c3, Broadcast4(codes + 12)));
            Vector512<short> x47 = (Avx512BW.MultiplyAddAdjacent(c4, Broadcast4(codes + 16)) + Avx512BW.MultiplyAddAdjacent(c5, Broadcast4(codes + 20)))
                + (Avx512BW.MultiplyAddAdjacent(c6, Broadcast4(codes + 24)) + Avx512BW.MultiplyAddAdjacent(c7, Broadcast4(codes + 28)));
            return Avx512BW.MultiplyAddAdjacent(x03, scale) + Avx512BW.MultiplyAddAdjacent(x47, scale);
        }
    }
}
