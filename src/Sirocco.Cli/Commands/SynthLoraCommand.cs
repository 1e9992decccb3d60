// `sirocco synth-lora`: writes a LoRA adapter with seeded random A and B for a model's shape, as a PEFT directory
// (adapter_config.json + adapter_model.safetensors, what Workers AI accepts) or a llama.cpp GGUF adapter. For tests,
// benchmarks (`sirocco bench --lora`) and trying `--lora` without a trained adapter at hand.

using System.CommandLine;
using Sirocco.Engine.Formats.Gguf;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;
using Sirocco.Engine.Synthesis;

namespace Sirocco.Cli.Commands;

internal static class SynthLoraCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m") { Description = "The base model whose shape the adapter fits (GGUF file or Hugging Face directory)" };
        var preset = new Option<string?>("--preset") { Description = "Or a model shape preset: tiny or 7b" };
        var rank = new Option<int>("--rank", "-r") { Description = "LoRA rank r", DefaultValueFactory = _ => 8 };
        var alpha = new Option<double>("--alpha") { Description = "lora_alpha", DefaultValueFactory = _ => 16 };
        var targets = new Option<string>("--targets") { Description = "Projections: q,k,v,o,gate,up,down, or attn, mlp, all", DefaultValueFactory = _ => "q,v" };
        var rsLora = new Option<bool>("--rslora") { Description = "Scale by alpha/sqrt(r) (use_rslora)" };
        var format = new Option<string>("--format") { Description = "peft (directory) or gguf (llama.cpp adapter file)", DefaultValueFactory = _ => "peft" };
        var dtype = new Option<string>("--dtype") { Description = "Tensor type: f16, bf16 or f32", DefaultValueFactory = _ => "f16" };
        var seed = new Option<ulong>("--seed") { Description = "Random seed; the same seed gives the same adapter in both formats", DefaultValueFactory = _ => 1 };
        var output = new Option<string>("--out", "-o") { Description = "Output directory (peft) or file (gguf)", Required = true };
        var command = new Command("synth-lora", "Write a LoRA adapter with seeded random weights for a model's shape")
        {
            model, preset, rank, alpha, targets, rsLora, format, dtype, seed, output,
        };
        command.SetAction(parse => CliErrors.Run("synth-lora", () =>
        {
            ModelConfig config = ReadShape(parse.GetValue(model), parse.GetValue(preset));
            var options = new SyntheticLoraOptions
            {
                Rank = parse.GetValue(rank),
                Alpha = parse.GetValue(alpha),
                UseRsLora = parse.GetValue(rsLora),
                Targets = Targets(parse.GetValue(targets)!),
                Dtype = parse.GetValue(dtype)!.ToLowerInvariant() switch
                {
                    "f16" => SafeTensorDtype.F16,
                    "bf16" => SafeTensorDtype.BF16,
                    "f32" => SafeTensorDtype.F32,
                    string other => throw new CliUsageException($"--dtype {other}: use f16, bf16 or f32"),
                },
                Seed = parse.GetValue(seed),
            };
            if (options.Rank < 1 || options.Rank > 4096)
            {
                throw new CliUsageException($"--rank {options.Rank}: use 1 … 4096");
            }
            if (!double.IsFinite(options.Alpha) || options.Alpha == 0)
            {
                throw new CliUsageException($"--alpha {options.Alpha}: must be a finite non-zero number");
            }
            string path = parse.GetValue(output)!;
            switch (parse.GetValue(format)!.ToLowerInvariant())
            {
                case "peft":
                    SyntheticLoraWriter.WritePeft(path, config, options);
                    break;
                case "gguf":
                    SyntheticLoraWriter.WriteGguf(path, config, options);
                    break;
                case string other:
                    throw new CliUsageException($"--format {other}: use peft or gguf");
            }
            Console.WriteLine($"wrote {path}: rank {options.Rank}, alpha {options.Alpha}{(options.UseRsLora ? " (rsLoRA)" : "")}, " +
                $"{string.Join(", ", options.Targets.Select(r => LoraModules.Of(r).PeftName))} in {config.LayerCount} layers");
            return 0;
        }));
        return command;
    }

    private static IReadOnlyList<LlamaTensorRole> Targets(string text)
    {
        try
        {
            return SyntheticLoraWriter.ParseTargets(text);
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException($"--targets: {e.Message}", e);
        }
    }

    /// <summary>The shape of the model at <paramref name="path"/> (metadata only), or of a preset.</summary>
    private static ModelConfig ReadShape(string? path, string? preset)
    {
        if ((path is null) == (preset is null))
        {
            throw new CliUsageException("give either --model PATH or --preset tiny|7b");
        }
        if (preset is not null)
        {
            return SyntheticPresets.Find(preset) ?? throw new CliUsageException($"--preset {preset}: choose {string.Join(" or ", SyntheticPresets.Names)}");
        }
        if (Directory.Exists(path))
        {
            return HfConfig.Load(path!);
        }
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path}: no such file or directory", path);
        }
        using GgufFile file = GgufFile.Open(path!);
        return LlamaGgufMetadata.ReadConfig(file);
    }
}
