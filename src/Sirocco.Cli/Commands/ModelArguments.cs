// The options every command that runs a model shares (--model, --threads, --kv-type, --quantize), and loading the
// model they describe, with a progress line when a float checkpoint is converted at load.

using System.CommandLine;
using Sirocco.Engine.Model;
using Sirocco.Kernels.Quant;

namespace Sirocco.Cli.Commands;

internal sealed class ModelArguments
{
    public Option<string> Model { get; } = new("--model", "-m") { Description = "A GGUF file or a Hugging Face model directory", Required = true };

    public Option<int> Threads { get; } = new("--threads", "-t") { Description = "Threads for the forward pass (default: one per core)", DefaultValueFactory = _ => 0 };

    public Option<string> KvType { get; } = new("--kv-type") { Description = "KV cache element type: f16 (default) or f32", DefaultValueFactory = _ => "f16" };

    public Option<string?> Quantize { get; } = new("--quantize") { Description = "For a float Hugging Face checkpoint: quantize at load to q8_0 or q4_k" };

    public void AddTo(Command command)
    {
        command.Options.Add(Model);
        command.Options.Add(Threads);
        command.Options.Add(KvType);
        command.Options.Add(Quantize);
    }

    public KvCacheType CacheType(ParseResult parse) => parse.GetValue(KvType)!.ToLowerInvariant() switch
    {
        "f16" => KvCacheType.F16,
        "f32" => KvCacheType.F32,
        string other => throw new CliUsageException($"--kv-type {other}: use f16 or f32"),
    };

    /// <summary>Loads the model the options name.</summary>
    public LlamaModel Load(ParseResult parse, int maxBatchTokens = 512)
    {
        int threads = parse.GetValue(Threads);
        if (threads < 0 || threads > 1024)
        {
            throw new CliUsageException($"--threads {threads}: use 1 … 1024, or 0 for one per core");
        }
        GgmlType? quantize = parse.GetValue(Quantize)?.ToUpperInvariant() switch
        {
            null => null,
            "Q8_0" => GgmlType.Q8_0,
            "Q4_K" => GgmlType.Q4_K,
            string other => throw new CliUsageException($"--quantize {other}: use q8_0 or q4_k"),
        };
        CacheType(parse); // validate before the (possibly long) load
        string path = parse.GetValue(Model)!;
        var progress = new ConsoleProgress($"quantizing to {quantize}");
        ModelWeights weights = WeightLoader.Load(path, new WeightLoadOptions(quantize, quantize is null ? null : (done, total) => progress.Report(done, total)));
        return new LlamaModel(weights, threads, maxBatchTokens);
    }
}
