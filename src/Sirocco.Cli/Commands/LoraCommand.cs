// `sirocco lora add|list|rm`: manages the LoRA adapters `sirocco serve` offers as finetunes, in the same data directory
// (--data-dir, SIROCCO_DATA_DIR, or ~/.local/share/sirocco), safely while the server runs. `add` copies a PEFT folder's
// adapter_config.json and adapter_model.safetensors into the store after the server's own validation; without
// --account the adapter is the operator's and public to every account.

using System.CommandLine;
using System.Globalization;
using Sirocco.Server.Catalog;
using Sirocco.Server.Finetunes;
using Sirocco.Server.Protocol;

namespace Sirocco.Cli.Commands;

internal static class LoraCommand
{
    public static Command Create()
    {
        var dataDir = new Option<string?>("--data-dir")
        {
            Description = $"Where adapters are stored (default: {FinetuneStore.DataDirectoryVariable}, or sirocco under the user's local data folder)",
            Recursive = true,
        };
        var command = new Command("lora", "Add, list and remove the LoRA adapters (finetunes) the server offers")
        {
            dataDir, CreateAdd(dataDir), CreateList(dataDir), CreateRemove(dataDir),
        };
        return command;
    }

    private static Command CreateAdd(Option<string?> dataDir)
    {
        var name = new Argument<string>("name") { Description = "The finetune name requests pass as `lora` (letters, digits, '-', '_', '.')" };
        var dir = new Argument<string>("dir") { Description = "A PEFT adapter folder with adapter_config.json and adapter_model.safetensors" };
        var account = new Option<string?>("--account") { Description = "The owning account (default: none; the adapter is public to all accounts)" };
        var description = new Option<string?>("--description") { Description = "Free text shown in finetune lists" };
        var model = new Option<string>("--model") { Description = "Base model", DefaultValueFactory = _ => ModelCatalog.LoraModelName };
        var isPublic = new Option<bool>("--public") { Description = "With --account: readable by every account" };
        var maxRank = new Option<int>("--max-rank") { Description = "Largest LoRA rank r accepted", DefaultValueFactory = _ => JsonConfigValidator.DefaultMaxRank };
        var command = new Command("add", "Copy an adapter folder into the store") { name, dir, account, description, model, isPublic, maxRank };
        command.SetAction((parse, cancellationToken) => CliErrors.RunAsync("lora add", () => TranslateAsync(async () =>
        {
            string folder = parse.GetValue(dir)!;
            if (!Directory.Exists(folder))
            {
                throw new CliUsageException($"{folder}: no such directory");
            }
            string configPath = Path.Combine(folder, Finetune.ConfigFileName);
            string weightsPath = Path.Combine(folder, Finetune.WeightsFileName);
            foreach (string required in (string[])[configPath, weightsPath])
            {
                if (!File.Exists(required))
                {
                    throw new CliUsageException(
                        $"{folder} has no {Path.GetFileName(required)}; an adapter folder holds {Finetune.ConfigFileName} and {Finetune.WeightsFileName}");
                }
            }
            int rank = parse.GetValue(maxRank);
            if (rank is < 1 or > 4096)
            {
                throw new CliUsageException($"--max-rank {rank}: use 1 … 4096");
            }
            var validator = new JsonConfigValidator(rank);
            validator.Validate(configPath, weightsPath); // before anything is created
            FinetuneStore store = OpenStore(parse.GetValue(dataDir), validator);
            string? owner = parse.GetValue(account);
            Finetune created = store.Create(owner, parse.GetValue(name)!, parse.GetValue(model)!, parse.GetValue(description), parse.GetValue(isPublic));
            Finetune added;
            try
            {
                foreach (string path in (string[])[configPath, weightsPath])
                {
                    await using var file = File.OpenRead(path);
                    await store.UploadAsync(owner, created.Id, Path.GetFileName(path), file, cancellationToken);
                }
                added = store.GetOwned(owner, created.Id);
            }
            catch
            {
                store.Delete(owner, created.Id); // all or nothing
                throw;
            }
            string whose = added.AccountId is null ? "public, no owning account" : $"account {added.AccountId}{(added.IsPublic ? ", public" : "")}";
            Console.WriteLine($"added {added.Name} ({added.Id}; {whose}) for {added.Model}: " +
                string.Join(", ", added.Files.Select(f => $"{f.Key} {Size(f.Value.SizeBytes)}")) + $"; store {store.DataDirectory}");
            return 0;
        })));
        return command;
    }

    private static Command CreateList(Option<string?> dataDir)
    {
        var account = new Option<string?>("--account") { Description = "Only what this account can use: its own and the public ones (default: all)" };
        var command = new Command("list", "List the adapters in the store") { account };
        command.SetAction(parse => CliErrors.Run("lora list", () => Translate(() =>
        {
            FinetuneStore store = OpenStore(parse.GetValue(dataDir), new JsonConfigValidator());
            string? owner = parse.GetValue(account);
            IReadOnlyList<Finetune> finetunes = owner is null
                ? store.ListAll()
                : [.. store.List(owner), .. store.ListPublic().Where(f => !f.IsOwnedBy(owner))];
            if (finetunes.Count == 0)
            {
                Console.WriteLine($"no adapters in {store.DataDirectory}");
                return 0;
            }
            string[] header = ["ID", "NAME", "ACCOUNT", "READY", "SIZE", "CREATED"];
            var rows = finetunes.Select(f => (string[])[
                f.Id, f.Name, OwnerText(f), f.IsReady ? "yes" : "no (no " + string.Join(", ", f.MissingFileNames) + ")",
                Size(f.TotalBytes), f.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + "Z"]).ToList();
            int[] widths = [.. header.Select((h, i) => rows.Max(r => r[i].Length) is int w && w > h.Length ? w : h.Length)];
            foreach (string[] row in rows.Prepend(header))
            {
                Console.WriteLine(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))));
            }
            return 0;
        })));
        return command;
    }

    private static Command CreateRemove(Option<string?> dataDir)
    {
        var name = new Argument<string>("name") { Description = "Name or id of the adapter" };
        var account = new Option<string?>("--account") { Description = "The owning account (default: the operator's public adapters)" };
        var command = new Command("rm", "Remove an adapter and its files") { name, account };
        command.SetAction(parse => CliErrors.Run("lora rm", () => Translate(() =>
        {
            FinetuneStore store = OpenStore(parse.GetValue(dataDir), new JsonConfigValidator());
            string? owner = parse.GetValue(account);
            string key = parse.GetValue(name)!;
            Finetune removed;
            try
            {
                removed = store.Delete(owner, key);
            }
            catch (ApiException e) when (e.Code == ErrorCodes.InvalidModelId)
            {
                // The operator may see every account: say where an adapter of that name lives.
                string[] owners = [.. store.ListAll().Where(f => f.Name == key || f.Id == key).Select(f => f.AccountId ?? "(none)").Distinct()];
                throw owners.Length == 0
                    ? new CliUsageException($"no adapter named {key} in {store.DataDirectory}{(owner is null ? " without an account" : $" for account {owner}")}")
                    : new CliUsageException($"no adapter named {key}{(owner is null ? " without an account" : $" for account {owner}")}; it exists for account {string.Join(", ", owners)}: pass --account");
            }
            Console.WriteLine($"removed {removed.Name} ({removed.Id}) of {OwnerText(removed)}");
            return 0;
        })));
        return command;
    }

    private static FinetuneStore OpenStore(string? dataDir, IAdapterValidator validator) =>
        // The catalog only says which base models take adapters; its context window does not matter here.
        new(dataDir ?? FinetuneStore.DefaultDataDirectory(), validator, ModelCatalog.Load(32768));

    /// <summary>Runs <paramref name="body"/>, turning the store's API errors into one-line usage errors.</summary>
    private static async Task<int> TranslateAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (ApiException e)
        {
            throw Usage(e);
        }
    }

    private static int Translate(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (ApiException e)
        {
            throw Usage(e);
        }
    }

    private static CliUsageException Usage(ApiException e)
    {
        const string Prefix = "Bad input: ";
        return new CliUsageException(e.Message.StartsWith(Prefix, StringComparison.Ordinal) ? e.Message[Prefix.Length..] : e.Message, e);
    }

    private static string OwnerText(Finetune f) => f.AccountId is null ? "public" : f.IsPublic ? $"{f.AccountId} (public)" : f.AccountId;

    private static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.#} KiB",
        _ => $"{bytes / (1024.0 * 1024.0):0.#} MiB",
    };
}
