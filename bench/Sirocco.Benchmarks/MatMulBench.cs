// MatMul throughput for every quantized weight type, one thread: decode (1 token) on 4096 × 4096 and 14336 × 4096 in
// GB/s of weight bytes streamed, and prefill (64 tokens) on 4096 × 4096 in GFLOP/s (2·rows·columns·tokens per pass).
// The baseline column is the per-row dot product loop MatMul used before its tiled kernels (decode, 4096 × 4096).
// The DRAM columns cycle decode over several copies of a matrix (together 4× the L3 or more), so every pass streams
// its weights from memory: 14336 × 4096 (an FFN matrix) and 32000 × 4096 (the output head), 1 thread and 2 threads.
// Usage: matmul [seconds per figure, default 1] [types, comma-separated, default all five].

using System.Diagnostics;
using Sirocco.Kernels;
using Sirocco.Kernels.Memory;
using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Simd;

namespace Sirocco.Benchmarks;

internal static class MatMulBench
{
    private const int DistinctRows = 64; // rows quantized, then repeated: realistic bytes without minutes of K-quant search

    // Prefill is timed on 256-row slices (about 1–3 ms each, a different slice each pass): a whole 4096-row pass takes
    // tens of milliseconds, longer than a scheduler time slice on a shared machine, so no pass would run undisturbed.
    private const int PrefillChunkRows = 256;

    public static int Run(string[] args)
    {
        double seconds = args.Length > 0 ? double.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 1.0;
        GgmlType[] types = args.Length > 1
            ? args[1].Split(',').Select(Enum.Parse<GgmlType>).ToArray()
            : [GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];
        Console.WriteLine($"MatMul, 1 thread, best pass of {seconds:F1} s; decode in GB/s of weight bytes, prefill (64 tokens) in GFLOP/s");
        Console.WriteLine($"{"type",-5} {"row-dot 4096²",14} {"decode 4096²",13} {"decode 14336x4096",18} {"prefill 64 tok 4096²",21}"
            + $" {"DRAM 14336x4096",16} {"DRAM 32000x4096",16} {"DRAM 14336 2 thr",17} {"DRAM 32000 2 thr",17}");
        foreach (var type in types)
        {
            using var small = CreateMatrix(type, 4096, 4096);
            using var large = CreateMatrix(type, 14336, 4096);
            double baseline = RowDotGBs(type, small, seconds);
            double decodeSmall = small.ByteCount / Best(small, 1, seconds) / 1e9;
            double decodeLarge = large.ByteCount / Best(large, 1, seconds) / 1e9;
            double prefill = 2.0 * PrefillChunkRows * 4096 * 64 / Best(small, 64, seconds, PrefillChunkRows) / 1e9;
            double dramFfn = DramGBs(type, 14336, 4, seconds, 1), dramHead = DramGBs(type, 32000, 2, seconds, 1);
            double dramFfn2 = DramGBs(type, 14336, 4, seconds, 2), dramHead2 = DramGBs(type, 32000, 2, seconds, 2);
            Console.WriteLine($"{type,-5} {baseline,14:F2} {decodeSmall,13:F2} {decodeLarge,18:F2} {prefill,21:F1}"
                + $" {dramFfn,16:F2} {dramHead,16:F2} {dramFfn2,17:F2} {dramHead2,17:F2}");
        }
        return 0;
    }

    /// <summary>Seconds of the fastest Multiply over <paramref name="chunkRows"/> rows (all rows when 0) for
    /// <paramref name="tokens"/> activation rows.</summary>
    private static double Best(Matrix m, int tokens, double seconds, int chunkRows = 0)
    {
        var w = m.View;
        int actBytes = MatMul.ActivationRowBytes(w.Type, w.Columns);
        using var act = new NativeBuffer<byte>((long)actBytes * tokens);
        var random = new Random(2);
        float[] x = new float[w.Columns];
        for (int t = 0; t < tokens; t++)
        {
            for (int i = 0; i < x.Length; i++)
            {
                x[i] = (float)(random.NextDouble() * 2 - 1);
            }
            MatMul.QuantizeActivation(w.Type, x, act.Slice((long)t * actBytes, actBytes));
        }
        float[] output = new float[w.Rows * tokens];
        int rows = chunkRows == 0 ? w.Rows : chunkRows;
        double best = double.MaxValue;
        long began = Stopwatch.GetTimestamp();
        // At least 3 passes and `seconds` of them: early passes run Tier0 code until tiered compilation replaces it.
        for (int pass = 0; pass < 3 || Stopwatch.GetElapsedTime(began).TotalSeconds < seconds; pass++)
        {
            int first = pass % (w.Rows / rows) * rows;
            long start = Stopwatch.GetTimestamp();
            MatMul.Multiply(w, first, first + rows, act.Span, tokens, output, w.Rows);
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return best;
    }

    /// <summary>Decode GB/s from DRAM: <paramref name="copies"/> matrices of <paramref name="rows"/> × 4096 (at least
    /// 4× the 32 MiB L3 in all) multiplied in turn, so each pass reads a matrix evicted since its last use; the median
    /// pass, rows split evenly over <paramref name="threads"/> threads.</summary>
    private static double DramGBs(GgmlType type, int rows, int copies, double seconds, int threads)
    {
        const int columns = 4096;
        var matrices = Enumerable.Range(0, copies).Select(_ => CreateMatrix(type, rows, columns)).ToArray();
        try
        {
            int actBytes = MatMul.ActivationRowBytes(type, columns);
            byte[] act = new byte[actBytes];
            var random = new Random(2);
            MatMul.QuantizeActivation(type, Enumerable.Range(0, columns).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray(), act);
            float[] output = new float[rows];
            var times = new List<double>();
            long began = Stopwatch.GetTimestamp();
            int share = (rows / threads + 3) / 4 * 4; // whole 4-row tiles per thread
            for (int pass = 0; pass < 4 * copies || Stopwatch.GetElapsedTime(began).TotalSeconds < seconds; pass++)
            {
                var w = matrices[pass % copies].View;
                long start = Stopwatch.GetTimestamp();
                if (threads == 1)
                {
                    MatMul.Multiply(w, 0, rows, act, 1, output, rows);
                }
                else
                {
                    Parallel.For(0, threads, i => MatMul.Multiply(w, i * share, Math.Min(rows, (i + 1) * share), act, 1, output, rows));
                }
                if (pass >= 2 * copies) // the first passes run Tier0 code
                {
                    times.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
                }
            }
            times.Sort();
            return matrices[0].ByteCount / times[times.Count / 2] / 1e9;
        }
        finally
        {
            foreach (var m in matrices)
            {
                m.Dispose();
            }
        }
    }

    /// <summary>GB/s of the old decode path: one public dot product call per row (reference dots for the K-quants).</summary>
    private static double RowDotGBs(GgmlType type, Matrix m, double seconds)
    {
        var w = m.View;
        GgmlType actType = type is GgmlType.Q8_0 or GgmlType.Q4_0 ? GgmlType.Q8_0 : GgmlType.Q8_K;
        byte[] act = new byte[GgmlTypes.Get(actType).RowBytes(w.Columns)];
        var random = new Random(3);
        Quantize.Row(actType, Enumerable.Range(0, w.Columns).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray(), act);
        Func<int, float> dot = type switch
        {
            GgmlType.Q8_0 => r => QuantDot.DotQ8_0Q8_0(w.Row(r), act, w.Columns),
            GgmlType.Q4_0 => r => QuantDot.DotQ4_0Q8_0(w.Row(r), act, w.Columns),
            GgmlType.Q4_K => r => Kernels.Reference.QuantDot.DotQ4_KQ8_K(w.Row(r), act, w.Columns),
            GgmlType.Q5_K => r => Kernels.Reference.QuantDot.DotQ5_KQ8_K(w.Row(r), act, w.Columns),
            _ => r => Kernels.Reference.QuantDot.DotQ6_KQ8_K(w.Row(r), act, w.Columns),
        };
        double best = double.MaxValue;
        long began = Stopwatch.GetTimestamp();
        for (int pass = 0; pass < 2 || Stopwatch.GetElapsedTime(began).TotalSeconds < seconds; pass++)
        {
            long start = Stopwatch.GetTimestamp();
            float sink = 0;
            for (int r = 0; r < w.Rows; r++)
            {
                sink += dot(r);
            }
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
            GC.KeepAlive(sink);
        }
        return m.ByteCount / best / 1e9;
    }

    private static Matrix CreateMatrix(GgmlType type, int rows, int columns)
    {
        var m = new Matrix(type, rows, columns);
        int rowBytes = (int)GgmlTypes.Get(type).RowBytes(columns);
        var random = new Random(1);
        float[] values = new float[columns];
        for (int r = 0; r < DistinctRows; r++)
        {
            for (int i = 0; i < columns; i++)
            {
                values[i] = (float)(random.NextDouble() * 2 - 1);
            }
            Quantize.Row(type, values, m.Buffer.Slice((long)r * rowBytes, rowBytes));
        }
        for (int r = DistinctRows; r < rows; r++)
        {
            m.Buffer.Slice((long)(r % DistinctRows) * rowBytes, rowBytes).CopyTo(m.Buffer.Slice((long)r * rowBytes, rowBytes));
        }
        return m;
    }

    /// <summary>A weight matrix in native (64-byte-aligned) memory.</summary>
    private sealed class Matrix(GgmlType type, int rows, int columns) : IDisposable
    {
        public NativeBuffer<byte> Buffer { get; } = new(GgmlTypes.Get(type).RowBytes(columns) * rows);

        public WeightMatrix View => new(type, Buffer.Address, rows, columns);

        public long ByteCount => Buffer.ByteCount;

        public void Dispose() => Buffer.Dispose();
    }
}
