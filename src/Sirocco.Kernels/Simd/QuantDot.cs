// Fast quantized dot products for the forward pass's matrix-vector products: one weight row (Q8_0 or Q4_0) against an
// activation row quantized once to Q8_0. Integer products per 32-element block, then one float multiply-add per block
// with the combined scale. Specification and tests: Reference/QuantDot.cs and tests/…/Simd/QuantDotTests.cs.

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels.Simd;

/// <summary>Quantized dot products, dispatched to the widest instruction set available: AVX2, then portable
/// <see cref="Vector128"/>, then the scalar reference (<see cref="Reference.QuantDot"/>).</summary>
/// <remarks>
/// Arguments and exceptions are those of the reference methods. Activation codes must lie in −127 … 127, which
/// <see cref="Quantize.Q8_0"/> guarantees (a −128 may overflow the 16-bit pair sums); weight codes may be anything.
/// Per block the integer sum is exact, as in the reference, and the block scale dw·da (two f16 values: at most 22
/// significant bits) is exact in float; the only differences from the reference are the float rounding of each
/// lane's multiply-add and of the final horizontal sum, at most about (blocks + 3)·2⁻²⁴ of Σ|w·a|.
/// There is no Vector256 path: on x86 Vector256 is accelerated only where AVX2 is, which has its own path, and Arm64
/// does not accelerate it. No Vector512 path for single dots: the AVX-512 work is in MatMul's 16-row tiles
/// (MatMul.Avx512.cs), where the float work can be shared across rows. The K-quant dots
/// (QuantDot.KQuants.cs) follow the same dispatch.
/// </remarks>
public static unsafe partial class QuantDot
{
    private const int Q8_0Bytes = 34; // f16 d, 32 × int8
    private const int Q4_0Bytes = 18; // f16 d, 16 bytes of nibble pairs

    /// <summary>Σ w·a over a Q8_0 weight row and a Q8_0 activation row (see
    /// <see cref="Reference.QuantDot.DotQ8_0Q8_0"/>).</summary>
    /// <exception cref="ArgumentException">A length is not a whole number of blocks or the byte counts disagree.</exception>
    public static float DotQ8_0Q8_0(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int elementCount)
    {
        int blockCount = BlockRows.Check(GgmlType.Q8_0, elementCount, weightRow.Length, nameof(elementCount), nameof(weightRow));
        BlockRows.Check(GgmlType.Q8_0, elementCount, activationRow.Length, nameof(elementCount), nameof(activationRow));
        fixed (byte* w = weightRow, a = activationRow)
        {
            if (Avx2.IsSupported)
            {
                return Q8_0Avx2(w, a, blockCount);
            }
            if (Vector128.IsHardwareAccelerated)
            {
                return Q8_0Vector128(w, a, blockCount);
            }
        }
        return Reference.QuantDot.DotQ8_0Q8_0(weightRow, activationRow, elementCount);
    }

    /// <summary>Σ w·a over a Q4_0 weight row and a Q8_0 activation row (see
    /// <see cref="Reference.QuantDot.DotQ4_0Q8_0"/>).</summary>
    /// <exception cref="ArgumentException">A length is not a whole number of blocks or the byte counts disagree.</exception>
    public static float DotQ4_0Q8_0(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int elementCount)
    {
        int blockCount = BlockRows.Check(GgmlType.Q4_0, elementCount, weightRow.Length, nameof(elementCount), nameof(weightRow));
        BlockRows.Check(GgmlType.Q8_0, elementCount, activationRow.Length, nameof(elementCount), nameof(activationRow));
        fixed (byte* w = weightRow, a = activationRow)
        {
            if (Avx2.IsSupported)
            {
                return Q4_0Avx2(w, a, blockCount);
            }
            if (Vector128.IsHardwareAccelerated)
            {
                return Q4_0Vector128(w, a, blockCount);
            }
        }
        return Reference.QuantDot.DotQ4_0Q8_0(weightRow, activationRow, elementCount);
    }

    // ---- AVX2: one 32-element block per 256-bit register, one block per iteration (no tail: rows are whole blocks).

    private static float Q8_0Avx2(byte* w, byte* a, int blockCount)
    {
        // Two accumulators (even and odd blocks) so consecutive multiply-adds do not wait on each other's latency;
        // lane i of each: Σ over its blocks of scale · (sum of products 4i … 4i + 3). An odd last block goes to acc0.
        Vector256<float> acc0 = Vector256<float>.Zero, acc1 = Vector256<float>.Zero;
        int b = 0;
        for (; b + 2 <= blockCount; b += 2, w += 2 * Q8_0Bytes, a += 2 * Q8_0Bytes)
        {
            acc0 = MultiplyAdd(Q8_0BlockAvx2(w, a), Vector256.Create(Scale(w, a)), acc0);
            acc1 = MultiplyAdd(Q8_0BlockAvx2(w + Q8_0Bytes, a + Q8_0Bytes), Vector256.Create(Scale(w + Q8_0Bytes, a + Q8_0Bytes)), acc1);
        }
        if (b < blockCount)
        {
            acc0 = MultiplyAdd(Q8_0BlockAvx2(w, a), Vector256.Create(Scale(w, a)), acc0);
        }
        return Vector256.Sum(acc0 + acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Q8_0BlockAvx2(byte* w, byte* a)
    {
        Vector256<sbyte> qw = Avx.LoadVector256((sbyte*)(w + 2)); // 32 weight codes, element j in byte j
        Vector256<sbyte> qa = Avx.LoadVector256((sbyte*)(a + 2)); // 32 activation codes, same order
        return SumProductsAvx2(qw, qa);
    }

    private static float Q4_0Avx2(byte* w, byte* a, int blockCount)
    {
        // Even and odd blocks in separate accumulators, as in Q8_0Avx2.
        Vector256<float> acc0 = Vector256<float>.Zero, acc1 = Vector256<float>.Zero;
        int b = 0;
        for (; b + 2 <= blockCount; b += 2, w += 2 * Q4_0Bytes, a += 2 * Q8_0Bytes)
        {
            acc0 = MultiplyAdd(Q4_0BlockAvx2(w, a), Vector256.Create(Scale(w, a)), acc0);
            acc1 = MultiplyAdd(Q4_0BlockAvx2(w + Q4_0Bytes, a + Q8_0Bytes), Vector256.Create(Scale(w + Q4_0Bytes, a + Q8_0Bytes)), acc1);
        }
        if (b < blockCount)
        {
            acc0 = MultiplyAdd(Q4_0BlockAvx2(w, a), Vector256.Create(Scale(w, a)), acc0);
        }
        return Vector256.Sum(acc0 + acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Q4_0BlockAvx2(byte* w, byte* a)
    {
        // 16 packed bytes: byte i holds element i (low nibble) and element i + 16 (high nibble). Lower 128 bits:
        // the bytes as they are; upper 128 bits: shifted right by 4 (as 16-bit lanes, so the masked-off top bits
        // of each byte hold its neighbour's bits). Masking with 0x0F leaves byte j = code of element j, 0..15.
        Vector128<byte> packed = Sse2.LoadVector128(w + 2);
        Vector256<byte> codes = Vector256.Create(packed, Sse2.ShiftRightLogical(packed.AsUInt16(), 4).AsByte()) & Vector256.Create((byte)0x0F);
        Vector256<sbyte> qw = Avx2.Subtract(codes.AsSByte(), Vector256.Create((sbyte)8)); // byte j = code − 8, in −8 … 7
        Vector256<sbyte> qa = Avx.LoadVector256((sbyte*)(a + 2));
        return SumProductsAvx2(qw, qa);
    }

    /// <summary>The 32 products qw[j]·qa[j], summed in groups of 4 adjacent ones, as 8 exact floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> SumProductsAvx2(Vector256<sbyte> qw, Vector256<sbyte> qa)
    {
        // vpmaddubsw multiplies unsigned by signed bytes, so move the weight's sign onto the activation:
        // |qw| (0 … 128, read as unsigned) times sign(qw)·qa (|qa| ≤ 127, zeroed where qw = 0) equals qw·qa.
        Vector256<byte> absW = Avx2.Abs(qw);
        Vector256<sbyte> signedA = Avx2.Sign(qa, qw);
        // int16 lane k: products 2k and 2k + 1 summed; |sum| ≤ 2·128·127 = 32512, so no saturation.
        Vector256<short> pairs = Avx2.MultiplyAddAdjacent(absW, signedA);
        // int32 lane k: products 4k … 4k + 3 (pairs widened and added by a multiply with 1); |sum| ≤ 65024.
        Vector256<int> quads = Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1));
        return Avx.ConvertToVector256Single(quads); // exact: |quads| < 2^24
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MultiplyAdd(Vector256<float> x, Vector256<float> y, Vector256<float> z) =>
        Fma.IsSupported ? Fma.MultiplyAdd(x, y, z) : Avx.Add(Avx.Multiply(x, y), z);

    // ---- Portable Vector128 (SSE4-class x86 with AVX2 off, Arm64): a block is two 16-byte halves, widened to int16.

    private static float Q8_0Vector128(byte* w, byte* a, int blockCount)
    {
        Vector128<float> acc = Vector128<float>.Zero; // lane i: Σ over blocks of scale · (lane i of SumProducts128)
        for (int b = 0; b < blockCount; b++, w += Q8_0Bytes, a += Q8_0Bytes)
        {
            Vector128<sbyte> w0 = Vector128.Load((sbyte*)(w + 2)), w1 = Vector128.Load((sbyte*)(w + 18)); // elements 0–15, 16–31
            Vector128<sbyte> a0 = Vector128.Load((sbyte*)(a + 2)), a1 = Vector128.Load((sbyte*)(a + 18));
            acc += SumProducts128(w0, w1, a0, a1) * Vector128.Create(Scale(w, a));
        }
        return Vector128.Sum(acc);
    }

    private static float Q4_0Vector128(byte* w, byte* a, int blockCount)
    {
        Vector128<byte> lowNibbles = Vector128.Create((byte)0x0F);
        Vector128<sbyte> eight = Vector128.Create((sbyte)8);
        Vector128<float> acc = Vector128<float>.Zero;
        for (int b = 0; b < blockCount; b++, w += Q4_0Bytes, a += Q8_0Bytes)
        {
            Vector128<byte> packed = Vector128.Load(w + 2);
            Vector128<sbyte> w0 = (packed & lowNibbles).AsSByte() - eight;                 // elements 0–15: code − 8
            Vector128<sbyte> w1 = Vector128.ShiftRightLogical(packed, 4).AsSByte() - eight; // elements 16–31
            Vector128<sbyte> a0 = Vector128.Load((sbyte*)(a + 2)), a1 = Vector128.Load((sbyte*)(a + 18));
            acc += SumProducts128(w0, w1, a0, a1) * Vector128.Create(Scale(w, a));
        }
        return Vector128.Sum(acc);
    }

    /// <summary>The 32 products of a block (halves 0 and 1), summed in 4 exact int32 lanes, as floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> SumProducts128(Vector128<sbyte> w0, Vector128<sbyte> w1, Vector128<sbyte> a0, Vector128<sbyte> a1)
    {
        // Sign-extend to int16 (8 elements per vector); each product has |p| ≤ 128·127 = 16256, so a sum of two
        // products (lane k: elements k and k + 8 of one half) still fits in int16 (≤ 32512).
        Vector128<short> half0 = Vector128.WidenLower(w0) * Vector128.WidenLower(a0) + Vector128.WidenUpper(w0) * Vector128.WidenUpper(a0);
        Vector128<short> half1 = Vector128.WidenLower(w1) * Vector128.WidenLower(a1) + Vector128.WidenUpper(w1) * Vector128.WidenUpper(a1);
        // Widen to int32 before adding further: lane k then holds 8 products, |sum| ≤ 130048, exact as a float.
        Vector128<int> sum = Vector128.WidenLower(half0) + Vector128.WidenUpper(half0)
            + Vector128.WidenLower(half1) + Vector128.WidenUpper(half1);
        return Vector128.ConvertToSingle(sum);
    }

    /// <summary>The exact float value of an f16 block scale, without branches or calls (unlike
    /// <see cref="HalfBits.ToSingleFast"/>, whose slow-path call makes the JIT spill every vector register of a hot
    /// loop around it). Finite values: the 15 magnitude bits shifted left by 13 read as a float 2¹¹² too small, and
    /// the multiply by 2¹¹² is exact, subnormals included. Infinity and NaN (exponent 31) take exponent 255 instead,
    /// by a select that the JIT compiles to a predictable branch which calls nothing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float HalfToSingle(ushort bits)
    {
        const float TwoPow112 = 5.192296858534828E+33f; // 2^112 exactly
        uint shifted = (bits & 0x7FFFu) << 13;
        uint finite = BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(shifted) * TwoPow112);
        uint magnitude = shifted >= 0x7C00u << 13 ? shifted | 0x7F800000u : finite;
        return BitConverter.UInt32BitsToSingle(magnitude | (uint)(bits & 0x8000) << 16);
    }

    /// <summary>dw·da: the product of the f16 scales at the start of both blocks, exact in float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Scale(byte* w, byte* a) =>
        HalfToSingle(Unsafe.ReadUnaligned<ushort>(w)) * HalfToSingle(Unsafe.ReadUnaligned<ushort>(a));
}
