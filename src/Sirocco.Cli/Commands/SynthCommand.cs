// `sirocco synth`: writes a synthetic model with Mistral's exact architecture and seeded random weights, as GGUF or as
// a Hugging Face directory, with the real Mistral tokenizer embedded. Tests and benchmarks run on these files.

using System.CommandLine;
using System.Diagnostics;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Model;
using Sirocco.Engine.Synthesis;

namespace Sirocco.Cli.Commands;

internal static class SynthCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = "Model shape: tiny (2 layers, 256 wide) or 7b (Mistral-7B-v0.2)", DefaultValueFactory = _ => "tiny" };
        var format = new Option<string>("--format") { Description = "gguf (one file) or hf (Hugging Face directory: safetensors, config.json, tokenizer files)", DefaultValueFactory = _ => "gguf" };
        var type = new Option<string?>("--type") { Description = "GGUF: F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, Q5_K_M, Q6_K (default Q4_K_M). hf: F32, F16, BF16 (default BF16)" };
        var output = new Option<string>("--out", "-o") { Description = "Output file (gguf) or directory (hf)", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "Random seed; the same seed gives the same weights in every format", DefaultValueFactory = _ => 1 };
        var layers = new Option<int?>("--layers") { Description = "Override the preset's layer count" };
        var dim = new Option<int?>("--dim") { Description = "Override the model width (ModelDim)" };
        var hidden = new Option<int?>("--hidden") { Description = "Override the feed-forward width (HiddenDim)" };
        var heads = new Option<int?>("--heads") { Description = "Override the query head count" };
        var kvHeads = new Option<int?>("--kv-heads") { Description = "Override the key/value head count" };
        var context = new Option<int?>("--context") { Description = "Override the context length" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the plan (tensor types, exact file size) without writing" };
        var command = new Command("synth", "Write a synthetic Mistral-architecture model with seeded random weights")
        {
            preset, format, type, output, seed, layers, dim, hidden, heads, kvHeads, context, dryRun,
        };
        command.SetAction(parse => CliErrors.Run("synth", () =>
        {
            var baseConfig = SyntheticPresets.Find(parse.GetValue(preset)!)
                ?? throw new CliUsageException($"--preset {parse.GetValue(preset)}: unknown preset; choose {string.Join(" or ", SyntheticPresets.Names)}");
            var config = baseConfig with
            {
                LayerCount = parse.GetValue(layers) ?? baseConfig.LayerCount,
                ModelDim = parse.GetValue(dim) ?? baseConfig.ModelDim,
                HiddenDim = parse.GetValue(hidden) ?? baseConfig.HiddenDim,
                HeadCount = parse.GetValue(heads) ?? baseConfig.HeadCount,
                KvHeadCount = parse.GetValue(kvHeads) ?? baseConfig.KvHeadCount,
                ContextLength = parse.GetValue(context) ?? baseConfig.ContextLength,
            };
            if (parse.GetValue(dim) is not null || parse.GetValue(heads) is not null)
            {
                int headDim = config.HeadCount > 0 ? config.ModelDim / config.HeadCount : 0;
                config = config with { HeadDim = headDim, RopeDim = headDim };
            }
            var problems = config.Problems().ToList();
            // Rows are generated whole in memory; a width past 2^20 is no Mistral and would only exhaust memory.
            foreach (var (name, value) in new[] { ("--dim", config.ModelDim), ("--hidden", config.HiddenDim), ("--layers", config.LayerCount), ("--heads", config.HeadCount), ("--kv-heads", config.KvHeadCount) })
            {
                if (value > 1 << 20)
                {
                    problems.Add($"{name} {value} is larger than the supported maximum {1 << 20}");
                }
            }
            if (problems.Count > 0)
            {
                throw new CliUsageException("the requested shape is invalid: " + string.Join("; ", problems));
            }
            string path = parse.GetValue(output)!;
            string fmt = parse.GetValue(format)!.ToLowerInvariant();
            string? typeText = parse.GetValue(type);
            var tokenizer = SyntheticTokenizers.Mistral();
            return fmt switch
            {
                "gguf" => Gguf(path, config, ParseFileType(typeText ?? "Q4_K_M"), tokenizer, parse.GetValue(seed), parse.GetValue(dryRun)),
                "hf" => HuggingFace(path, config, ParseDtype(typeText ?? "BF16"), tokenizer, parse.GetValue(seed), parse.GetValue(dryRun)),
                _ => throw new CliUsageException($"--format {fmt}: choose gguf or hf"),
            };
        }));
        return command;
    }

    private static int Gguf(string path, ModelConfig config, ModelFileType fileType, SyntheticTokenizer tokenizer, ulong seed, bool dryRun)
    {
        var plan = SyntheticModelWriter.PlanGguf(config, fileType, tokenizer, $"sirocco-synthetic-{fileType}".ToLowerInvariant());
        Console.WriteLine($"{path}: {fileType} GGUF, {config.LayerCount} layers, width {config.ModelDim}, feed-forward {config.HiddenDim}, " +
            $"{config.HeadCount}/{config.KvHeadCount} heads, {LlamaTensors.For(config).Sum(t => t.ElementCount):N0} parameters");
        foreach (var group in plan.Tensors.GroupBy(t => t.Type).OrderBy(g => g.Key))
        {
            Console.WriteLine($"  {group.Key,-5} {group.Count(),4} tensors  {ConsoleProgress.FormatBytes(group.Sum(t => t.ByteCount)),12}");
        }
        Console.WriteLine($"  file size {plan.FileBytes:N0} bytes ({plan.FileBytes / 1e9:0.00} GB)");
        if (dryRun)
        {
            return 0;
        }
        EnsureSpace(path, plan.FileBytes);
        var progress = new ConsoleProgress("writing");
        var clock = Stopwatch.StartNew();
        SyntheticModelWriter.WriteGguf(path, config, fileType, tokenizer, seed,
            new Progress(p => progress.Report(p.BytesWritten, p.TotalBytes, p.CurrentTensor)));
        Console.WriteLine($"wrote {path} in {clock.Elapsed.TotalSeconds:0.0} s");
        return 0;
    }

    private static int HuggingFace(string directory, ModelConfig config, SafeTensorDtype dtype, SyntheticTokenizer tokenizer, ulong seed, bool dryRun)
    {
        long bytes = LlamaTensors.For(config).Sum(t => t.ElementCount) * (dtype == SafeTensorDtype.F32 ? 4 : 2);
        Console.WriteLine($"{directory}: Hugging Face {dtype} checkpoint, {config.LayerCount} layers, width {config.ModelDim}, {bytes:N0} bytes of weights");
        if (dryRun)
        {
            return 0;
        }
        EnsureSpace(Path.Combine(directory, "x"), bytes);
        var progress = new ConsoleProgress("writing");
        var clock = Stopwatch.StartNew();
        SyntheticModelWriter.WriteHuggingFace(directory, config, dtype, tokenizer, seed,
            new Progress(p => progress.Report(p.BytesWritten, p.TotalBytes, p.CurrentTensor)));
        Console.WriteLine($"wrote {directory} in {clock.Elapsed.TotalSeconds:0.0} s");
        return 0;
    }

    private static ModelFileType ParseFileType(string text) =>
        QuantizationScheme.TryParse(text, out var t) && QuantizationScheme.Writable.Contains(t) ? t
        : throw new CliUsageException($"--type {text}: choose one of {string.Join(", ", QuantizationScheme.Writable)}");

    private static SafeTensorDtype ParseDtype(string text) => text.ToUpperInvariant() switch
    {
        "F32" or "FLOAT32" => SafeTensorDtype.F32,
        "F16" or "FLOAT16" => SafeTensorDtype.F16,
        "BF16" or "BFLOAT16" => SafeTensorDtype.BF16,
        _ => throw new CliUsageException($"--type {text}: a Hugging Face checkpoint is F32, F16 or BF16"),
    };

    /// <summary>Refuses to start a write that cannot fit, rather than failing (or filling the disk) halfway.</summary>
    private static void EnsureSpace(string path, long bytes)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        long free = new DriveInfo(dir).AvailableFreeSpace;
        if (free < bytes + (64L << 20))
        {
            throw new IOException($"not enough disk space in {dir}: need {ConsoleProgress.FormatBytes(bytes)}, {ConsoleProgress.FormatBytes(free)} free");
        }
    }

    /// <summary>Synchronous IProgress: reports on the writer's thread (System.Progress would post to the thread pool).</summary>
    private sealed class Progress(Action<SynthesisProgress> report) : IProgress<SynthesisProgress>
    {
        public void Report(SynthesisProgress value) => report(value);
    }
}
