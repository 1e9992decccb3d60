// `sirocco models [--verify]`: lists the model store (name, quantization, size, file; unfinished and damaged entries
// with what to do), and with --verify hashes every file again, deleting (and reporting) any that no longer matches.

using System.CommandLine;
using Sirocco.Cli.Models;

namespace Sirocco.Cli.Commands;

internal static class ModelsCommand
{
    public static Command Create()
    {
        var store = new StoreArguments();
        var verify = new Option<bool>("--verify") { Description = "Hash every file again and compare it with the sha256 recorded at download" };
        var command = new Command("models", "List the models in the model store") { verify };
        store.AddTo(command, offline: false);
        command.SetAction((parse, cancellationToken) => CliErrors.RunAsync("models", async () =>
        {
            ModelResolver resolver = store.Resolver(parse);
            IReadOnlyList<StoredModel> models = resolver.Store.List();
            TextWriter o = Console.Out;
            if (models.Count == 0)
            {
                o.WriteLine($"no models in {resolver.Store.Root}; `sirocco pull {ModelAliases.DefaultName}` downloads the default one " +
                    $"({ModelAliases.DefaultDownloadBytes / 1e9:0.00} GB)");
                return 0;
            }
            var rows = models.Select(m => (Model: m, Name: Name(m, resolver.Aliases))).ToList();
            int nameWidth = Math.Max(4, rows.Max(r => r.Name.Length));
            int quantWidth = Math.Max(12, rows.Max(r => (r.Model.Manifest.Quantization ?? "-").Length));
            o.WriteLine($"models in {resolver.Store.Root}:");
            o.WriteLine($"{"NAME".PadRight(nameWidth)}  {"QUANTIZATION".PadRight(quantWidth)}  {"SIZE",10}  FILE");
            int failed = 0;
            foreach (var (model, name) in rows)
            {
                string size = ConsoleProgress.FormatBytes(model.Manifest.SizeBytes);
                string status = model.State switch
                {
                    StoredModelState.Ready => "",
                    StoredModelState.Incomplete => $"  [incomplete: {model.Problem}; `{PullOrRemove(model, resolver)}`]",
                    _ => $"  [damaged: {model.Problem}; `{PullOrRemove(model, resolver)}`]",
                };
                o.WriteLine($"{name.PadRight(nameWidth)}  {(model.Manifest.Quantization ?? "-").PadRight(quantWidth)}  {size,10}  {model.DisplayPath}{status}");
                if (parse.GetValue(verify) && model.State == StoredModelState.Ready)
                {
                    string? problem = await ModelStore.VerifyAsync(model, DownloadReporter.Console(), cancellationToken);
                    o.WriteLine(problem is null ? $"  verified: every file matches its sha256" : $"  FAILED: {problem} — run `{PullOrRemove(model, resolver)}`");
                    failed += problem is null ? 0 : 1;
                }
            }
            return failed == 0 ? 0 : 1;
        }));
        return command;
    }

    /// <summary>The reference, plus the aliases that stand for it.</summary>
    private static string Name(StoredModel model, ModelAliases aliases)
    {
        if (!HubModelReference.TryParse(model.Manifest.Reference, out var reference))
        {
            return model.Manifest.Reference;
        }
        string[] names = [.. aliases.NamesFor(reference)];
        return names.Length == 0 ? model.Manifest.Reference : $"{model.Manifest.Reference} ({string.Join(", ", names)})";
    }

    private static string PullOrRemove(StoredModel model, ModelResolver resolver) =>
        HubModelReference.TryParse(model.Manifest.Reference, out var reference) ? resolver.PullCommand(reference) : $"rm {model.ManifestPath}";
}
