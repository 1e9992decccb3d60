// `sirocco pull [REF]`: downloads a model from the Hugging Face Hub (or HF_ENDPOINT) into the model store, with a
// progress bar, resuming an interrupted download and verifying every file; without REF, the default model. A model
// already in the store is reported without a request.

using System.CommandLine;
using Sirocco.Cli.Models;

namespace Sirocco.Cli.Commands;

internal static class PullCommand
{
    public static Command Create()
    {
        var reference = new Argument<string?>("model")
        {
            Description = $"A hub reference (owner/repo:Q4_K_M, owner/repo:file.gguf, owner/repo for a safetensors checkpoint) or an alias; default {ModelAliases.DefaultName}",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var store = new StoreArguments();
        var command = new Command("pull", "Download a model from the Hugging Face Hub into the model store") { reference };
        store.AddTo(command, offline: false);
        command.SetAction((parse, cancellationToken) => CliErrors.RunAsync("pull", async () =>
        {
            ModelResolver resolver = store.Resolver(parse);
            string text = parse.GetValue(reference) ?? ModelAliases.DefaultName;
            if (resolver.Parse(text) is not HubModelReference hub)
            {
                throw new CliUsageException($"{text} is a local path; pull takes a hub reference (owner/repo:QUANT) or an alias ({ModelAliases.DefaultName})");
            }
            if (resolver.HubOptions.Offline)
            {
                throw new CliUsageException($"{HubOptions.OfflineVariable} is set: pull needs the network; unset it to download {hub.Display}");
            }
            bool present = resolver.Store.Find(hub) is { State: StoredModelState.Ready };
            StoredModel model = await resolver.PullAsync(hub, cancellationToken);
            Console.WriteLine($"{(present ? "already in the store" : "pulled")}: {hub.Display} → {model.DisplayPath} " +
                $"({ConsoleProgress.FormatBytes(model.Manifest.SizeBytes)}, {model.Manifest.Quantization ?? "unknown type"}, commit {model.Manifest.Commit[..12]}, sha256 verified)");
            return 0;
        }));
        return command;
    }
}
