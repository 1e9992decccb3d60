// `sirocco bench --model PATH [--lora A --lora B …]`: prefill and decode throughput on this machine, the way
// llama.cpp's llama-bench measures them (random tokens, fresh context per run, pp = prompt tokens/s, tg = generated
// tokens/s), plus the memory-bandwidth ceiling measured by the command itself and decode's fraction of it, and resident
// memory. With adapters, every test runs base and each adapter in turn within each repetition (base, A, B, base, A, B
// …) so that drift on a shared machine hits all alike, and prints each adapter's cost relative to the base.

using System.CommandLine;
using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;
using Sirocco.Engine.Threading;
using Sirocco.Kernels.Memory;

namespace Sirocco.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create()
    {
        var model = new ModelArguments();
        var prompts = new Option<string>("--prompt", "-p") { Description = "Prompt lengths to time, comma-separated", DefaultValueFactory = _ => "128,512" };
        var decode = new Option<int>("--decode", "-n") { Description = "Tokens to generate in the decode test", DefaultValueFactory = _ => 64 };
        var repetitions = new Option<int>("--repetitions", "-r") { Description = "Runs of each test (mean and spread are printed)", DefaultValueFactory = _ => 3 };
        var parallel = new Option<string?>("--parallel") { Description = "Also time decode with N sequences batched in each step (what continuous batching does), comma-separated, e.g. 1,2,4,8" };
        var lora = new LoraArguments(many: true);
        var command = new Command("bench", "Measure prefill and decode speed, memory bandwidth and resident memory") { prompts, decode, repetitions, parallel };
        model.AddTo(command);
        lora.AddTo(command);
        command.SetAction(parse => CliErrors.Run("bench", () =>
        {
            int[] promptLengths = ParseLengths(parse.GetValue(prompts)!);
            int decodeTokens = parse.GetValue(decode), runs = parse.GetValue(repetitions);
            if (decodeTokens < 0 || runs < 1)
            {
                throw new CliUsageException("--decode must be ≥ 0 and --repetitions ≥ 1");
            }
            int maxPrompt = promptLengths.Length == 0 ? 1 : promptLengths.Max();
            int[] batchSizes = parse.GetValue(parallel) is { } sizes ? ParseLengths(sizes) : [];
            if (batchSizes.Any(n => n > 512) || (batchSizes.Length > 0 && decodeTokens == 0))
            {
                throw new CliUsageException("--parallel takes sequence counts from 1 to 512 and needs --decode above 0");
            }
            maxPrompt = Math.Max(maxPrompt, batchSizes.DefaultIfEmpty(1).Max());
            lora.Limits(parse);
            string modelPath = model.Resolve(parse).Path;
            var clock = Stopwatch.StartNew();
            using LlamaModel llama = model.Load(parse, modelPath, maxBatchTokens: Math.Clamp(maxPrompt, 1, 512));
            double loadSeconds = clock.Elapsed.TotalSeconds;
            // The base model first, then each adapter, in the order given.
            List<(string Name, LoraAdapter? Adapter)> variants = [("base", null)];
            foreach (string path in lora.Paths(parse))
            {
                string name = Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(path));
                variants.Add((name, lora.Load(path, parse, llama)));
            }
            ModelConfig config = llama.Config;
            if (maxPrompt + decodeTokens > config.ContextLength)
            {
                throw new CliUsageException($"a prompt of {maxPrompt} plus {decodeTokens} generated tokens exceeds the context of {config.ContextLength}");
            }
            KvCacheType cacheType = model.CacheType(parse);
            using KvCachePool cache = llama.CreateCache(KvCacheOptions.ForPositions(config, Math.Max(maxPrompt, decodeTokens) + 16, cacheType));

            TextWriter o = Console.Out;
            o.WriteLine($"model      {llama.Weights.SourcePath}: {llama.Weights.Description}");
            o.WriteLine($"           {config.LayerCount} layers, width {config.ModelDim}, weights read per token {llama.Weights.BytesPerToken / 1e9:0.000} GB, loaded in {loadSeconds:0.0} s");
            o.WriteLine($"machine    {CpuName()}, {Environment.ProcessorCount} logical cores, {Isa()}; {llama.ThreadCount} threads");
            double bandwidth = MeasureBandwidth(llama.ThreadCount);
            o.WriteLine($"bandwidth  {bandwidth / 1e9:0.0} GB/s streaming read on {llama.ThreadCount} threads (best of 5 passes over 512 MiB)");

            var random = new Random(1234);
            int RandomToken() => random.Next(3, config.VocabSize);
            // Warm-up: one short prompt and a few decode steps fault the mapped weights (and each adapter) in and
            // settle the caches.
            foreach ((_, LoraAdapter? adapter) in variants)
            {
                Time(llama, cache, [.. Enumerable.Range(0, Math.Min(maxPrompt, 16)).Select(_ => RandomToken())], 4, RandomToken, adapter);
            }
            long rssWarm = ReadStatus("VmRSS");

            int nameWidth = variants.Count == 1 ? 8 : Math.Max(8, variants.Max(v => v.Name.Length) + 8);
            o.WriteLine($"{"test".PadRight(nameWidth)} {"tokens/s",10} {"±",8} {"ms/token",10}");
            foreach (int length in promptLengths)
            {
                List<double>[] rates = Interleaved(variants, runs, adapter =>
                {
                    int[] prompt = [.. Enumerable.Range(0, length).Select(_ => RandomToken())];
                    (double prefill, _) = Time(llama, cache, prompt, 0, RandomToken, adapter);
                    return length / prefill;
                });
                for (int v = 0; v < variants.Count; v++)
                {
                    Print(o, Label($"pp{length}", variants[v].Name, v), nameWidth, rates[v], Relative(rates, v));
                }
            }
            double rateBase = 0;
            if (decodeTokens > 0)
            {
                // The ceiling again, right before decode (shared machines drift); the higher of the two is used.
                double again = MeasureBandwidth(llama.ThreadCount);
                if (again > bandwidth)
                {
                    o.WriteLine($"bandwidth  {again / 1e9:0.0} GB/s measured again before decode (used below)");
                    bandwidth = again;
                }
                List<double>[] rates = Interleaved(variants, runs, adapter =>
                {
                    (_, double seconds) = Time(llama, cache, [], decodeTokens, RandomToken, adapter);
                    return decodeTokens / seconds;
                });
                double mean = rates[0].Average();
                rateBase = mean;
                double bytesPerSecond = mean * llama.Weights.BytesPerToken;
                Print(o, $"tg{decodeTokens}", nameWidth, rates[0],
                    $"  weights {bytesPerSecond / 1e9:0.0} GB/s = {bytesPerSecond / bandwidth:P0} of the measured ceiling ({bandwidth / llama.Weights.BytesPerToken:0.00} tokens/s)");
                for (int v = 1; v < variants.Count; v++)
                {
                    Print(o, Label($"tg{decodeTokens}", variants[v].Name, v), nameWidth, rates[v], Relative(rates, v));
                }
            }
            if (batchSizes.Length > 0)
            {
                // Batched decode: N sequences, each one token per step, all in one forward pass, as the scheduler runs
                // concurrent requests. Sizes interleaved within each repetition; the rate is all sequences' tokens.
                using KvCachePool shared = llama.CreateCache(KvCacheOptions.ForPositions(config, batchSizes.Max() * (decodeTokens + 2 * 32), cacheType));
                List<double>[] rates = [.. batchSizes.Select(_ => new List<double>())];
                for (int r = 0; r < runs; r++)
                {
                    for (int b = 0; b < batchSizes.Length; b++)
                    {
                        rates[b].Add(batchSizes[b] * decodeTokens / TimeBatchedDecode(llama, shared, batchSizes[b], decodeTokens, RandomToken));
                    }
                }
                double single = batchSizes.Contains(1) ? rates[Array.IndexOf(batchSizes, 1)].Average() : 0;
                for (int b = 0; b < batchSizes.Length; b++)
                {
                    double mean = rates[b].Average();
                    string vsOne = single > 0 ? $"  {mean / single:0.00}× one sequence; {mean / batchSizes[b]:0.00} tokens/s each" : $"  {mean / batchSizes[b]:0.00} tokens/s each";
                    Print(o, $"tg{decodeTokens} ×{batchSizes[b]}", nameWidth, rates[b], vsOne);
                }
            }
            foreach ((string name, LoraAdapter? adapter) in variants.Skip(1))
            {
                o.WriteLine($"adapter    {name}: {adapter!.Description}");
                double deltaMs = DeltaMilliseconds(llama, adapter);
                string share = rateBase > 0 ? $" = {deltaMs * rateBase / 1000:P1} of the base decode step" : "";
                o.WriteLine($"           its deltas alone on one thread: {deltaMs:0.00} ms per token (best of 5 passes over every adapted projection){share}");
            }
            long fileBytes = Directory.Exists(llama.Weights.SourcePath) ? 0 : new FileInfo(llama.Weights.SourcePath).Length;
            o.WriteLine($"memory     resident {rssWarm / 1048576.0:0} MiB after warm-up (peak {ReadStatus("VmHWM") / 1048576.0:0} MiB counts the bandwidth probe's buffer); model file {fileBytes / 1048576.0:0} MiB, KV cache {cache.AllocatedBytes / 1048576.0:0} MiB ({cacheType})");
            return 0;
        }));
        return command;
    }

    /// <summary>Prefills <paramref name="prompt"/> (if any) into a fresh sequence, then decodes
    /// <paramref name="decodeTokens"/> tokens one step at a time, with <paramref name="adapter"/> (or none); returns
    /// the seconds each phase took.</summary>
    private static (double Prefill, double Decode) Time(LlamaModel llama, KvCachePool cache, int[] prompt, int decodeTokens, Func<int> nextToken, LoraAdapter? adapter)
    {
        using KvSequence sequence = cache.CreateSequence();
        var clock = Stopwatch.StartNew();
        llama.Prefill(sequence, prompt, adapter: adapter);
        double prefill = clock.Elapsed.TotalSeconds;
        int[] token = new int[1];
        clock.Restart();
        for (int i = 0; i < decodeTokens; i++)
        {
            token[0] = nextToken();
            llama.Forward([new SequenceInput(sequence, token, LogitsWanted.Last, adapter)]);
        }
        return (prefill, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Seconds <paramref name="decodeTokens"/> steps take with <paramref name="count"/> fresh sequences each
    /// decoding one token per step in a single forward pass.</summary>
    private static double TimeBatchedDecode(LlamaModel llama, KvCachePool cache, int count, int decodeTokens, Func<int> nextToken)
    {
        var sequences = new KvSequence[count];
        var tokens = new int[count][];
        var inputs = new SequenceInput[count];
        try
        {
            for (int i = 0; i < count; i++)
            {
                sequences[i] = cache.CreateSequence();
                tokens[i] = new int[1];
            }
            var clock = Stopwatch.StartNew();
            for (int step = 0; step < decodeTokens; step++)
            {
                for (int i = 0; i < count; i++)
                {
                    tokens[i][0] = nextToken();
                    inputs[i] = new SequenceInput(sequences[i], tokens[i], LogitsWanted.Last);
                }
                llama.Forward(inputs);
            }
            return clock.Elapsed.TotalSeconds;
        }
        finally
        {
            foreach (KvSequence? sequence in sequences)
            {
                sequence?.Dispose();
            }
        }
    }

    /// <summary>Milliseconds one token's adapter deltas take on the calling thread, as the forward pass runs them
    /// (every adapted projection of every layer, one token row), best of five passes; isolates the adapter's own cost
    /// from the noise of whole decode steps.</summary>
    private static double DeltaMilliseconds(LlamaModel llama, LoraAdapter adapter)
    {
        int widest = Math.Max(llama.Config.ModelDim, Math.Max(llama.Config.HiddenDim, llama.Config.HeadCount * llama.Config.HeadDim));
        var random = new Random(5);
        float[] x = [.. Enumerable.Range(0, widest).Select(_ => (float)(random.NextDouble() - 0.5))];
        var y = new float[widest];
        double best = double.MaxValue;
        for (int pass = 0; pass < 5; pass++)
        {
            var clock = Stopwatch.StartNew();
            for (int layer = 0; layer < llama.Config.LayerCount; layer++)
            {
                foreach ((LlamaTensorRole role, Sirocco.Kernels.WeightMatrix matrix) in llama.Weights.Layers[layer].Matrices)
                {
                    if (adapter.Targets(layer, role))
                    {
                        adapter.AddDelta(layer, role, x.AsSpan(0, matrix.Columns), y.AsSpan(0, matrix.Rows));
                    }
                }
            }
            best = Math.Min(best, clock.Elapsed.TotalMilliseconds);
        }
        return best;
    }

    /// <summary>Runs <paramref name="measure"/> <paramref name="runs"/> times for every variant, cycling through the
    /// variants within each run; returns the rates per variant.</summary>
    private static List<double>[] Interleaved(List<(string Name, LoraAdapter? Adapter)> variants, int runs, Func<LoraAdapter?, double> measure)
    {
        List<double>[] rates = [.. variants.Select(_ => new List<double>())];
        for (int r = 0; r < runs; r++)
        {
            for (int v = 0; v < variants.Count; v++)
            {
                rates[v].Add(measure(variants[v].Adapter));
            }
        }
        return rates;
    }

    private static string Label(string test, string variant, int index) => index == 0 ? test : $"{test} {variant}";

    /// <summary>An adapter's rate against the base's: the ratio of the means, and the extra time per token.</summary>
    private static string Relative(List<double>[] rates, int variant)
    {
        if (variant == 0)
        {
            return "";
        }
        double ratio = rates[variant].Average() / rates[0].Average();
        double percent = Math.Round((1 / ratio - 1) * 100, 1);
        return $"  {ratio:0.000}× base ({(percent < 0 ? "-" : "+")}{Math.Abs(percent):0.0}% time per token)";
    }

    private static void Print(TextWriter o, string name, int width, List<double> rates, string tail)
    {
        double mean = rates.Average();
        double spread = rates.Count > 1 ? Math.Sqrt(rates.Sum(r => (r - mean) * (r - mean)) / (rates.Count - 1)) : 0;
        o.WriteLine($"{name.PadRight(width)} {mean,10:0.00} {spread,8:0.00} {1000 / mean,10:0.0}{tail}");
    }

    private static int[] ParseLengths(string text)
    {
        var lengths = new List<int>();
        foreach (string part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, out int n) || n < 1)
            {
                throw new CliUsageException($"--prompt: '{part}' is not a positive token count (e.g. --prompt 128,512)");
            }
            lengths.Add(n);
        }
        return [.. lengths];
    }

    /// <summary>Best of five streaming reads of a 512 MiB buffer (16× this machine's L3), split over
    /// <paramref name="threads"/> threads.</summary>
    internal static double MeasureBandwidth(int threads)
    {
        const int Chunk = 8 << 20;
        using var buffer = new NativeBuffer<byte>(512L << 20);
        for (long at = 0; at < buffer.Length; at += Chunk)
        {
            buffer.Slice(at, Chunk).Fill(1); // fault every page in before timing
        }
        using var pool = new WorkerPool(threads);
        var job = new ReadJob(buffer, Chunk);
        double best = 0;
        for (int pass = 0; pass < 5; pass++)
        {
            var clock = Stopwatch.StartNew();
            pool.Run(job, (int)(buffer.Length / Chunk));
            best = Math.Max(best, buffer.Length / clock.Elapsed.TotalSeconds);
        }
        return best;
    }

    private sealed class ReadJob(NativeBuffer<byte> buffer, int chunk) : ParallelJob
    {
        public ulong Sink { get; private set; }

        public override void Execute(int unit, int worker) => Sink += StreamRead.Checksum(buffer.Slice((long)unit * chunk, chunk));
    }

    /// <summary>A field of /proc/self/status in bytes (0 where there is none, e.g. off Linux).</summary>
    internal static long ReadStatus(string field)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith(field + ":", StringComparison.Ordinal))
                {
                    string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return Environment.WorkingSet;
    }

    private static string CpuName()
    {
        try
        {
            string? line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line is null ? "unknown CPU" : line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }

    private static string Isa() => Avx512F.IsSupported ? "AVX-512" : Avx2.IsSupported ? "AVX2" : Vector128.IsHardwareAccelerated ? "128-bit SIMD" : "scalar";
}
