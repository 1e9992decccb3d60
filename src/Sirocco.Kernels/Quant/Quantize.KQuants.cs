// K-quant quantizers (Q4_K, Q5_K, Q6_K): a least-squares scale (and min) search per sub-block, then the sub-block
// scales quantized against f16 super-scales, then every element re-quantized with the scales actually stored.
// Part of Quantize; the byte layouts are documented in Reference/Dequantize.cs. Errors: docs/QUANTIZATION.md.

namespace Sirocco.Kernels.Quant;

public static partial class Quantize
{
    private const int QK_K = 256;

    /// <summary>Below this largest magnitude a Q6_K sub-block (or super-block) is treated as all zero (ggml's
    /// GROUP_MAX_EPS): a scale computed from it would be meaningless.</summary>
    private const float GroupMaxEps = 1e-15f;

    // The scale search (the idea of ggml's make_qkx2_quants and make_qx_quants; the code is our own). For a sub-block
    // with range [lo, hi] and codes 0..nmax, the natural inverse scale is nmax / (hi − lo). Rounding with a slightly
    // larger or smaller inverse scale moves elements between levels; for each candidate we round, fit the scale (and
    // the offset) to the chosen levels by weighted least squares, and keep the fit with the smallest weighted squared
    // error. For Q4_K/Q5_K, as in ggml, later candidates round from the best offset found so far, not from the raw
    // minimum: this walk matters (without it Q4_K's RMS error on N(0,1) data is 0.6% worse than ggml's). Measured
    // on N(0,1) data, the result matches ggml's reference RMS error for Q4_K and beats it slightly for Q5_K and Q6_K,
    // at about the speed of ggml's scalar reference (numbers and bounds in docs/QUANTIZATION.md).

    /// <summary>Offsets δ tried as inverse scale (nmax + δ) / (hi − lo) for Q4_K and Q5_K sub-blocks.</summary>
    /// <remarks>21 steps of 0.1, as ggml uses for Q4_K; halving them costs Q4_K 0.2% of RMS error and gains 40% speed.</remarks>
    private static ReadOnlySpan<float> AsymmetricDeltas =>
        [-1.0f, -0.9f, -0.8f, -0.7f, -0.6f, -0.5f, -0.4f, -0.3f, -0.2f, -0.1f, 0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 1.0f];

    /// <summary>Offsets δ tried as inverse scale −(32 + δ) / max for Q6_K sub-blocks.</summary>
    /// <remarks>9 values 0.2 apart already beat ggml's 19 on RMS error (Q6_K has 64 levels, so the search matters
    /// less). δ = 0 comes first and only a strictly better fit replaces it, so a block the plain scale already fits
    /// exactly (all equal values, say) keeps it.</remarks>
    private static ReadOnlySpan<float> SymmetricDeltas => [0f, -0.2f, 0.2f, -0.4f, 0.4f, -0.6f, 0.6f, -0.8f, 0.8f];

    /// <summary>Q4_K row: per 32 elements a 6-bit scale and 6-bit min, per 256 elements f16 super-scales; codes
    /// 0..15 with x ≈ (d · sc) · q − (dmin · m).</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q4_K(ReadOnlySpan<float> src, Span<byte> dst) => ScaleMinK(GgmlType.Q4_K, src, dst);

    /// <summary>Q5_K row: as <see cref="Q4_K"/> with codes 0..31 (a fifth bit per element in qh).</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q5_K(ReadOnlySpan<float> src, Span<byte> dst) => ScaleMinK(GgmlType.Q5_K, src, dst);

    /// <summary>Q4_K and Q5_K, which differ only in the number of levels and where the fifth bit goes.</summary>
    private static void ScaleMinK(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        int blockCount = BlockRows.Check(type, src.Length, dst.Length, nameof(src), nameof(dst));
        bool isQ5 = type == GgmlType.Q5_K;
        int nmax = isQ5 ? 31 : 15;
        int blockBytes = isQ5 ? 176 : 144;
        Span<float> scales = stackalloc float[8]; // fitted scale of each 32-element sub-block
        Span<float> mins = stackalloc float[8];   // fitted min, as the positive amount subtracted
        Span<float> weights = stackalloc float[32];
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * QK_K, QK_K);
            Span<byte> block = dst.Slice(b * blockBytes, blockBytes);
            block.Clear();

            // 1. Best (scale, min) per sub-block, in float.
            float maxScale = 0f, maxMin = 0f;
            for (int s = 0; s < 8; s++)
            {
                scales[s] = FitScaleMin(x.Slice(32 * s, 32), nmax, weights, out mins[s]);
                maxScale = MathF.Max(maxScale, scales[s]);
                maxMin = MathF.Max(maxMin, mins[s]);
            }

            // 2. Super-scales in f16, chosen so the largest scale and min become 63; then each sub-block scale and
            //    min rounded to 6 bits against the f16 values actually stored.
            float d = WriteHalf(block, 0, maxScale / 63f);
            float dmin = WriteHalf(block, 2, maxMin / 63f);
            Span<byte> packedScales = block.Slice(4, 12);
            Span<byte> qh = isQ5 ? block.Slice(16, 32) : default;
            Span<byte> qs = block.Slice(isQ5 ? 48 : 16, 128);
            for (int s = 0; s < 8; s++)
            {
                int ls = d > 0f ? Math.Min(63, (int)MathF.Round(scales[s] / d)) : 0;
                int lm = dmin > 0f ? Math.Min(63, (int)MathF.Round(mins[s] / dmin)) : 0;
                float sc = d * ls;
                if (sc == 0f && dmin > 0f)
                {
                    // No usable scale (a constant sub-block, or scales so small that d underflowed in f16): every
                    // element decodes to −m, so take the m nearest the sub-block's mean rather than its fitted min.
                    lm = Math.Clamp((int)MathF.Round(-Mean(x.Slice(32 * s, 32)) / dmin), 0, 63);
                }
                PackScaleMinK4(packedScales, s, ls, lm);

                // 3. Every element re-quantized with the stored scale and min (what the dequantizer will use).
                float m = dmin * lm;
                float inverse = sc > 0f ? 1f / sc : 0f;
                for (int i = 0; i < 32; i++)
                {
                    int e = 32 * s + i;
                    int q = Math.Clamp((int)MathF.Round((x[e] + m) * inverse), 0, nmax);
                    qs[32 * (e / 64) + i] |= (byte)((q & 0xF) << (s % 2 == 1 ? 4 : 0));
                    if (isQ5)
                    {
                        qh[i] |= (byte)((q >> 4) << s);
                    }
                }
            }
        }
    }

    /// <summary>Fits x ≈ scale · q − min with q in 0..<paramref name="nmax"/>, scale ≥ 0 and min ≥ 0, minimising the
    /// weighted squared error over a few candidate roundings (see the note above); returns the scale.</summary>
    /// <param name="x">The sub-block's elements.</param>
    /// <param name="nmax">Largest code.</param>
    /// <param name="weights">Scratch of x.Length floats, overwritten with the error weights.</param>
    /// <param name="min">The fitted min, as the non-negative amount subtracted.</param>
    private static float FitScaleMin(ReadOnlySpan<float> x, int nmax, Span<float> weights, out float min)
    {
        float lo = x[0], hi = x[0];
        double sumX2 = 0;
        foreach (float v in x)
        {
            lo = MathF.Min(lo, v);
            hi = MathF.Max(hi, v);
            sumX2 += (double)v * v;
        }
        // The format can only subtract a min, so a block that is all positive is fitted from zero.
        lo = MathF.Min(lo, 0f);
        if (hi == lo)
        {
            min = -lo; // constant block (or all zero): every element is −min, scale unused
            return 0f;
        }

        double sumW = 0, sumWX = 0, sumWX2 = 0;
        FillWeights(x, sumX2, weights);
        for (int i = 0; i < x.Length; i++)
        {
            double w = weights[i], v = x[i];
            sumW += w;
            sumWX += w * v;
            sumWX2 += w * v * v;
        }

        double bestError = double.PositiveInfinity, bestScale = (hi - lo) / nmax, bestOffset = lo;
        foreach (float delta in AsymmetricDeltas)
        {
            float iscale = (nmax + delta) / (hi - lo);
            double sumWL = 0, sumWL2 = 0, sumWXL = 0;
            for (int i = 0; i < x.Length; i++)
            {
                int l = Math.Clamp((int)MathF.Round(iscale * (x[i] - lo)), 0, nmax);
                double wl = (double)weights[i] * l;
                sumWL += wl;
                sumWL2 += wl * l;
                sumWXL += wl * x[i];
            }
            // Weighted least squares for x ≈ scale · l + offset, with offset ≤ 0 (the min is subtracted).
            double det = sumW * sumWL2 - sumWL * sumWL;
            if (det <= 0)
            {
                continue; // every element on one level: this rounding cannot define a scale
            }
            double scale = (sumW * sumWXL - sumWX * sumWL) / det;
            double offset = (sumWL2 * sumWX - sumWL * sumWXL) / det;
            if (offset > 0)
            {
                offset = 0;
                scale = sumWXL / sumWL2;
            }
            // Σ w (scale · l + offset − x)², expanded in the sums already at hand.
            double error = sumWX2 + scale * scale * sumWL2 + sumW * offset * offset
                - 2 * scale * sumWXL - 2 * offset * sumWX + 2 * scale * offset * sumWL;
            if (error < bestError)
            {
                bestError = error;
                bestScale = scale;
                bestOffset = offset;
                lo = (float)offset; // later candidates round from the best fit so far (see the note above)
            }
        }
        min = (float)-bestOffset;
        return (float)Math.Max(bestScale, 0);
    }

    private static float Mean(ReadOnlySpan<float> x)
    {
        double sum = 0;
        foreach (float v in x)
        {
            sum += v;
        }
        return (float)(sum / x.Length);
    }

    /// <summary>Error weights w = rms(x) + |x| (ggml's choice for the K-quants without an importance matrix): large
    /// elements count more, which bounds their error, while the rms term keeps small ones from being ignored.</summary>
    private static void FillWeights(ReadOnlySpan<float> x, double sumX2, Span<float> weights)
    {
        float rms = (float)Math.Sqrt(sumX2 / x.Length);
        for (int i = 0; i < x.Length; i++)
        {
            weights[i] = rms + MathF.Abs(x[i]);
        }
    }

    /// <summary>Stores 6-bit scale <paramref name="ls"/> and min <paramref name="lm"/> of sub-block
    /// <paramref name="s"/> into the 12 packed bytes (inverse of Reference.Dequantize.ScaleMinK4; bytes start at 0).</summary>
    private static void PackScaleMinK4(Span<byte> packed, int s, int ls, int lm)
    {
        if (s < 4)
        {
            packed[s] |= (byte)ls;
            packed[s + 4] |= (byte)lm;
        }
        else
        {
            packed[s + 4] = (byte)((ls & 0xF) | (lm & 0xF) << 4);
            packed[s - 4] |= (byte)((ls >> 4) << 6);
            packed[s] |= (byte)((lm >> 4) << 6);
        }
    }

    /// <summary>Q6_K row: per 16 elements an int8 scale, per 256 elements an f16 super-scale; codes −32..31 with
    /// x ≈ (d · sc) · q.</summary>
    /// <exception cref="ArgumentException">Lengths disagree (see <see cref="Row"/>).</exception>
    public static void Q6_K(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int blockCount = BlockRows.Check(GgmlType.Q6_K, src.Length, dst.Length, nameof(src), nameof(dst));
        Span<float> scales = stackalloc float[16]; // fitted signed scale of each 16-element sub-block
        Span<float> weights = stackalloc float[16];
        for (int b = 0; b < blockCount; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * QK_K, QK_K);
            Span<byte> block = dst.Slice(b * 210, 210);
            block.Clear();

            // 1. Best signed scale per sub-block; the one of largest magnitude sets the super-scale.
            float maxScale = 0f;
            for (int s = 0; s < 16; s++)
            {
                scales[s] = FitScaleSymmetric(x.Slice(16 * s, 16), weights);
                if (MathF.Abs(scales[s]) > MathF.Abs(maxScale))
                {
                    maxScale = scales[s];
                }
            }
            if (MathF.Abs(maxScale) < GroupMaxEps)
            {
                continue; // all-zero bytes: d = 0, every element decodes to 0
            }

            // 2. d = −maxScale / 128 so that the largest scale lands on −128, the end of int8 with the extra value
            //    (the same trick the elements use with −32). Scales are rounded against the f16 d actually stored.
            float d = WriteHalf(block, 208, maxScale / -128f);
            Span<byte> ql = block.Slice(0, 128);
            Span<byte> qh = block.Slice(128, 64);
            Span<byte> sc = block.Slice(192, 16);
            for (int s = 0; s < 16; s++)
            {
                int ls = d != 0f ? Math.Clamp((int)MathF.Round(scales[s] / d), -128, 127) : 0;
                sc[s] = (byte)(sbyte)ls;

                // 3. Every element re-quantized with the stored scale.
                float step = d * ls;
                float inverse = step != 0f ? 1f / step : 0f;
                for (int i = 0; i < 16; i++)
                {
                    int e = 16 * s + i;
                    int q = Math.Clamp((int)MathF.Round(x[e] * inverse), -32, 31) + 32;
                    int h = e / 128, t = e % 128 / 32, l = e % 32;
                    ql[64 * h + 32 * (t % 2) + l] |= (byte)((q & 0xF) << (t >= 2 ? 4 : 0));
                    qh[32 * h + l] |= (byte)((q >> 4) << (2 * t));
                }
            }
        }
    }

    /// <summary>Fits x ≈ scale · q with q in −32..31 minimising the weighted squared error over a few candidate
    /// roundings; returns the (signed) scale, 0 for a block that is all (nearly) zero.</summary>
    /// <param name="x">The sub-block's elements.</param>
    /// <param name="weights">Scratch of x.Length floats, overwritten with the error weights.</param>
    private static float FitScaleSymmetric(ReadOnlySpan<float> x, Span<float> weights)
    {
        float max = SignedAbsMax(x);
        if (MathF.Abs(max) < GroupMaxEps)
        {
            return 0f;
        }
        double sumX2 = 0;
        foreach (float v in x)
        {
            sumX2 += (double)v * v;
        }
        FillWeights(x, sumX2, weights);

        // Minimising Σ w (scale · l − x)² over scale gives scale = Σwxl / Σwl² and error Σwx² − (Σwxl)² / Σwl²,
        // so the best candidate is the one with the largest (Σwxl)² / Σwl².
        double bestScore = -1, bestScale = 0;
        foreach (float delta in SymmetricDeltas)
        {
            float iscale = -(32 + delta) / max;
            double sumWL2 = 0, sumWXL = 0;
            for (int i = 0; i < x.Length; i++)
            {
                int l = Math.Clamp((int)MathF.Round(iscale * x[i]), -32, 31);
                double wl = (double)weights[i] * l;
                sumWL2 += wl * l;
                sumWXL += wl * x[i];
            }
            if (sumWL2 > 0 && sumWXL * sumWXL / sumWL2 > bestScore)
            {
                bestScore = sumWXL * sumWXL / sumWL2;
                bestScale = sumWXL / sumWL2;
            }
        }
        return (float)bestScale;
    }
}
