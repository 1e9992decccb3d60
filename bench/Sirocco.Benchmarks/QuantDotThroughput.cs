// Single-threaded matrix-vector throughput of the quantized dot products: a 4096 × 4096 weight matrix (Q8_0 or Q4_0)
// times one Q8_0 activation vector, one dot call per row, reference versus the dispatched SIMD kernel. Reports GB/s of
// weight bytes streamed (the matrix is 18 or 72 MiB, larger than cache, as real layers are).

using System.Diagnostics;
using Sirocco.Kernels.Quant;

namespace Sirocco.Benchmarks;

internal static class QuantDotThroughput
{
    private delegate float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int elementCount);

    public static int Run(string[] args)
    {
        const int rows = 4096, cols = 4096;
        var random = new Random(1);
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++)
        {
            x[i] = (float)(random.NextDouble() * 2 - 1);
        }
        byte[] activation = new byte[GgmlTypes.Get(GgmlType.Q8_0).RowBytes(cols)];
        Quantize.Q8_0(x, activation);
        Console.WriteLine($"quantized matvec {rows}x{cols}, 1 thread, GB/s of weight bytes (best pass of 2 s)");
        Console.WriteLine($"{"type",-6} {"kernel",-10} {"GB/s",8} {"ms/pass",8}");
        foreach (var type in new[] { GgmlType.Q8_0, GgmlType.Q4_0 })
        {
            int rowBytes = (int)GgmlTypes.Get(type).RowBytes(cols);
            byte[] weights = new byte[(long)rows * rowBytes];
            float[] rowValues = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                for (int i = 0; i < cols; i++)
                {
                    rowValues[i] = (float)(random.NextDouble() * 2 - 1);
                }
                Quantize.Row(type, rowValues, weights.AsSpan(r * rowBytes, rowBytes));
            }
            var (reference, fast) = type == GgmlType.Q8_0
                ? ((Dot)Kernels.Reference.QuantDot.DotQ8_0Q8_0, (Dot)Kernels.Simd.QuantDot.DotQ8_0Q8_0)
                : (Kernels.Reference.QuantDot.DotQ4_0Q8_0, Kernels.Simd.QuantDot.DotQ4_0Q8_0);
            foreach (var (name, dot) in new[] { ("reference", reference), ("simd", fast) })
            {
                double best = double.MaxValue;
                float[] y = new float[rows];
                // Passes for at least 2 s (and 5 passes): the first ones run Tier0 code until tiered compilation
                // replaces it, so only the best pass counts.
                long began = Stopwatch.GetTimestamp();
                for (int pass = 0; pass < 5 || Stopwatch.GetElapsedTime(began).TotalSeconds < 2; pass++)
                {
                    long start = Stopwatch.GetTimestamp();
                    for (int r = 0; r < rows; r++)
                    {
                        y[r] = dot(weights.AsSpan(r * rowBytes, rowBytes), activation, cols);
                    }
                    best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
                }
                Console.WriteLine($"{type,-6} {name,-10} {weights.Length / best / 1e9,8:F2} {best * 1e3,8:F2}");
            }
        }
        return 0;
    }
}
