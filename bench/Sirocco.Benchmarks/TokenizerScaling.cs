// `tokenizer` benchmark: encode time against input size, 1 KB to 1 MB. The same 1 MB of text (the golden strings,
// shuffled with a fixed seed: English, code, CJK, emoji, whitespace runs...) is encoded in chunks of each size, so
// only the size changes between rows. If encoding is linear, ns/byte stays flat and the last column stays near 1.
// Usage: dotnet run -c Release --project bench/Sirocco.Benchmarks -- tokenizer [tokenizer path]

using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Benchmarks;

internal static class TokenizerScaling
{
    private static readonly int[] s_sizes = [1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20];

    // Each size is timed until this much time has been spent on it (and at least MinRepeats times); the best run counts.
    private static readonly TimeSpan s_budgetPerSize = TimeSpan.FromSeconds(2);
    private const int MinRepeats = 5;

    public static int Run(string[] args)
    {
        string testdata = FindTestData();
        string tokenizerPath = args.Length > 0 ? args[0] : Path.Combine(testdata, "tokenizer.model");
        var tokenizer = TokenizerLoader.Load(tokenizerPath);
        string corpus = SplitByUtf8Size(BuildCorpus(Path.Combine(testdata, "golden-dev.jsonl"), s_sizes[^1]), s_sizes[^1])[0];

        Console.WriteLine($"Tokenizer encode scaling: {Path.GetFileName(tokenizerPath)}, {RuntimeInformation.FrameworkDescription}, " +
            $"{RuntimeInformation.OSDescription}, {Environment.ProcessorCount} logical CPUs, {RuntimeInformation.ProcessArchitecture}");
        Console.WriteLine("Text: the golden-dev.jsonl strings shuffled with a fixed seed, 1 MB in all, encoded in consecutive chunks of each size.");
        Console.WriteLine("Times are per chunk, best of several passes over the whole 1 MB.");
        Console.WriteLine();
        Console.WriteLine("| chunk size | chunks | tokens per chunk | best time per chunk | ns/byte | MB/s | ns/byte vs 1 KB |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");

        double baseline = 0;
        foreach (int size in s_sizes)
        {
            string[] chunks = SplitByUtf8Size(corpus, size);
            long bytes = chunks.Sum(c => (long)Encoding.UTF8.GetByteCount(c));
            long tokens = chunks.Sum(c => (long)tokenizer.Encode(c).Length);

            // Warm up: JIT tiers, thread-local scratch buffers, caches.
            var warm = Stopwatch.StartNew();
            while (warm.Elapsed < TimeSpan.FromMilliseconds(300))
            {
                EncodeAll(tokenizer, chunks);
            }

            double best = double.MaxValue;
            var spent = Stopwatch.StartNew();
            for (int repeat = 0; repeat < MinRepeats || spent.Elapsed < s_budgetPerSize; repeat++)
            {
                long start = Stopwatch.GetTimestamp();
                EncodeAll(tokenizer, chunks);
                best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
            }
            double nsPerByte = best * 1e9 / bytes;
            if (baseline == 0)
            {
                baseline = nsPerByte;
            }
            Console.WriteLine($"| {FormatSize(size)} | {chunks.Length:N0} | {(double)tokens / chunks.Length:N0} | {FormatTime(best / chunks.Length)} | " +
                $"{nsPerByte:F1} | {bytes / best / 1e6:F1} | {nsPerByte / baseline:F2} |");
        }
        return 0;
    }

    private static void EncodeAll(Tokenizer tokenizer, string[] chunks)
    {
        foreach (string chunk in chunks)
        {
            tokenizer.Encode(chunk);
        }
    }

    /// <summary>Golden strings, shuffled with a fixed seed and joined by newlines, repeated past <paramref name="bytes"/>.</summary>
    private static string BuildCorpus(string goldenPath, int bytes)
    {
        var texts = File.ReadLines(goldenPath)
            .Where(line => line.Length > 0)
            .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("text").GetString()!)
            .Where(text => text.Length > 0)
            .ToArray();
#pragma warning disable CA5394 // a fixed-seed shuffle for reproducible input, not security
        var rng = new Random(20240417);
        var sb = new StringBuilder(bytes);
        int utf8 = 0;
        while (utf8 <= bytes)
        {
            rng.Shuffle(texts);
            foreach (string text in texts)
            {
                sb.Append(text).Append('\n');
                utf8 += Encoding.UTF8.GetByteCount(text) + 1;
            }
        }
#pragma warning restore CA5394
        return sb.ToString();
    }

    /// <summary>Cuts <paramref name="text"/> into consecutive pieces of at most <paramref name="bytes"/> UTF-8 bytes,
    /// never splitting a surrogate pair; all pieces but the last are within 3 bytes of the limit.</summary>
    private static string[] SplitByUtf8Size(string text, int bytes)
    {
        var pieces = new List<string>();
        int start = 0;
        int used = 0;
        int i = 0;
        while (i < text.Length)
        {
            int length = char.IsSurrogatePair(text, i) ? 2 : 1;
            int size = Encoding.UTF8.GetByteCount(text.AsSpan(i, length));
            if (used + size > bytes)
            {
                pieces.Add(text[start..i]);
                start = i;
                used = 0;
            }
            used += size;
            i += length;
        }
        pieces.Add(text[start..]);
        return [.. pieces];
    }

    private static string FindTestData()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "testdata", "mistral-tokenizer");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException($"testdata/mistral-tokenizer not found above {AppContext.BaseDirectory}");
    }

    private static string FormatSize(int bytes) => bytes >= 1 << 20 ? $"{bytes >> 20} MB" : $"{bytes >> 10} KB";

    private static string FormatTime(double seconds) => seconds >= 1e-3 ? $"{seconds * 1e3:F2} ms" : $"{seconds * 1e6:F1} µs";
}
