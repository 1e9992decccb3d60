// AVX-512 (F + BW) kernels for Q4_0 and Q8_0 weights against the planar Q8 activations, called from
// MultiplyPlanarQ8 (MatMul.Quantized.cs) when Avx512BW is supported. Tiles of 16 weight rows: each 32-element block of
// the 16 rows is transposed on the fly so that lane r of a 512-bit register holds 4 codes of row r; one activation
// dword broadcast to all lanes then multiplies 16 rows at once, and the per-block float work (convert, scale,
// accumulate) is shared by the 16 rows instead of being paid per row. Prefill packs a whole row tile once into a
// per-thread buffer and reuses it for every token; Q4_0 decode packs and multiplies in the same pass. Design and
// measurements: docs/QUANTIZATION.md (matrix products), docs/PERFORMANCE.md; tests: tests/…/Simd/MatMulTests.cs.

using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sirocco.Kernels.Simd;

// Packed row tile (16 rows r0 … r15, nb blocks), 576 bytes per block b at 576b, for Q4_0 and Q8_0 alike:
//   8 × 64 bytes  codes: vector i (i = 0 … 7) holds in dword lane r the unsigned codes of elements 4i … 4i + 3 of
//                 row r's block b (byte k of the dword: element 4i + k); Q4_0: the nibble (0 … 15), Q8_0: code + 128
//   64 bytes      scales: f32 lane r = the f16 scale of row r's block b
// Per block, token and row the exact integer Σ_j q_j·a_j (q unsigned) is computed for 16 rows at once (Q4_0Packed,
// Q8_0PackedVnni); then, as in the AVX2 tiles, acc += dw·(da·Σ q·qa − offset·da·Σqa), the second term being
// −offset × the activation's scaledSum. Lanes never mix, so each row's result is independent of its tile.
public static unsafe partial class MatMul
{
    /// <summary>Weight rows per AVX-512 tile: one per 32-bit lane of a 512-bit register.</summary>
    private const int Avx512TileRows = 16;

    /// <summary>Up to this many tokens, Q4_0 products unpack weights in registers per call (groups of 4 tokens, one
    /// pass over the weights each) instead of packing tiles; measured with `sirocco bench --parallel` (PERFORMANCE.md).</summary>
    private const int SmallBatchTokens = 8;

    /// <summary>Per-thread buffer for a packed row tile (grown on demand, pinned, 64-byte aligned).</summary>
    [ThreadStatic]
    private static byte[]? t_packBuffer;

    /// <summary>Q4_0 on AVX-512: 16-row tiles, packed once for prefill or in passing for one token. Rows left over
    /// (fewer than 16) are computed by a tile shifted back to overlap rows already done (or rows outside the range,
    /// which are only read), and only the new lanes are stored. Every row thus goes through the same lane arithmetic
    /// whatever range it was asked in, so splitting rows across threads cannot change a result bit. Matrices of
    /// fewer than 16 rows take the AVX2 tiles.</summary>
    private static void MultiplyPacked16<TP>(in WeightMatrix w, int rowStart, int rowEnd, byte* act, int actBytes, int tokenCount, float* output, int stride)
        where TP : struct, IPackedTile16
    {
        Debug.Assert(w.Rows >= Avx512TileRows);
        int blockCount = w.Columns / Q8Block;
        long rowBytes = w.RowBytes;
        // A few tokens (a batch of decoding sequences): unpacking each block in registers and using it for every token
        // at once reads the weights once, as decode does; packing whole tiles only pays off for longer prompts.
        bool direct = tokenCount == 1 || (typeof(TP) == typeof(Q4_0Packed) && tokenCount <= SmallBatchTokens);
        byte* packed = direct ? null : PackBuffer((long)blockCount * TP.PackedBlockBytes);
        float* partial = stackalloc float[4 * Avx512TileRows]; // [4 tokens][16 rows]: a leftover tile's results
        for (int r = rowStart; r < rowEnd; r += Avx512TileRows)
        {
            int tile = Math.Min(r, w.Rows - Avx512TileRows), skip = r - tile, keep = Math.Min(rowEnd - r, Avx512TileRows);
            bool whole = skip == 0 && keep == Avx512TileRows;
            if (tokenCount == 1)
            {
                TP.Tile16x1(w.RowPointer(tile), rowBytes, act, blockCount, whole ? output + r : partial);
                if (!whole)
                {
                    new ReadOnlySpan<float>(partial + skip, keep).CopyTo(new Span<float>(output + r, keep));
                }
                continue;
            }
            if (direct)
            {
                for (int t = 0; t < tokenCount; t += 4)
                {
                    int count = Math.Min(4, tokenCount - t);
                    float* o = whole ? output + (long)t * stride + r : partial;
                    Q4_0Tile16xFewAvx512(w.RowPointer(tile), rowBytes, act + (long)t * actBytes, actBytes, count, blockCount, o, whole ? stride : Avx512TileRows);
                    if (!whole)
                    {
                        for (int i = 0; i < count; i++)
                        {
                            new ReadOnlySpan<float>(partial + i * Avx512TileRows + skip, keep).CopyTo(new Span<float>(output + (long)(t + i) * stride + r, keep));
                        }
                    }
                }
                continue;
            }
            PackTile<TP>(w.RowPointer(tile), rowBytes, blockCount, packed);
            for (int t = 0; t < tokenCount; t += 4)
            {
                int count = Math.Min(4, tokenCount - t);
                byte* a = act + (long)t * actBytes;
                float* o = whole ? output + (long)t * stride + r : partial;
                int oStride = whole ? stride : Avx512TileRows;
                if (count == 4)
                {
                    Packed16x4<TP>(packed, blockCount, a, actBytes, o, oStride);
                }
                else
                {
                    for (int i = 0; i < count; i++)
                    {
                        Packed16x1<TP>(packed, blockCount, a + (long)i * actBytes, o + i * oStride);
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

    /// <summary>The calling thread's pack buffer, at least <paramref name="bytes"/> long and 64-byte aligned. The
    /// array lives on the pinned object heap, so the pointer stays valid while the thread keeps the array.</summary>
    private static byte* PackBuffer(long bytes)
    {
        byte[]? buffer = t_packBuffer;
        if (buffer is null || buffer.Length < bytes + 64)
        {
            buffer = GC.AllocateUninitializedArray<byte>(checked((int)bytes + 64), pinned: true);
            t_packBuffer = buffer;
        }
        byte* p = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
        return (byte*)(((nuint)p + 63) & ~(nuint)63);
    }

    /// <summary>Packs blocks 0 … <paramref name="blockCount"/> − 1 of 16 rows (<paramref name="rowBytes"/> apart from
    /// <paramref name="row0"/>) into <typeparamref name="TP"/>'s layout, one block after another.</summary>
    private static void PackTile<TP>(byte* row0, long rowBytes, int blockCount, byte* packed) where TP : struct, IPackedTile16
    {
        for (int b = 0; b < blockCount; b++, row0 += TP.BlockBytes, packed += TP.PackedBlockBytes)
        {
            TP.Pack(row0, rowBytes, packed);
        }
    }

    /// <summary>16 bytes at <paramref name="p"/> in each of 16 rows transposed by dwords: lane r of
    /// <paramref name="d0"/> … <paramref name="d3"/> is dword 0 … 3 of row r's 16 bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose16x4(byte* p, long rowBytes, out Vector512<uint> d0, out Vector512<uint> d1, out Vector512<uint> d2, out Vector512<uint> d3)
    {
        // z_g: rows 4g … 4g + 3, one row per 128-bit lane; within a pair (z0, z1) dword k of row r (r < 8) sits at
        // position 4r + k of the 32. Two-source permutes collect dwords 0, 1 (resp. 2, 3) of rows 0 … 7 (and 8 … 15),
        // then 128-bit lane shuffles join the two row halves: 0x44 takes lanes 0, 1 of each source, 0xEE lanes 2, 3.
        TransposeRows(Load4Rows(p, rowBytes), Load4Rows(p + 4 * rowBytes, rowBytes), Load4Rows(p + 8 * rowBytes, rowBytes), Load4Rows(p + 12 * rowBytes, rowBytes),
            out d0, out d1, out d2, out d3);
    }

    /// <summary>The dword transpose of <see cref="Transpose16x4"/>: <paramref name="z0"/> … <paramref name="z3"/> hold
    /// rows 0 … 15, 16 bytes each, one row per 128-bit lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransposeRows(Vector512<uint> z0, Vector512<uint> z1, Vector512<uint> z2, Vector512<uint> z3,
        out Vector512<uint> d0, out Vector512<uint> d1, out Vector512<uint> d2, out Vector512<uint> d3)
    {
        Vector512<uint> pick01 = Vector512.Create(0u, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
        Vector512<uint> pick23 = pick01 + Vector512.Create(2u);
        Vector512<uint> lo01 = Avx512F.PermuteVar16x32x2(z0, pick01, z1), hi01 = Avx512F.PermuteVar16x32x2(z0, pick23, z1);
        Vector512<uint> lo23 = Avx512F.PermuteVar16x32x2(z2, pick01, z3), hi23 = Avx512F.PermuteVar16x32x2(z2, pick23, z3);
        d0 = Avx512F.Shuffle4x128(lo01, lo23, 0x44);
        d1 = Avx512F.Shuffle4x128(lo01, lo23, 0xEE);
        d2 = Avx512F.Shuffle4x128(hi01, hi23, 0x44);
        d3 = Avx512F.Shuffle4x128(hi01, hi23, 0xEE);
    }

    /// <summary>16 bytes from each of 4 rows, one row per 128-bit lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Load4Rows(byte* p, long rowBytes) => Vector512.Create(
        Vector256.Create(Vector128.Load(p), Vector128.Load(p + rowBytes)),
        Vector256.Create(Vector128.Load(p + 2 * rowBytes), Vector128.Load(p + 3 * rowBytes))).AsUInt32();

    /// <summary>The f16 scales at the start of 16 blocks <paramref name="rowBytes"/> apart, as f32 lanes (the
    /// conversion of <see cref="QuantDot.HalfToSingle"/>, vectorised: exact for every f16, infinities and NaNs
    /// included).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> LoadScales16(byte* block, long rowBytes)
    {
        // .NET 10 exposes neither the 512-bit gather nor the f16 conversion instruction: two 256-bit gathers of the
        // dword at each block start (scale and two code bytes; rows 16·rowBytes < 2³¹ apart), converted with integer
        // operations.
        Vector256<int> offsets = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * (int)rowBytes;
        Vector256<int> lo = Avx2.GatherVector256((int*)block, offsets, 1);
        Vector256<int> hi = Avx2.GatherVector256((int*)(block + 8 * rowBytes), offsets, 1);
        return HalfToSingle16(Vector512.Create(lo, hi).AsUInt32());
    }

    /// <summary>The 4 activation codes at <paramref name="p"/> (one dword) in every dword lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<sbyte> Broadcast4(byte* p) => Vector512.Create(Unsafe.ReadUnaligned<int>(p)).AsSByte();

    /// <summary>acc + dw·(da·products − offset·scaledSum): one block of one token for 16 rows; <paramref name="scale"/>
    /// points at the token's da for this block, its scaledSum lies <paramref name="blockCount"/> floats further.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Accumulate16<TP>(Vector512<float> products, Vector512<float> dw, float* scale, int blockCount, Vector512<float> acc)
        where TP : struct, IPackedTile16 =>
        Avx512F.FusedMultiplyAdd(Avx512F.FusedMultiplyAdd(products, Vector512.Create(scale[0]), Vector512.Create(scale[blockCount] * -TP.Offset)), dw, acc);

    /// <summary>Decode for Q4_0: 16 rows × 1 token, each block packed in registers and used at once.</summary>
    private static void Q4_0Tile16x1Avx512(byte* w, long rowBytes, byte* act, int blockCount, float* output)
    {
        float* scales = (float*)(act + Q8Block * blockCount);
        Vector512<float> acc = Vector512<float>.Zero;
        // 16 interleaved row streams are more than the hardware prefetcher follows well; the next tile is one
        // contiguous region of 16·rowBytes, so while block b is read, bytes 288b … 288(b + 1) of it are prefetched
        // (288 = 16 rows × 18 bytes: the whole next tile arrives during this one). Prefetches never fault.
        byte* next = w + Avx512TileRows * rowBytes;
        for (int b = 0; b < blockCount; b++, w += Q4_0Packed.BlockBytes, next += Avx512TileRows * Q4_0Packed.BlockBytes)
        {
            for (int line = 0; line < 5; line++)
            {
                Sse.Prefetch1(next + 64 * line);
            }
            Vector512<float> dw;
            Vector512<byte> c0, c1, c2, c3, c4, c5, c6, c7;
            if (b == 0)
            {
                // The row-pair loads start 14 bytes before the block, which for block 0 of row 0 may lie outside
                // the matrix: block 0 takes the scales by gathers (the same values).
                Q4_0Packed.Unpack(w, rowBytes, out c0, out c1, out c2, out c3, out c4, out c5, out c6, out c7);
                dw = LoadScales16(w, rowBytes);
            }
            else
            {
                dw = Q4_0Packed.UnpackWithScales(w, rowBytes, out c0, out c1, out c2, out c3, out c4, out c5, out c6, out c7);
            }
            Vector512<float> products = Q4_0Packed.Dot(c0, c1, c2, c3, c4, c5, c6, c7, act + Q8Block * b);
            acc = Accumulate16<Q4_0Packed>(products, dw, scales + b, blockCount, acc);
        }
        acc.Store(output);
    }

    /// <summary>Q4_0 for a few tokens (1 … 4, <paramref name="actBytes"/> apart): 16 rows, each block unpacked in
    /// registers once and multiplied with every token's codes, so the weights stream from memory once per call. Each
    /// token's products and accumulation are those of <see cref="Q4_0Tile16x1Avx512"/> in the same order, so a token's
    /// result is bit-identical to decoding it alone. Output row t at <paramref name="output"/> + t·<paramref name="stride"/>.
    /// The one-token decode stays its own kernel: routed through this one with count 1 it measured about 5 % slower
    /// (7B Q4_0 tg32 10.0 against 10.5–10.8 tokens/s, same session).</summary>
    private static void Q4_0Tile16xFewAvx512(byte* w, long rowBytes, byte* act, int actBytes, int count, int blockCount, float* output, int stride)
    {
        Debug.Assert(count is >= 1 and <= 4);
        float* scales = (float*)(act + Q8Block * blockCount);
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero, acc2 = Vector512<float>.Zero, acc3 = Vector512<float>.Zero;
        byte* next = w + Avx512TileRows * rowBytes; // prefetch the next tile as Q4_0Tile16x1Avx512 does
        for (int b = 0; b < blockCount; b++, w += Q4_0Packed.BlockBytes, next += Avx512TileRows * Q4_0Packed.BlockBytes)
        {
            for (int line = 0; line < 5; line++)
            {
                Sse.Prefetch1(next + 64 * line);
            }
            Vector512<float> dw;
            Vector512<byte> c0, c1, c2, c3, c4, c5, c6, c7;
            if (b == 0)
            {
                Q4_0Packed.Unpack(w, rowBytes, out c0, out c1, out c2, out c3, out c4, out c5, out c6, out c7);
                dw = LoadScales16(w, rowBytes);
            }
            else
            {
                dw = Q4_0Packed.UnpackWithScales(w, rowBytes, out c0, out c1, out c2, out c3, out c4, out c5, out c6, out c7);
            }
            byte* a = act + Q8Block * b;
            acc0 = Accumulate16<Q4_0Packed>(Q4_0Packed.Dot(c0, c1, c2, c3, c4, c5, c6, c7, a), dw, scales + b, blockCount, acc0);
            if (count > 1)
            {
                acc1 = Accumulate16<Q4_0Packed>(Q4_0Packed.Dot(c0, c1, c2, c3, c4, c5, c6, c7, a + actBytes), dw, (float*)((byte*)(scales + b) + actBytes), blockCount, acc1);
                if (count > 2)
                {
                    acc2 = Accumulate16<Q4_0Packed>(Q4_0Packed.Dot(c0, c1, c2, c3, c4, c5, c6, c7, a + 2 * actBytes), dw, (float*)((byte*)(scales + b) + 2 * actBytes), blockCount, acc2);
                    if (count > 3)
                    {
                        acc3 = Accumulate16<Q4_0Packed>(Q4_0Packed.Dot(c0, c1, c2, c3, c4, c5, c6, c7, a + 3 * actBytes), dw, (float*)((byte*)(scales + b) + 3 * actBytes), blockCount, acc3);
                    }
                }
            }
        }
        acc0.Store(output);
        if (count > 1)
        {
            acc1.Store(output + stride);
        }
        if (count > 2)
        {
            acc2.Store(output + 2 * stride);
        }
        if (count > 3)
        {
            acc3.Store(output + 3 * stride);
        }
    }

    /// <summary>Prefill: a packed 16-row tile × 4 tokens (<paramref name="actBytes"/> apart); output row t at
    /// <paramref name="output"/> + t·<paramref name="stride"/>, 16 floats.</summary>
    private static void Packed16x4<TP>(byte* packed, int blockCount, byte* act, int actBytes, float* output, int stride) where TP : struct, IPackedTile16
    {
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero, acc2 = Vector512<float>.Zero, acc3 = Vector512<float>.Zero;
        float* s = (float*)(act + Q8Block * blockCount);
        for (int b = 0; b < blockCount; b++, packed += TP.PackedBlockBytes, s++)
        {
            Vector512<float> dw = Vector512.Load((float*)(packed + TP.PackedBlockBytes - 64));
            byte* a = act + Q8Block * b;
            acc0 = Accumulate16<TP>(TP.Products(packed, a), dw, s, blockCount, acc0);
            acc1 = Accumulate16<TP>(TP.Products(packed, a + actBytes), dw, (float*)((byte*)s + actBytes), blockCount, acc1);
            acc2 = Accumulate16<TP>(TP.Products(packed, a + 2 * actBytes), dw, (float*)((byte*)s + 2 * actBytes), blockCount, acc2);
            acc3 = Accumulate16<TP>(TP.Products(packed, a + 3 * actBytes), dw, (float*)((byte*)s + 3 * actBytes), blockCount, acc3);
        }
        acc0.Store(output);
        acc1.Store(output + stride);
        acc2.Store(output + 2 * stride);
        acc3.Store(output + 3 * stride);
    }

    /// <summary>Decode for any format: each block packed into a stack buffer (L1) and multiplied at once.</summary>
    private static void PackedTile16x1<TP>(byte* w, long rowBytes, byte* act, int blockCount, float* output) where TP : struct, IPackedTile16
    {
        byte* packed = stackalloc byte[TP.PackedBlockBytes + 64];
        packed = (byte*)(((nuint)packed + 63) & ~(nuint)63);
        float* s = (float*)(act + Q8Block * blockCount);
        Vector512<float> acc = Vector512<float>.Zero;
        for (int b = 0; b < blockCount; b++, w += TP.BlockBytes)
        {
            TP.Pack(w, rowBytes, packed);
            Vector512<float> dw = Vector512.Load((float*)(packed + TP.PackedBlockBytes - 64));
            acc = Accumulate16<TP>(TP.Products(packed, act + Q8Block * b), dw, s + b, blockCount, acc);
        }
        acc.Store(output);
    }

    /// <summary>A packed 16-row tile × 1 token (the tokens left after the groups of 4).</summary>
    private static void Packed16x1<TP>(byte* packed, int blockCount, byte* act, float* output) where TP : struct, IPackedTile16
    {
        Vector512<float> acc = Vector512<float>.Zero;
        float* s = (float*)(act + Q8Block * blockCount);
        for (int b = 0; b < blockCount; b++, packed += TP.PackedBlockBytes)
        {
            Vector512<float> dw = Vector512.Load((float*)(packed + TP.PackedBlockBytes - 64));
            acc = Accumulate16<TP>(TP.Products(packed, act + Q8Block * b), dw, s + b, blockCount, acc);
        }
        acc.Store(output);
    }

    /// <summary>A weight format's 16-row packed block: its layout, how to build it and how to multiply it.</summary>
    private interface IPackedTile16
    {
        /// <summary>Bytes of one block in the weight row.</summary>
        static abstract int BlockBytes { get; }

        /// <summary>Bytes of one packed block of 16 rows; its last 64 bytes are the 16 f32 scales.</summary>
        static abstract int PackedBlockBytes { get; }

        /// <summary>What the packed unsigned codes exceed the weight codes by.</summary>
        static abstract int Offset { get; }

        /// <summary>Packs block <paramref name="block"/> of row 0 and the same block of rows 1 … 15.</summary>
        static abstract void Pack(byte* block, long rowBytes, byte* packed);

        /// <summary>Decode: 16 rows from <paramref name="row0"/> × 1 token, 16 results at <paramref name="output"/>,
        /// with the lane arithmetic of <see cref="Packed16x1{TP}"/> (so decode and prefill agree to the bit).</summary>
        static abstract void Tile16x1(byte* row0, long rowBytes, byte* act, int blockCount, float* output);

        /// <summary>Σ_j (packed code j)·a_j of each row (lane r = row r) against the activation's 32 codes, exact,
        /// as f32.</summary>
        static abstract Vector512<float> Products(byte* packed, byte* codes);
    }

    /// <summary>Q4_0 packed: 8 code vectors (vector i: in dword lane r the codes 0 … 15 of elements 4i … 4i + 3 of
    /// row r) and the scales; 576 bytes. Products by 8 vpmaddubsw whose int16 pair sums (≤ 2·15·128 = 3840) add up
    /// to at most 30720, exact in int16, then one vpmaddwd against ones into int32 (|Σ| ≤ 61440, exact as f32).</summary>
    private readonly struct Q4_0Packed : IPackedTile16
    {
        public static int BlockBytes => 18;

        public static int PackedBlockBytes => 9 * 64;

        public static int Offset => 8;

        public static void Tile16x1(byte* row0, long rowBytes, byte* act, int blockCount, float* output) =>
            Q4_0Tile16x1Avx512(row0, rowBytes, act, blockCount, output);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Pack(byte* block, long rowBytes, byte* packed)
        {
            Unpack(block, rowBytes, out var c0, out var c1, out var c2, out var c3, out var c4, out var c5, out var c6, out var c7);
            Vector512<byte>* v = (Vector512<byte>*)packed;
            v[0] = c0;
            v[1] = c1;
            v[2] = c2;
            v[3] = c3;
            v[4] = c4;
            v[5] = c5;
            v[6] = c6;
            v[7] = c7;
            ((Vector512<float>*)packed)[8] = LoadScales16(block, rowBytes);
        }

        /// <summary>The 8 code vectors of one block of 16 rows.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Unpack(byte* block, long rowBytes,
            out Vector512<byte> c0, out Vector512<byte> c1, out Vector512<byte> c2, out Vector512<byte> c3,
            out Vector512<byte> c4, out Vector512<byte> c5, out Vector512<byte> c6, out Vector512<byte> c7)
        {
            // Dword k of a row's 16 packed bytes holds elements 4k … 4k + 3 in its low nibbles and 16 + 4k … in its high.
            Transpose16x4(block + 2, rowBytes, out var p0, out var p1, out var p2, out var p3);
            Split(p0, p1, p2, p3, out c0, out c1, out c2, out c3, out c4, out c5, out c6, out c7);
        }

        /// <summary>As <see cref="Unpack"/>, returning the 16 scales too, from the same loads: block
        /// <paramref name="block"/> must not be a row's first (each row is read from 14 bytes before it).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> UnpackWithScales(byte* block, long rowBytes,
            out Vector512<byte> c0, out Vector512<byte> c1, out Vector512<byte> c2, out Vector512<byte> c3,
            out Vector512<byte> c4, out Vector512<byte> c5, out Vector512<byte> c6, out Vector512<byte> c7)
        {
            // r_i: rows 2i and 2i + 1, 32 bytes each from block − 14, so each 256-bit half holds the row's f16 scale in
            // bytes 14, 15 (the top of dword 3) and its 16 code bytes in its upper 128 bits. 0xDD keeps 128-bit lanes
            // 1 and 3 of each source: the code bytes of 4 rows, one per lane, as Load4Rows lays them out.
            byte* p = block - 14;
            Vector512<uint> r0 = RowPair(p, rowBytes), r1 = RowPair(p + 2 * rowBytes, rowBytes);
            Vector512<uint> r2 = RowPair(p + 4 * rowBytes, rowBytes), r3 = RowPair(p + 6 * rowBytes, rowBytes);
            Vector512<uint> r4 = RowPair(p + 8 * rowBytes, rowBytes), r5 = RowPair(p + 10 * rowBytes, rowBytes);
            Vector512<uint> r6 = RowPair(p + 12 * rowBytes, rowBytes), r7 = RowPair(p + 14 * rowBytes, rowBytes);
            TransposeRows(Avx512F.Shuffle4x128(r0, r1, 0xDD), Avx512F.Shuffle4x128(r2, r3, 0xDD),
                Avx512F.Shuffle4x128(r4, r5, 0xDD), Avx512F.Shuffle4x128(r6, r7, 0xDD), out var p0, out var p1, out var p2, out var p3);
            Split(p0, p1, p2, p3, out c0, out c1, out c2, out c3, out c4, out c5, out c6, out c7);
            // Scale dwords: dword 3 and 11 of r_2g, 19 and 27 (the same of r_2g+1) are rows 4g … 4g + 3; the same
            // pick in every group of 4 lanes, then lanes 4g … 4g + 3 are taken from the permute of group g.
            Vector512<uint> pick = Vector512.Create(3u, 11, 19, 27, 3, 11, 19, 27, 3, 11, 19, 27, 3, 11, 19, 27);
            Vector512<uint> g0 = Avx512F.PermuteVar16x32x2(r0, pick, r1), g1 = Avx512F.PermuteVar16x32x2(r2, pick, r3);
            Vector512<uint> g2 = Avx512F.PermuteVar16x32x2(r4, pick, r5), g3 = Avx512F.PermuteVar16x32x2(r6, pick, r7);
            Vector512<uint> firstOf4 = Vector512.Create(~0u, ~0u, ~0u, ~0u, 0, 0, 0, 0, ~0u, ~0u, ~0u, ~0u, 0, 0, 0, 0);
            Vector512<uint> firstOf8 = Vector512.Create(~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, 0, 0, 0, 0, 0, 0, 0, 0);
            Vector512<uint> all = Vector512.ConditionalSelect(firstOf8, Vector512.ConditionalSelect(firstOf4, g0, g1), Vector512.ConditionalSelect(firstOf4, g2, g3));
            return HalfToSingle16(Vector512.ShiftRightLogical(all, 16));
        }

        /// <summary>32 bytes at <paramref name="p"/> from two rows <paramref name="rowBytes"/> apart.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<uint> RowPair(byte* p, long rowBytes) => Vector512.Create(Vector256.Load(p), Vector256.Load(p + rowBytes)).AsUInt32();

        /// <summary>Transposed packed bytes to code vectors: low nibbles are elements 4k …, high nibbles 16 + 4k ….</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Split(Vector512<uint> p0, Vector512<uint> p1, Vector512<uint> p2, Vector512<uint> p3,
            out Vector512<byte> c0, out Vector512<byte> c1, out Vector512<byte> c2, out Vector512<byte> c3,
            out Vector512<byte> c4, out Vector512<byte> c5, out Vector512<byte> c6, out Vector512<byte> c7)
        {
            Vector512<byte> nibble = Vector512.Create((byte)0x0F);
            c0 = p0.AsByte() & nibble;
            c1 = p1.AsByte() & nibble;
            c2 = p2.AsByte() & nibble;
            c3 = p3.AsByte() & nibble;
            c4 = Vector512.ShiftRightLogical(p0, 4).AsByte() & nibble;
            c5 = Vector512.ShiftRightLogical(p1, 4).AsByte() & nibble;
            c6 = Vector512.ShiftRightLogical(p2, 4).AsByte() & nibble;
            c7 = Vector512.ShiftRightLogical(p3, 4).AsByte() & nibble;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Products(byte* packed, byte* codes)
        {
            Vector512<byte>* v = (Vector512<byte>*)packed;
            return Dot(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], codes);
        }

        /// <summary>Code vector i times activation elements 4i … 4i + 3 (their dword broadcast to every lane).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Dot(
            Vector512<byte> c0, Vector512<byte> c1, Vector512<byte> c2, Vector512<byte> c3,
            Vector512<byte> c4, Vector512<byte> c5, Vector512<byte> c6, Vector512<byte> c7, byte* codes) =>
            Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(Sum16(c0, c1, c2, c3, c4, c5, c6, c7, codes), Vector512.Create((short)1)));

        /// <summary>The int16 pair sums of <see cref="Dot"/> before they are added into int32: lane r's two int16 add
        /// up to Σ code·a over row r's 32 elements. Exact for codes 0 … 15 (shared with the Q4_K tiles).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<short> Sum16(
            Vector512<byte> c0, Vector512<byte> c1, Vector512<byte> c2, Vector512<byte> c3,
            Vector512<byte> c4, Vector512<byte> c5, Vector512<byte> c6, Vector512<byte> c7, byte* codes)
        {
            Vector512<short> s01 = Avx512BW.MultiplyAddAdjacent(c0, Broadcast4(codes)) + Avx512BW.MultiplyAddAdjacent(c1, Broadcast4(codes + 4));
            Vector512<short> s23 = Avx512BW.MultiplyAddAdjacent(c2, Broadcast4(codes + 8)) + Avx512BW.MultiplyAddAdjacent(c3, Broadcast4(codes + 12));
            Vector512<short> s45 = Avx512BW.MultiplyAddAdjacent(c4, Broadcast4(codes + 16)) + Avx512BW.MultiplyAddAdjacent(c5, Broadcast4(codes + 20));
            Vector512<short> s67 = Avx512BW.MultiplyAddAdjacent(c6, Broadcast4(codes + 24)) + Avx512BW.MultiplyAddAdjacent(c7, Broadcast4(codes + 28));
            return (s01 + s23) + (s45 + s67);
        }
    }

    /// <summary>Q8_0 packed for AVX-VNNI: 8 code vectors (vector i: in dword lane r the codes + 128, unsigned, of
    /// elements 4i … 4i + 3 of row r) and the scales; 576 bytes. Products by vpdpbusd on the two 256-bit halves
    /// (rows 0 … 7 and 8 … 15): int32 sums of at most 32·255·128 &lt; 2²⁴, exact as f32.</summary>
    private readonly struct Q8_0PackedVnni : IPackedTile16
    {
        public static int BlockBytes => 34;

        public static int PackedBlockBytes => 9 * 64;

        public static int Offset => 128;

        public static void Tile16x1(byte* row0, long rowBytes, byte* act, int blockCount, float* output) =>
            PackedTile16x1<Q8_0PackedVnni>(row0, rowBytes, act, blockCount, output);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Pack(byte* block, long rowBytes, byte* packed)
        {
            Transpose16x4(block + 2, rowBytes, out var p0, out var p1, out var p2, out var p3);
            Transpose16x4(block + 18, rowBytes, out var p4, out var p5, out var p6, out var p7);
            Vector512<uint> flip = Vector512.Create(0x80808080u);
            Vector512<uint>* v = (Vector512<uint>*)packed;
            v[0] = p0 ^ flip;
            v[1] = p1 ^ flip;
            v[2] = p2 ^ flip;
            v[3] = p3 ^ flip;
            v[4] = p4 ^ flip;
            v[5] = p5 ^ flip;
            v[6] = p6 ^ flip;
            v[7] = p7 ^ flip;
            ((Vector512<float>*)packed)[8] = LoadScales16(block, rowBytes);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Products(byte* packed, byte* codes)
        {
            // Two chains of 4 per half so consecutive vpdpbusd do not all wait on one accumulator.
            Vector256<int> lo = Half(packed, codes, 0), hi = Half(packed, codes, 32);
            return Avx512F.ConvertToVector512Single(Vector512.Create(lo, hi));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<int> Half(byte* packed, byte* codes, int offset)
        {
            byte* p = packed + offset;
            Vector256<int> x = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Vector256.Load(p), Broadcast4Half(codes));
            Vector256<int> y = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Vector256.Load(p + 64), Broadcast4Half(codes + 4));
            x = AvxVnni.MultiplyWideningAndAdd(x, Vector256.Load(p + 128), Broadcast4Half(codes + 8));
            y = AvxVnni.MultiplyWideningAndAdd(y, Vector256.Load(p + 192), Broadcast4Half(codes + 12));
            x = AvxVnni.MultiplyWideningAndAdd(x, Vector256.Load(p + 256), Broadcast4Half(codes + 16));
            y = AvxVnni.MultiplyWideningAndAdd(y, Vector256.Load(p + 320), Broadcast4Half(codes + 20));
            x = AvxVnni.MultiplyWideningAndAdd(x, Vector256.Load(p + 384), Broadcast4Half(codes + 24));
            y = AvxVnni.MultiplyWideningAndAdd(y, Vector256.Load(p + 448), Broadcast4Half(codes + 28));
            return x + y;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<sbyte> Broadcast4Half(byte* p) => Vector256.Create(Unsafe.ReadUnaligned<int>(p)).AsSByte();
    }
}
