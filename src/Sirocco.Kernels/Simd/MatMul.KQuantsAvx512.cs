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
                        TK.Tile16x1(packed, blockCount, a + (long)i * actBytes, o + i * oStride);
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

        /// <summary>Packed tile × 1 Q8_K row, with the per-token arithmetic of <see cref="Tile16x4"/> (same bits).</summary>
        static abstract void Tile16x1(byte* packed, int blockCount, byte* act, float* output);
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
    private readonly struct Q4_KPacked16 : IKQuantTile16
    {
        private const int ScalesOffset = 4096, MinsOffset = 4608, DOffset = 5120, DminOffset = 5184;

        public static int BlockBytes => 144;

        public static int PackedBlockBytes => 5248;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Pack(byte* block, long rowBytes, byte* packed)
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
            Vector512<byte> nibble = Vector512.Create((byte)0x0F);
            Vector512<byte>* codes = (Vector512<byte>*)packed;
            for (int g = 0; g < 4; g++)
            {
                for (int j = 0; j < 2; j++)
                {
                    Transpose16x4(block + 16 + 32 * g + 16 * j, rowBytes, out var p0, out var p1, out var p2, out var p3);
                    Vector512<byte>* low = codes + 16 * g + 4 * j, high = low + 8;
                    low[0] = p0.AsByte() & nibble;
                    low[1] = p1.AsByte() & nibble;
                    low[2] = p2.AsByte() & nibble;
                    low[3] = p3.AsByte() & nibble;
                    high[0] = Vector512.ShiftRightLogical(p0, 4).AsByte() & nibble;
                    high[1] = Vector512.ShiftRightLogical(p1, 4).AsByte() & nibble;
                    high[2] = Vector512.ShiftRightLogical(p2, 4).AsByte() & nibble;
                    high[3] = Vector512.ShiftRightLogical(p3, 4).AsByte() & nibble;
                }
            }
        }

        public static void Tile16x4(byte* packed, int blockCount, byte* act, int actBytes, float* output, int stride)
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
                    sum0 += Avx512BW.MultiplyAddAdjacent(Q4_0Packed.Sum16(c0, c1, c2, c3, c4, c5, c6, c7, a0 + q), scale);
                    sum1 += Avx512BW.MultiplyAddAdjacent(Q4_0Packed.Sum16(c0, c1, c2, c3, c4, c5, c6, c7, a1 + q), scale);
                    sum2 += Avx512BW.MultiplyAddAdjacent(Q4_0Packed.Sum16(c0, c1, c2, c3, c4, c5, c6, c7, a2 + q), scale);
                    sum3 += Avx512BW.MultiplyAddAdjacent(Q4_0Packed.Sum16(c0, c1, c2, c3, c4, c5, c6, c7, a3 + q), scale);
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

        public static void Tile16x1(byte* packed, int blockCount, byte* act, float* output)
        {
            Vector512<float> acc = Vector512<float>.Zero;
            for (int b = 0; b < blockCount; b++, packed += PackedBlockBytes, act += Q8_KBytes)
            {
                Vector512<int> sum = Vector512<int>.Zero, min = Vector512<int>.Zero;
                for (int s = 0; s < 8; s++)
                {
                    Vector512<byte>* c = (Vector512<byte>*)(packed + 512 * s);
                    Vector512<short> scale = ((Vector512<short>*)(packed + ScalesOffset))[s], m = ((Vector512<short>*)(packed + MinsOffset))[s];
                    sum += Avx512BW.MultiplyAddAdjacent(Q4_0Packed.Sum16(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], act + 4 + 32 * s), scale);
                    min += Avx512BW.MultiplyAddAdjacent(m, BroadcastPair(act + 260 + 4 * s));
                }
                acc = Accumulate(sum, min, ((Vector512<float>*)(packed + DOffset))[0], ((Vector512<float>*)(packed + DminOffset))[0], *(float*)act, acc);
            }
            acc.Store(output);
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
}
