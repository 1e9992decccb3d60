// Fast float kernels of the forward pass: dot products (f32, and f32 against the f16 KV cache), y += a·x, RMSNorm,
// softmax, SwiGLU's gate, residual adds and f16 conversions. Called by the engine's forward pass and attention; the
// f16 lane conversions here are shared with MatMul.Float.cs. Specification: Reference/Ops.cs; tests: Simd/OpsTests.cs.

using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Reference;

namespace Sirocco.Kernels.Simd;

/// <summary>Float kernels on spans, dispatched to the widest path available: <see cref="Vector256"/> (AVX2, with FMA
/// where the CPU has it), then <see cref="Vector128"/>, then the scalar reference (<see cref="Reference.Ops"/>).</summary>
/// <remarks>
/// Arguments, exceptions and aliasing rules are those of the reference methods; every length mismatch throws an
/// <see cref="ArgumentException"/> naming the parameter and both lengths. Element-wise kernels and the f16 conversions
/// give the reference's results bit for bit (an FMA in <see cref="MultiplyAdd"/> excepted, which rounds once where the
/// reference's double arithmetic rounds once too, so they agree except on rare double-rounding cases). Reductions sum
/// in float with several independent accumulators, so they differ from the double-accumulating reference by a few
/// float roundings per accumulator: the tests state the bound for each. No Vector512 path: the target machines have
/// no AVX-512, and these kernels are memory- or latency-bound at Mistral's sizes.
/// </remarks>
public static unsafe class Ops
{
    /// <summary>Elements SiluMul processes per chunk: its σ(gate) scratch lives on the stack and stays in L1.</summary>
    private const int SiluChunk = 256;

    /// <summary>Σ x[i]·y[i].</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        OpsChecks.SameLength(x.Length, y.Length, nameof(y));
        fixed (float* px = x, py = y)
        {
            if (Vector256.IsHardwareAccelerated)
            {
                return DotVector256(px, py, x.Length);
            }
            if (Vector128.IsHardwareAccelerated)
            {
                return DotVector128(px, py, x.Length);
            }
        }
        return Reference.Ops.Dot(x, y);
    }

    /// <summary>Σ x[i]·half(y[i]), where <paramref name="yHalfBits"/> holds IEEE binary16 bit patterns (a row of the
    /// f16 KV cache).</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static float DotHalf(ReadOnlySpan<float> x, ReadOnlySpan<ushort> yHalfBits)
    {
        OpsChecks.SameLength(x.Length, yHalfBits.Length, nameof(yHalfBits));
        fixed (float* px = x)
        fixed (ushort* py = yHalfBits)
        {
            if (Vector256.IsHardwareAccelerated)
            {
                return DotHalfVector256(px, py, x.Length);
            }
            if (Vector128.IsHardwareAccelerated)
            {
                return DotHalfVector128(px, py, x.Length);
            }
        }
        return Reference.Ops.DotHalf(x, yHalfBits);
    }

    /// <summary>y[i] += a·x[i] (fused multiply-add where the CPU has one).</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void MultiplyAdd(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        OpsChecks.SameLength(x.Length, y.Length, nameof(y));
        int n = y.Length, i = 0;
        fixed (float* px = x, py = y)
        {
            if (Vector256.IsHardwareAccelerated)
            {
                var va = Vector256.Create(a);
                for (; i + 8 <= n; i += 8)
                {
                    Vector256.MultiplyAddEstimate(va, Vector256.Load(px + i), Vector256.Load(py + i)).Store(py + i);
                }
            }
            else if (Vector128.IsHardwareAccelerated)
            {
                var va = Vector128.Create(a);
                for (; i + 4 <= n; i += 4)
                {
                    Vector128.MultiplyAddEstimate(va, Vector128.Load(px + i), Vector128.Load(py + i)).Store(py + i);
                }
            }
            // Scalar tail (and the whole row without SIMD), fused as the vector lanes are when FMA is there.
            for (; i < n; i++)
            {
                py[i] = float.MultiplyAddEstimate(a, px[i], py[i]);
            }
        }
    }

    /// <summary>y[i] += a·half(x[i]), where <paramref name="xHalfBits"/> holds IEEE binary16 bit patterns (a row of the
    /// f16 KV cache: attention's weighted sum of values).</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void MultiplyAddHalf(float a, ReadOnlySpan<ushort> xHalfBits, Span<float> y)
    {
        OpsChecks.SameLength(xHalfBits.Length, y.Length, nameof(y));
        int n = y.Length, i = 0;
        fixed (ushort* px = xHalfBits)
        fixed (float* py = y)
        {
            if (Vector256.IsHardwareAccelerated)
            {
                var va = Vector256.Create(a);
                for (; i + 8 <= n; i += 8)
                {
                    Vector256.MultiplyAddEstimate(va, LoadHalfValueVector256(px + i), Vector256.Load(py + i)).Store(py + i);
                }
            }
            else if (Vector128.IsHardwareAccelerated)
            {
                var va = Vector128.Create(a);
                for (; i + 8 <= n; i += 8)
                {
                    (Vector128<float> lower, Vector128<float> upper) = LoadHalfVector128(px + i);
                    Vector128.MultiplyAddEstimate(va, lower, Vector128.Load(py + i)).Store(py + i);
                    Vector128.MultiplyAddEstimate(va, upper, Vector128.Load(py + i + 4)).Store(py + i + 4);
                }
            }
            for (; i < n; i++)
            {
                py[i] = float.MultiplyAddEstimate(a, HalfBits.ToSingle(px[i]), py[i]);
            }
        }
    }

    /// <summary>y = x / √(mean(x²) + eps) · weight. <paramref name="y"/> may be the same memory as
    /// <paramref name="x"/>. An empty row is left empty.</summary>
    /// <remarks>Σx² is summed in float by <see cref="Dot"/>; the scale is formed in double, then each element is
    /// (x·scale)·weight with two float roundings.</remarks>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        OpsChecks.SameLength(x.Length, weight.Length, nameof(weight));
        OpsChecks.SameLength(x.Length, y.Length, nameof(y));
        if (x.Length == 0)
        {
            return;
        }
        float sumOfSquares = Dot(x, x);
        float scale = (float)(1 / Math.Sqrt((double)sumOfSquares / x.Length + eps));
        // Exact overlap of y with x is allowed by TensorPrimitives (each element is read before it is written).
        TensorPrimitives.Multiply(x, scale, y);
        TensorPrimitives.Multiply(y, weight, y);
    }

    /// <summary>x[i] = exp(x[i] − max) / Σ_j exp(x[j] − max), in place. Entries of −∞ (masked positions) become 0; a
    /// row whose entries are all −∞, or that holds a NaN, becomes all NaN. An empty row is left empty.</summary>
    public static void Softmax(Span<float> x)
    {
        if (x.Length == 0)
        {
            return;
        }
        float max = TensorPrimitives.Max(x); // NaN if any entry is NaN
        TensorPrimitives.Subtract(x, max, x);
        TensorPrimitives.Exp(x, x);
        float sum = TensorPrimitives.Sum(x); // ≥ 1: the maximum contributes exp(0)
        TensorPrimitives.Divide(x, sum, x);
    }

    /// <summary>y[i] = gate[i]·σ(gate[i])·up[i], SwiGLU's gated activation. <paramref name="y"/> may be the same memory
    /// as <paramref name="gate"/> or <paramref name="up"/>.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void SiluMul(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y)
    {
        OpsChecks.SameLength(gate.Length, up.Length, nameof(up));
        OpsChecks.SameLength(gate.Length, y.Length, nameof(y));
        // Chunked so that σ(gate) lives in a small stack buffer: each chunk of gate and up is read in full before the
        // same chunk of y is written, which is what makes y = gate and y = up safe.
        Span<float> silu = stackalloc float[SiluChunk];
        for (int start = 0; start < y.Length; start += SiluChunk)
        {
            int length = Math.Min(SiluChunk, y.Length - start);
            ReadOnlySpan<float> g = gate.Slice(start, length);
            Span<float> s = silu[..length];
            TensorPrimitives.Sigmoid(g, s);
            TensorPrimitives.Multiply(g, s, s);
            TensorPrimitives.Multiply(s, up.Slice(start, length), y.Slice(start, length));
        }
    }

    /// <summary>y[i] += x[i] (the residual connection).</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void Add(Span<float> y, ReadOnlySpan<float> x)
    {
        OpsChecks.SameLength(y.Length, x.Length, nameof(x));
        TensorPrimitives.Add(y, x, y);
    }

    /// <summary>x[i] *= factor.</summary>
    public static void Scale(Span<float> x, float factor) => TensorPrimitives.Multiply(x, factor, x);

    /// <summary>The binary16 bits of (Half)x[i]: round to nearest, ties to even; subnormal results; overflow to ±∞;
    /// NaN stays NaN (quiet, with the top payload bits), exactly as the <see cref="Half"/> conversion.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void ToHalf(ReadOnlySpan<float> x, Span<ushort> yHalfBits)
    {
        OpsChecks.SameLength(x.Length, yHalfBits.Length, nameof(yHalfBits));
        int n = x.Length, i = 0;
        fixed (float* px = x)
        fixed (ushort* py = yHalfBits)
        {
            if (Vector256.IsHardwareAccelerated)
            {
                for (; i + 16 <= n; i += 16)
                {
                    Vector256.Narrow(SingleToHalf(Vector256.Load(px + i)), SingleToHalf(Vector256.Load(px + i + 8))).Store(py + i);
                }
            }
            else if (Vector128.IsHardwareAccelerated)
            {
                for (; i + 8 <= n; i += 8)
                {
                    Vector128.Narrow(SingleToHalf(Vector128.Load(px + i)), SingleToHalf(Vector128.Load(px + i + 4))).Store(py + i);
                }
            }
            for (; i < n; i++)
            {
                py[i] = HalfBits.FromSingle(px[i]);
            }
        }
    }

    /// <summary>The exact float value of each binary16 bit pattern (a NaN comes back quiet, as (float)Half does).</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void FromHalf(ReadOnlySpan<ushort> xHalfBits, Span<float> y)
    {
        OpsChecks.SameLength(xHalfBits.Length, y.Length, nameof(y));
        fixed (ushort* px = xHalfBits)
        fixed (float* py = y)
        {
            FromHalf(px, py, y.Length);
        }
    }

    /// <summary><see cref="FromHalf(ReadOnlySpan{ushort}, Span{float})"/> on raw memory, for MatMul's weight tiles.</summary>
    internal static void FromHalf(ushort* x, float* y, int n)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 8 <= n; i += 8)
            {
                LoadHalfVector256(x + i).Store(y + i);
            }
        }
        else if (Vector128.IsHardwareAccelerated)
        {
            for (; i + 8 <= n; i += 8)
            {
                (Vector128<float> lower, Vector128<float> upper) = LoadHalfVector128(x + i);
                lower.Store(y + i);
                upper.Store(y + i + 4);
            }
        }
        for (; i < n; i++)
        {
            y[i] = HalfBits.ToSingle(x[i]);
        }
    }

    // ---- Reductions. Four accumulators so that consecutive multiply-adds do not wait on each other (FMA latency 4–5
    // cycles, two per cycle); lane j of accumulator k sums the products at indices ≡ 8k + j (mod 32). Whole vectors
    // past the last 32 go to acc0, the last n mod 8 elements are added in scalar after the horizontal sum.

    private static float DotVector256(float* x, float* y, int n)
    {
        Vector256<float> acc0 = Vector256<float>.Zero, acc1 = acc0, acc2 = acc0, acc3 = acc0;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            acc0 = Vector256.MultiplyAddEstimate(Vector256.Load(x + i), Vector256.Load(y + i), acc0);
            acc1 = Vector256.MultiplyAddEstimate(Vector256.Load(x + i + 8), Vector256.Load(y + i + 8), acc1);
            acc2 = Vector256.MultiplyAddEstimate(Vector256.Load(x + i + 16), Vector256.Load(y + i + 16), acc2);
            acc3 = Vector256.MultiplyAddEstimate(Vector256.Load(x + i + 24), Vector256.Load(y + i + 24), acc3);
        }
        for (; i + 8 <= n; i += 8)
        {
            acc0 = Vector256.MultiplyAddEstimate(Vector256.Load(x + i), Vector256.Load(y + i), acc0);
        }
        float sum = Vector256.Sum((acc0 + acc1) + (acc2 + acc3));
        for (; i < n; i++)
        {
            sum = float.MultiplyAddEstimate(x[i], y[i], sum);
        }
        return sum;
    }

    private static float DotVector128(float* x, float* y, int n)
    {
        Vector128<float> acc0 = Vector128<float>.Zero, acc1 = acc0, acc2 = acc0, acc3 = acc0;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            acc0 = Vector128.MultiplyAddEstimate(Vector128.Load(x + i), Vector128.Load(y + i), acc0);
            acc1 = Vector128.MultiplyAddEstimate(Vector128.Load(x + i + 4), Vector128.Load(y + i + 4), acc1);
            acc2 = Vector128.MultiplyAddEstimate(Vector128.Load(x + i + 8), Vector128.Load(y + i + 8), acc2);
            acc3 = Vector128.MultiplyAddEstimate(Vector128.Load(x + i + 12), Vector128.Load(y + i + 12), acc3);
        }
        for (; i + 4 <= n; i += 4)
        {
            acc0 = Vector128.MultiplyAddEstimate(Vector128.Load(x + i), Vector128.Load(y + i), acc0);
        }
        float sum = Vector128.Sum((acc0 + acc1) + (acc2 + acc3));
        for (; i < n; i++)
        {
            sum = float.MultiplyAddEstimate(x[i], y[i], sum);
        }
        return sum;
    }

    // The f16 dots convert 8 halves per step (integer work that dominates the cost), so two accumulators are enough
    // to cover the multiply-add latency. The Vector256 paths use the shorter value conversion (HalfToSingleValue):
    // measured 11.8 → 15.5 GB/s on the F16 matrix-vector product, the same kernel shape.

    private static float DotHalfVector256(float* x, ushort* y, int n)
    {
        Vector256<float> acc0 = Vector256<float>.Zero, acc1 = acc0;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            acc0 = Vector256.MultiplyAddEstimate(Vector256.Load(x + i), LoadHalfValueVector256(y + i), acc0);
            acc1 = Vector256.MultiplyAddEstimate(Vector256.Load(x + i + 8), LoadHalfValueVector256(y + i + 8), acc1);
        }
        if (i + 8 <= n)
        {
            acc0 = Vector256.MultiplyAddEstimate(Vector256.Load(x + i), LoadHalfValueVector256(y + i), acc0);
            i += 8;
        }
        float sum = Vector256.Sum(acc0 + acc1);
        for (; i < n; i++)
        {
            sum = float.MultiplyAddEstimate(x[i], HalfBits.ToSingle(y[i]), sum);
        }
        return sum;
    }

    private static float DotHalfVector128(float* x, ushort* y, int n)
    {
        Vector128<float> acc0 = Vector128<float>.Zero, acc1 = acc0;
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            (Vector128<float> lower, Vector128<float> upper) = LoadHalfVector128(y + i);
            acc0 = Vector128.MultiplyAddEstimate(Vector128.Load(x + i), lower, acc0);
            acc1 = Vector128.MultiplyAddEstimate(Vector128.Load(x + i + 4), upper, acc1);
        }
        float sum = Vector128.Sum(acc0 + acc1);
        for (; i < n; i++)
        {
            sum = float.MultiplyAddEstimate(x[i], HalfBits.ToSingle(y[i]), sum);
        }
        return sum;
    }

    // ---- f16 ↔ f32 on vector lanes, by integer arithmetic (.NET exposes no F16C intrinsics). Each 32-bit lane holds
    // one value; a half's bits sit in the low 16 bits of its lane. Both directions are exact, as the Half conversions.

    /// <summary>Loads 8 halves and widens them to 8 floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> LoadHalfVector256(ushort* p)
    {
        // vpmovzxwd: 8 × u16 from memory, zero-extended into the 8 u32 lanes (the portable form compiles to a load
        // plus the same instruction).
        Vector256<uint> bits = Avx2.IsSupported
            ? Avx2.ConvertToVector256Int32(p).AsUInt32()
            : Vector256.WidenLower(Vector128.Load(p).ToVector256Unsafe());
        return HalfToSingle(bits);
    }

    /// <summary>Loads 8 halves and widens them to 8 floats with <see cref="HalfToSingleValue"/> (for products).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> LoadHalfValueVector256(ushort* p)
    {
        Vector256<uint> bits = Avx2.IsSupported
            ? Avx2.ConvertToVector256Int32(p).AsUInt32()
            : Vector256.WidenLower(Vector128.Load(p).ToVector256Unsafe());
        return HalfToSingleValue(bits);
    }

    /// <summary>Loads 8 halves and widens them to two vectors of 4 floats (elements 0–3, 4–7).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static (Vector128<float> Lower, Vector128<float> Upper) LoadHalfVector128(ushort* p)
    {
        Vector128<ushort> bits = Vector128.Load(p);
        return (HalfToSingle(Vector128.WidenLower(bits)), HalfToSingle(Vector128.WidenUpper(bits)));
    }

    /// <summary>The floats whose halves' bits are the low 16 bits of each lane (the high bits must be zero).</summary>
    /// <remarks>
    /// A half is sign | 5-bit exponent (bias 15) | 10-bit mantissa. Shifting the 15 magnitude bits left by 13 lines
    /// the exponent and mantissa up with a float's fields, which leaves the exponent 112 (= 127 − 15) too small:
    /// <list type="bullet">
    /// <item>normal (exponent 1–30): add 112 to the exponent field (integer add of 0x3800_0000);</item>
    /// <item>∞ and NaN (exponent 31): the exponent must become 255, so OR in all exponent bits; a NaN also gets the
    /// quiet bit (0x0040_0000), as the Half conversion sets it;</item>
    /// <item>zero and subnormal (exponent 0, value m·2⁻²⁴): with exponent 113 the bits encode 2⁻¹⁴·(1 + m/1024);
    /// subtracting 2⁻¹⁴ in float leaves m·2⁻²⁴ exactly (both operands normal, so no slow denormal path).</item>
    /// </list>
    /// The sign moves from bit 15 to bit 31. Lane comparisons are signed, which is fine for 15-bit magnitudes.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> HalfToSingle(Vector256<uint> bits)
    {
        Vector256<int> magnitude = (bits & Vector256.Create(0x7FFFu)).AsInt32();
        Vector256<int> shifted = magnitude << 13;
        Vector256<int> normal = shifted + Vector256.Create(0x3800_0000);
        Vector256<int> isInfOrNaN = Vector256.GreaterThan(magnitude, Vector256.Create(0x7BFF));
        Vector256<int> isNaN = Vector256.GreaterThan(magnitude, Vector256.Create(0x7C00));
        normal |= (isInfOrNaN & Vector256.Create(0x7F80_0000)) | (isNaN & Vector256.Create(0x0040_0000));
        Vector256<float> subnormal = (shifted + Vector256.Create(0x3880_0000)).AsSingle() - Vector256.Create(1f / 16384);
        Vector256<int> isSubnormal = Vector256.LessThan(magnitude, Vector256.Create(0x0400));
        Vector256<int> value = Vector256.ConditionalSelect(isSubnormal, subnormal.AsInt32(), normal);
        return (value | ((bits & Vector256.Create(0x8000u)) << 16).AsInt32()).AsSingle();
    }

    /// <summary>Like <see cref="HalfToSingle(Vector256{uint})"/> for values, in about half the instructions, for the
    /// dot products and matrix products: every number, ±0 and ±∞ comes out exactly the same; a NaN stays a NaN but
    /// without the quiet bit forced (irrelevant once it is multiplied).</summary>
    /// <remarks>The 15 magnitude bits shifted left by 13 are a float 2¹¹² times too small (exponent bias 127 versus 15)
    /// whose mantissa is the half's; multiplying by 2¹¹² is exact for every finite half, subnormals included (they
    /// are float subnormals before the multiply, normal after). For ∞ and NaN (magnitude ≥ 0x7C00) the exponent field
    /// is then forced to all ones, keeping the mantissa. The sign moves from bit 15 to bit 31.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> HalfToSingleValue(Vector256<uint> bits)
    {
        Vector256<int> magnitude = (bits & Vector256.Create(0x7FFFu)).AsInt32();
        Vector256<float> value = (magnitude << 13).AsSingle() * Vector256.Create(5.192296858534828E+33f); // 2¹¹²
        Vector256<int> isInfOrNaN = Vector256.GreaterThan(magnitude, Vector256.Create(0x7BFF));
        Vector256<int> sign = (bits.AsInt32() << 16) & Vector256.Create(int.MinValue);
        return (value.AsInt32() | (isInfOrNaN & Vector256.Create(0x7F80_0000)) | sign).AsSingle();
    }

    /// <inheritdoc cref="HalfToSingle(Vector256{uint})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> HalfToSingle(Vector128<uint> bits)
    {
        Vector128<int> magnitude = (bits & Vector128.Create(0x7FFFu)).AsInt32();
        Vector128<int> shifted = magnitude << 13;
        Vector128<int> normal = shifted + Vector128.Create(0x3800_0000);
        Vector128<int> isInfOrNaN = Vector128.GreaterThan(magnitude, Vector128.Create(0x7BFF));
        Vector128<int> isNaN = Vector128.GreaterThan(magnitude, Vector128.Create(0x7C00));
        normal |= (isInfOrNaN & Vector128.Create(0x7F80_0000)) | (isNaN & Vector128.Create(0x0040_0000));
        Vector128<float> subnormal = (shifted + Vector128.Create(0x3880_0000)).AsSingle() - Vector128.Create(1f / 16384);
        Vector128<int> isSubnormal = Vector128.LessThan(magnitude, Vector128.Create(0x0400));
        Vector128<int> value = Vector128.ConditionalSelect(isSubnormal, subnormal.AsInt32(), normal);
        return (value | ((bits & Vector128.Create(0x8000u)) << 16).AsInt32()).AsSingle();
    }

    /// <summary>The bits of the half nearest each lane (ties to even) in the low 16 bits of the lane, high bits zero.
    /// </summary>
    /// <remarks>
    /// On the float's magnitude bits a (signed compares are fine: a &lt; 2³¹):
    /// <list type="bullet">
    /// <item>a ≥ 2⁻¹⁴ (a normal half or overflow): subtract 112 from the exponent, then shift the 13 extra mantissa bits
    /// out, first adding 0xFFF plus the lowest kept bit so that the shift rounds to nearest with ties to even. A
    /// carry out of the mantissa correctly bumps the exponent; results past 0x7C00 (≥ 65520, or ∞) clamp to ∞;</item>
    /// <item>a &lt; 2⁻¹⁴ (a subnormal half or zero): in float, 0.5 + a has an ulp of 2⁻²⁴, a half subnormal's step, so
    /// the float addition itself rounds a to a multiple of 2⁻²⁴ (ties to even), and the difference of the sum's bits
    /// from 0.5's is that multiple: the half's bits (0x400, the smallest normal, when it rounds up);</item>
    /// <item>NaN: 0x7E00 (quiet) with the top 9 payload bits, as the Half conversion does.</item>
    /// </list>
    /// The sign moves from bit 31 to bit 15.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<uint> SingleToHalf(Vector256<float> x)
    {
        Vector256<int> bits = x.AsInt32();
        Vector256<int> magnitude = bits & Vector256.Create(0x7FFF_FFFF);
        Vector256<int> roundBias = Vector256.Create(0x0FFF - 0x3800_0000) + ((magnitude >>> 13) & Vector256.Create(1));
        Vector256<int> normal = Vector256.Min((magnitude + roundBias) >>> 13, Vector256.Create(0x7C00));
        Vector256<int> subnormal = (magnitude.AsSingle() + Vector256.Create(0.5f)).AsInt32() - Vector256.Create(0x3F00_0000);
        Vector256<int> value = Vector256.ConditionalSelect(Vector256.LessThan(magnitude, Vector256.Create(0x3880_0000)), subnormal, normal);
        Vector256<int> nan = Vector256.Create(0x7E00) | ((magnitude >>> 13) & Vector256.Create(0x3FF));
        value = Vector256.ConditionalSelect(Vector256.GreaterThan(magnitude, Vector256.Create(0x7F80_0000)), nan, value);
        return (value | ((bits >>> 16) & Vector256.Create(0x8000))).AsUInt32();
    }

    /// <inheritdoc cref="SingleToHalf(Vector256{float})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<uint> SingleToHalf(Vector128<float> x)
    {
        Vector128<int> bits = x.AsInt32();
        Vector128<int> magnitude = bits & Vector128.Create(0x7FFF_FFFF);
        Vector128<int> roundBias = Vector128.Create(0x0FFF - 0x3800_0000) + ((magnitude >>> 13) & Vector128.Create(1));
        Vector128<int> normal = Vector128.Min((magnitude + roundBias) >>> 13, Vector128.Create(0x7C00));
        Vector128<int> subnormal = (magnitude.AsSingle() + Vector128.Create(0.5f)).AsInt32() - Vector128.Create(0x3F00_0000);
        Vector128<int> value = Vector128.ConditionalSelect(Vector128.LessThan(magnitude, Vector128.Create(0x3880_0000)), subnormal, normal);
        Vector128<int> nan = Vector128.Create(0x7E00) | ((magnitude >>> 13) & Vector128.Create(0x3FF));
        value = Vector128.ConditionalSelect(Vector128.GreaterThan(magnitude, Vector128.Create(0x7F80_0000)), nan, value);
        return (value | ((bits >>> 16) & Vector128.Create(0x8000))).AsUInt32();
    }
}
