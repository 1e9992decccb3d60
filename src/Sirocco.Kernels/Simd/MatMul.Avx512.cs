// AVX-512 (F + BW) kernels for Q4_0 weights against the planar Q8 activations, called from MultiplyPlanarQ8
// (MatMul.Quantized.cs) when Avx512BW is supported. Tiles of 16 weight rows: each 32-element block of the 16 rows is
// transposed on the fly so that lane r of a 512-bit register holds 4 codes of row r; one activation dword broadcast to
// all lanes then multiplies 16 rows at once, and the per-block float work (convert, scale, accumulate) is shared by the
// 16 rows instead of being paid per row. Prefill packs a whole row tile once into a per-thread buffer and reuses it for
// every token; decode packs and multiplies in the same pass.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sirocco.Kernels.Simd;

// Packed Q4_0 row tile (16 rows r0 … r15, nb blocks), 576 bytes per block b at 576b:
//   8 × 64 bytes  codes: vector i (i = 0 … 7) holds in dword lane r the unsigned codes (0 … 15) of elements
//                 4i … 4i + 3 of row r's block b (byte k of the dword: element 4i + k)
//   64 bytes      scales: f32 lane r = the f16 scale of row r's block b
// Per block, token and row: Σ_j q_j·a_j (q unsigned) comes from 8 vpmaddubsw (int16 pairs ≤ 2·15·128 = 3840, so the
// sum of the 8 results, ≤ 30720, fits int16 exactly) and one vpmaddwd against ones (→ int32, exact); then, as in the
// AVX2 tiles, acc += dw·(da·Σ q·qa − 8·da·Σqa), the second term being −8 × the activation's scaledSum.
public static unsafe partial class MatMul
{
    /// <summary>Weight rows per AVX-512 tile: one per 32-bit lane of a 512-bit register.</summary>
    private const int Avx512TileRows = 16;

    /// <summary>Bytes of one packed block of a 16-row Q4_0 tile: 8 code vectors and 16 float scales.</summary>
    private const int PackedQ4_0BlockBytes = 9 * 64;

    /// <summary>Per-thread buffer for a packed row tile (grown on demand, pinned, 64-byte aligned).</summary>
    [ThreadStatic]
    private static byte[]? t_packBuffer;

    /// <summary>Q4_0 on AVX-512: 16-row tiles, packed once for prefill or in passing for one token. Rows left over
    /// (fewer than 16) are computed by a tile shifted back to overlap rows already done (or rows outside the range,
    /// which are only read), and only the new lanes are stored. Every row thus goes through the same lane arithmetic
    /// whatever range it was asked in, so splitting rows across threads cannot change a result bit. Matrices of
    /// fewer than 16 rows take the AVX2 tiles.</summary>
    private static void MultiplyQ4_0Avx512(in WeightMatrix w, int rowStart, int rowEnd, byte* act, int actBytes, int tokenCount, float* output, int stride)
    {
        if (w.Rows < Avx512TileRows)
        {
            if (AvxVnni.IsSupported)
            {
                MultiplyTiled<Q4_0Vnni>(w, rowStart, rowEnd, act, actBytes, tokenCount, output, stride);
            }
            else
            {
                MultiplyTiled<Q4_0Avx2>(w, rowStart, rowEnd, act, actBytes, tokenCount, output, stride);
            }
            return;
        }
        int blockCount = w.Columns / Q8Block;
        long rowBytes = w.RowBytes;
        byte* packed = tokenCount == 1 ? null : PackBuffer((long)blockCount * PackedQ4_0BlockBytes);
        float* partial = stackalloc float[4 * Avx512TileRows]; // [4 tokens][16 rows]: a leftover tile's results
        for (int r = rowStart; r < rowEnd; r += Avx512TileRows)
        {
            int tile = Math.Min(r, w.Rows - Avx512TileRows), skip = r - tile, keep = Math.Min(rowEnd - r, Avx512TileRows);
            bool whole = skip == 0 && keep == Avx512TileRows;
            if (tokenCount == 1)
            {
                Q4_0Tile16x1Avx512(w.RowPointer(tile), rowBytes, act, blockCount, whole ? output + r : partial);
                if (!whole)
                {
                    new ReadOnlySpan<float>(partial + skip, keep).CopyTo(new Span<float>(output + r, keep));
                }
                continue;
            }
            PackQ4_0Tile(w.RowPointer(tile), rowBytes, blockCount, packed);
            for (int t = 0; t < tokenCount; t += 4)
            {
                int count = Math.Min(4, tokenCount - t);
                byte* a = act + (long)t * actBytes;
                float* o = whole ? output + (long)t * stride + r : partial;
                int oStride = whole ? stride : Avx512TileRows;
                if (count == 4)
                {
                    Packed16x4(packed, blockCount, a, actBytes, o, oStride);
                }
                else
                {
                    for (int i = 0; i < count; i++)
                    {
                        Packed16x1(packed, blockCount, a + (long)i * actBytes, o + i * oStride);
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

    /// <summary>Packs blocks 0 … <paramref name="blockCount"/> − 1 of 16 Q4_0 rows (<paramref name="rowBytes"/>
    /// apart from <paramref name="row0"/>) into the layout described above.</summary>
    private static void PackQ4_0Tile(byte* row0, long rowBytes, int blockCount, byte* packed)
    {
        for (int b = 0; b < blockCount; b++, packed += PackedQ4_0BlockBytes)
        {
            PackQ4_0Block(row0 + 18L * b, rowBytes, out var c0, out var c1, out var c2, out var c3, out var c4, out var c5, out var c6, out var c7, out var dw);
            Vector512<byte>* v = (Vector512<byte>*)packed;
            v[0] = c0;
            v[1] = c1;
            v[2] = c2;
            v[3] = c3;
            v[4] = c4;
            v[5] = c5;
            v[6] = c6;
            v[7] = c7;
            ((Vector512<float>*)packed)[8] = dw;
        }
    }

    /// <summary>One block of 16 Q4_0 rows transposed: <paramref name="c0"/> … <paramref name="c7"/> as the packed
    /// layout's code vectors, <paramref name="dw"/> the 16 scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PackQ4_0Block(byte* block, long rowBytes,
        out Vector512<byte> c0, out Vector512<byte> c1, out Vector512<byte> c2, out Vector512<byte> c3,
        out Vector512<byte> c4, out Vector512<byte> c5, out Vector512<byte> c6, out Vector512<byte> c7, out Vector512<float> dw)
    {
        // z_g: the 16 packed code bytes of rows 4g … 4g + 3, one row per 128-bit lane. Dword k of row r's 16 bytes,
        // P_k(r), holds elements 4k … 4k + 3 in its low nibbles and 16 + 4k … 16 + 4k + 3 in its high nibbles.
        byte* p = block + 2;
        Vector512<uint> z0 = Load4Rows(p, rowBytes), z1 = Load4Rows(p + 4 * rowBytes, rowBytes);
        Vector512<uint> z2 = Load4Rows(p + 8 * rowBytes, rowBytes), z3 = Load4Rows(p + 12 * rowBytes, rowBytes);
        // Within a pair (z0, z1) P_k(r) sits at dword 4r + k of the 32; gather P_0, P_1 (resp. P_2, P_3) of rows 0 … 7.
        Vector512<uint> pick01 = Vector512.Create(0u, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
        Vector512<uint> pick23 = pick01 + Vector512.Create(2u);
        Vector512<uint> lo01 = Avx512F.PermuteVar16x32x2(z0, pick01, z1), hi01 = Avx512F.PermuteVar16x32x2(z0, pick23, z1);
        Vector512<uint> lo23 = Avx512F.PermuteVar16x32x2(z2, pick01, z3), hi23 = Avx512F.PermuteVar16x32x2(z2, pick23, z3);
        // 128-bit lane shuffles join rows 0 … 7 and 8 … 15: 0x44 takes lanes 0, 1 of each source, 0xEE lanes 2, 3.
        Vector512<uint> p0 = Avx512F.Shuffle4x128(lo01, lo23, 0x44), p1 = Avx512F.Shuffle4x128(lo01, lo23, 0xEE);
        Vector512<uint> p2 = Avx512F.Shuffle4x128(hi01, hi23, 0x44), p3 = Avx512F.Shuffle4x128(hi01, hi23, 0xEE);
        Vector512<byte> nibble = Vector512.Create((byte)0x0F);
        c0 = p0.AsByte() & nibble;
        c1 = p1.AsByte() & nibble;
        c2 = p2.AsByte() & nibble;
        c3 = p3.AsByte() & nibble;
        c4 = Vector512.ShiftRightLogical(p0, 4).AsByte() & nibble;
        c5 = Vector512.ShiftRightLogical(p1, 4).AsByte() & nibble;
        c6 = Vector512.ShiftRightLogical(p2, 4).AsByte() & nibble;
        c7 = Vector512.ShiftRightLogical(p3, 4).AsByte() & nibble;
        dw = LoadScales16(block, rowBytes);
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
        // No 512-bit gather or f16 conversion is exposed by .NET 10, so the 16 halves go through the stack.
        uint* halves = stackalloc uint[Avx512TileRows];
        for (int r = 0; r < Avx512TileRows; r++)
        {
            halves[r] = Unsafe.ReadUnaligned<ushort>(block + r * rowBytes);
        }
        Vector512<uint> h = Vector512.Load(halves);
        Vector512<uint> shifted = Vector512.ShiftLeft(h & Vector512.Create(0x7FFFu), 13);
        // Normal and subnormal halves: the exponent rebias is a multiplication by 2^112 (exact).
        Vector512<uint> finite = (shifted.AsSingle() * Vector512.Create(5.192296858534828E+33f)).AsUInt32();
        Vector512<uint> special = Vector512.GreaterThanOrEqual(shifted, Vector512.Create(0x7C00u << 13));
        Vector512<uint> magnitude = Vector512.ConditionalSelect(special, shifted | Vector512.Create(0x7F800000u), finite);
        return (magnitude | Vector512.ShiftLeft(h & Vector512.Create(0x8000u), 16)).AsSingle();
    }

    /// <summary>Σ over the block of q·a for 16 rows at once, as f32 lanes (exact: |Σ| ≤ 32·15·128 &lt; 2²⁴).</summary>
    /// <param name="codes">The activation's 32 codes of this block.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> BlockDot16(
        Vector512<byte> c0, Vector512<byte> c1, Vector512<byte> c2, Vector512<byte> c3,
        Vector512<byte> c4, Vector512<byte> c5, Vector512<byte> c6, Vector512<byte> c7, byte* codes)
    {
        // Code vector i multiplies activation elements 4i … 4i + 3: their dword broadcast to every lane.
        Vector512<short> s01 = Avx512BW.MultiplyAddAdjacent(c0, Broadcast4(codes)) + Avx512BW.MultiplyAddAdjacent(c1, Broadcast4(codes + 4));
        Vector512<short> s23 = Avx512BW.MultiplyAddAdjacent(c2, Broadcast4(codes + 8)) + Avx512BW.MultiplyAddAdjacent(c3, Broadcast4(codes + 12));
        Vector512<short> s45 = Avx512BW.MultiplyAddAdjacent(c4, Broadcast4(codes + 16)) + Avx512BW.MultiplyAddAdjacent(c5, Broadcast4(codes + 20));
        Vector512<short> s67 = Avx512BW.MultiplyAddAdjacent(c6, Broadcast4(codes + 24)) + Avx512BW.MultiplyAddAdjacent(c7, Broadcast4(codes + 28));
        Vector512<int> sum = Avx512BW.MultiplyAddAdjacent((s01 + s23) + (s45 + s67), Vector512.Create((short)1));
        return Avx512F.ConvertToVector512Single(sum);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<sbyte> Broadcast4(byte* p) => Vector512.Create(Unsafe.ReadUnaligned<int>(p)).AsSByte();

    /// <summary>acc + dw·(da·products − 8·scaledSum): one block of one token for 16 rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> AccumulateQ4_0(Vector512<float> products, Vector512<float> dw, float* scale, int blockCount, Vector512<float> acc) =>
        Avx512F.FusedMultiplyAdd(Avx512F.FusedMultiplyAdd(products, Vector512.Create(scale[0]), Vector512.Create(scale[blockCount] * -8f)), dw, acc);

    /// <summary>Decode: 16 rows × 1 token, each block packed in registers and used at once.</summary>
    private static void Q4_0Tile16x1Avx512(byte* w, long rowBytes, byte* act, int blockCount, float* output)
    {
        float* scales = (float*)(act + Q8Block * blockCount);
        Vector512<float> acc = Vector512<float>.Zero;
        for (int b = 0; b < blockCount; b++, w += 18)
        {
            PackQ4_0Block(w, rowBytes, out var c0, out var c1, out var c2, out var c3, out var c4, out var c5, out var c6, out var c7, out var dw);
            acc = AccumulateQ4_0(BlockDot16(c0, c1, c2, c3, c4, c5, c6, c7, act + Q8Block * b), dw, scales + b, blockCount, acc);
        }
        acc.Store(output);
    }

    /// <summary>Prefill: a packed 16-row tile × 4 tokens (<paramref name="actBytes"/> apart); output row t at
    /// <paramref name="output"/> + t·<paramref name="stride"/>, 16 floats.</summary>
    private static void Packed16x4(byte* packed, int blockCount, byte* act, int actBytes, float* output, int stride)
    {
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero, acc2 = Vector512<float>.Zero, acc3 = Vector512<float>.Zero;
        float* s = (float*)(act + Q8Block * blockCount);
        for (int b = 0; b < blockCount; b++, packed += PackedQ4_0BlockBytes, s++)
        {
            Vector512<byte>* v = (Vector512<byte>*)packed;
            Vector512<byte> c0 = v[0], c1 = v[1], c2 = v[2], c3 = v[3], c4 = v[4], c5 = v[5], c6 = v[6], c7 = v[7];
            Vector512<float> dw = ((Vector512<float>*)packed)[8];
            byte* a = act + Q8Block * b;
            acc0 = AccumulateQ4_0(BlockDot16(c0, c1, c2, c3, c4, c5, c6, c7, a), dw, s, blockCount, acc0);
            acc1 = AccumulateQ4_0(BlockDot16(c0, c1, c2, c3, c4, c5, c6, c7, a + actBytes), dw, (float*)((byte*)s + actBytes), blockCount, acc1);
            acc2 = AccumulateQ4_0(BlockDot16(c0, c1, c2, c3, c4, c5, c6, c7, a + 2 * actBytes), dw, (float*)((byte*)s + 2 * actBytes), blockCount, acc2);
            acc3 = AccumulateQ4_0(BlockDot16(c0, c1, c2, c3, c4, c5, c6, c7, a + 3 * actBytes), dw, (float*)((byte*)s + 3 * actBytes), blockCount, acc3);
        }
        acc0.Store(output);
        acc1.Store(output + stride);
        acc2.Store(output + 2 * stride);
        acc3.Store(output + 3 * stride);
    }

    /// <summary>A packed 16-row tile × 1 token (the tokens left after the groups of 4).</summary>
    private static void Packed16x1(byte* packed, int blockCount, byte* act, float* output)
    {
        Vector512<float> acc = Vector512<float>.Zero;
        float* s = (float*)(act + Q8Block * blockCount);
        for (int b = 0; b < blockCount; b++, packed += PackedQ4_0BlockBytes)
        {
            Vector512<byte>* v = (Vector512<byte>*)packed;
            acc = AccumulateQ4_0(BlockDot16(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], act + Q8Block * b), ((Vector512<float>*)packed)[8], s + b, blockCount, acc);
        }
        acc.Store(output);
    }
}
