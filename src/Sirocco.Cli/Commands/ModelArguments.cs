// The options every command that runs a model shares (--model, --models-dir, --offline, --threads, --kv-type,
// --quantize): resolving the model reference (a local path, a hub reference or an alias, downloaded into the store on
// first use) and loading it, with a progress line when a float checkpoint is converted at load.

using System.CommandLine;
using Sirocco.Cli.Models;
using Sirocco.Engine.Model;
using Sirocco.Kernels.Quant;

namespace Sirocco.Cli.Commands;

internal sealed class ModelArguments
{
    public const string ModelDescription =
        "A GGUF file, a Hugging Face model directory, a hub reference (owner/repo:Q4_K_M, owner/repo) or an alias (" + ModelAliases.DefaultName + ")";

    /// <param name="optional">Whether --model may be left out (serve): the default alias is used then.</param>
    public ModelArguments(bool optional = false)
    {
        IsOptional = optional;
        Model = new Option<string?>("--model", "-m")
        {
            Description = optional ? ModelDescription + $"; default {ModelAliases.DefaultName} (downloaded on first use, 4.37 GB)" : ModelDescription,
            Required = !optional,
        };
    }

    public bool IsOptional { get; }

    public Option<string?> Model { get; }

    public StoreArguments Store { get; } = new();

    public Option<int> Threads { get; } = new("--threads", "-t") { Description = "Threads for the forward pass (default: one per core)", DefaultValueFactory = _ => 0 };

    public Option<string> KvType { get; } = new("--kv-type") { Description = "KV cache element type: f16 (default) or f32", DefaultValueFactory = _ => "f16" };

    public Option<string?> Quantize { get; } = new("--quantize") { Description = "For a float Hugging Face checkpoint: quantize at load to q8_0 or q4_k" };

    public void AddTo(Command command)
    {
        command.Options.Add(Model);
        Store.AddTo(command);
        command.Options.Add(Threads);
        command.Options.Add(KvType);
        command.Options.Add(Quantize);
    }

    /// <summary>Checks --threads, --quantize and --kv-type; returns the first two.</summary>
    private (int Threads, GgmlType? Quantize) Validate(ParseResult parse)
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
        CacheType(parse);
        return (threads, quantize);
    }

    public KvCacheType CacheType(ParseResult parse) => parse.GetValue(KvType)!.ToLowerInvariant() switch
    {
        "f16" => KvCacheType.F16,
        "f32" => KvCacheType.F32,
        string other => throw new CliUsageException($"--kv-type {other}: use f16 or f32"),
    };

    /// <summary>The model the options name, on disk: downloaded into the store first if it is a hub model that is
    /// not there yet (unless --offline).</summary>
    public Task<ResolvedModel> ResolveAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        Validate(parse); // bad options fail before a download, not after 4 GB
        string reference = parse.GetValue(Model) ?? ModelAliases.DefaultName;
        return Store.Resolver(parse).ResolveAsync(reference, download: true, cancellationToken);
    }

    /// <summary>Synchronous <see cref="ResolveAsync"/> for the synchronous commands.</summary>
    public ResolvedModel Resolve(ParseResult parse) => ResolveAsync(parse, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>Loads the model at <paramref name="path"/> (a resolved model) with the options' threads and quantization.</summary>
    public LlamaModel Load(ParseResult parse, string path, int maxBatchTokens = 512)
    {
        (int threads, GgmlType? quantize) = Validate(parse);
        var progress = new ConsoleProgress($"quantizing to {quantize}");
        ModelWeights weights = WeightLoader.Load(path, new WeightLoadOptions(quantize, quantize is null ? null : (done, total) => progress.Report(done, total)));
        return new LlamaModel(weights, threads, maxBatchTokens);
    }
}

/// <summary>The model store options (--models-dir, --offline), for the commands that run models and the ones that
/// manage the store (pull, models, rm).</summary>
internal sealed class StoreArguments
{
    public Option<string?> ModelsDir { get; } = new("--models-dir")
    {
        Description = $"Where downloaded models are kept (default: {ModelStore.DirectoryVariable}, or sirocco/models under the user's cache folder)",
    };

    public Option<bool> Offline { get; } = new("--offline")
    {
        Description = $"Never use the network: hub models must already be in the store (also {HubOptions.OfflineVariable}=1)",
    };

    public void AddTo(Command command, bool offline = true)
    {
        command.Options.Add(ModelsDir);
        if (offline)
        {
            command.Options.Add(Offline);
        }
    }

    /// <summary>A resolver over the store the options name, with the hub settings of the environment.</summary>
    public ModelResolver Resolver(ParseResult parse) => new(
        ModelStore.Open(parse.GetValue(ModelsDir)),
        HubOptions.FromEnvironment(parse.GetResult(Offline) is not null && parse.GetValue(Offline)),
        ModelAliases.FromEnvironment(),
        DownloadReporter.Console());
}
