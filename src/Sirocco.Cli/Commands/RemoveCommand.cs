// `sirocco rm REF`: removes a model (or an unfinished download of it) from the model store: its manifest, partial
// files and every file no other stored model shares.

using System.CommandLine;
using Sirocco.Cli.Models;

namespace Sirocco.Cli.Commands;

internal static class RemoveCommand
{
    public static Command Create()
    {
        var reference = new Argument<string>("model") { Description = "The hub reference or alias the model was pulled as (see `sirocco models`)" };
        var store = new StoreArguments();
        var command = new Command("rm", "Remove a model from the model store") { reference };
        store.AddTo(command, offline: false);
        command.SetAction(parse => CliErrors.Run("rm", () =>
        {
            ModelResolver resolver = store.Resolver(parse);
            string text = parse.GetValue(reference)!;
            if (resolver.Parse(text) is not HubModelReference hub)
            {
                throw new CliUsageException($"{text} is a local path, not a model in the store ({resolver.Store.Root}); `sirocco models` lists those");
            }
            StoredModel[] found = [.. new[] { resolver.Store.Find(hub), resolver.Store.FindPending(hub) }.OfType<StoredModel>()];
            if (found.Length == 0)
            {
                throw new CliUsageException($"{hub.Display} is not in the model store ({resolver.Store.Root}); `sirocco models` lists what is");
            }
            long freed = found.Sum(resolver.Store.Remove);
            Console.WriteLine($"removed {hub.Display} from {resolver.Store.Root} ({ConsoleProgress.FormatBytes(freed)} freed)");
            return 0;
        }));
        return command;
    }
}
