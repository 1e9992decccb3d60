// The LoRA options of the commands that run a model (--lora, --lora-max-rank) and loading the adapter they name
// against the loaded base model. Errors in the adapter come out as one line through CliErrors.

using System.CommandLine;
using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;

namespace Sirocco.Cli.Commands;

internal sealed class LoraArguments
{
    private readonly Option<string?>? _one;
    private readonly Option<string[]>? _many;

    /// <param name="many">Whether --lora may be given several times (bench compares adapters).</param>
    public LoraArguments(bool many = false)
    {
        if (many)
        {
            _many = new Option<string[]>("--lora")
            {
                Description = "A LoRA adapter to time against the base model (PEFT directory or .gguf file); repeat for several",
                Arity = ArgumentArity.ZeroOrMore,
            };
        }
        else
        {
            _one = new Option<string?>("--lora")
            {
                Description = "A LoRA adapter: a directory with adapter_config.json and adapter_model.safetensors (PEFT), or a llama.cpp .gguf adapter",
            };
        }
    }

    public Option<int> MaxRank { get; } = new("--lora-max-rank")
    {
        Description = "Largest adapter rank accepted (Workers AI: 8)",
        DefaultValueFactory = _ => LoraLimits.Default.MaxRank,
    };

    public void AddTo(Command command)
    {
        command.Options.Add((Option?)_one ?? _many!);
        command.Options.Add(MaxRank);
    }

    /// <summary>The limits the options give (checked before the model loads).</summary>
    public LoraLimits Limits(ParseResult parse)
    {
        int rank = parse.GetValue(MaxRank);
        if (rank < 1)
        {
            throw new CliUsageException($"--lora-max-rank {rank}: must be 1 or more");
        }
        return LoraLimits.Default with { MaxRank = rank };
    }

    /// <summary>The adapter paths given, in order.</summary>
    public IReadOnlyList<string> Paths(ParseResult parse) =>
        _one is not null ? (parse.GetValue(_one) is { } path ? [path] : []) : parse.GetValue(_many!) ?? [];

    /// <summary>Loads the adapter named by --lora for <paramref name="model"/>, or returns null without one.</summary>
    public LoraAdapter? Load(ParseResult parse, LlamaModel model) =>
        Paths(parse) is [string path, ..] ? Load(path, parse, model) : null;

    /// <summary>Loads the adapter at <paramref name="path"/> and reports it on stderr.</summary>
    public LoraAdapter Load(string path, ParseResult parse, LlamaModel model)
    {
        LoraAdapter adapter = LoraAdapter.Load(path, model.Weights, Limits(parse));
        Console.Error.WriteLine($"adapter {path}: {adapter.Description}");
        return adapter;
    }
}
