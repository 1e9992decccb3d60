// Turns a --model argument into a path the loaders take: a local path as is; a hub reference or alias from the store
// when it is there (no network at all), else pulled first (unless offline, or the command only reads the store). The
// commands that run models (serve, run, logits, bench) and `inspect` resolve through here.

namespace Sirocco.Cli.Models;

/// <summary>A model argument resolved to something on disk.</summary>
/// <param name="Path">The GGUF file or model directory to load.</param>
/// <param name="Name">What to call it: the file name for a local path, the hub reference for a stored model.</param>
/// <param name="Stored">The store's record, for hub models.</param>
internal sealed record ResolvedModel(string Path, string Name, StoredModel? Stored);

/// <summary>Resolves model references against a store and, when allowed, a hub.</summary>
internal sealed class ModelResolver(ModelStore store, HubOptions hubOptions, ModelAliases aliases, DownloadReporter reporter,
    Func<string, long>? freeSpace = null, HttpMessageHandler? handler = null)
{
    public ModelStore Store => store;

    public ModelAliases Aliases => aliases;

    public HubOptions HubOptions => hubOptions;

    /// <summary>Parses <paramref name="text"/> (see <see cref="ModelReference.Parse"/>).</summary>
    public ModelReference Parse(string text) => ModelReference.Parse(text, aliases);

    /// <summary>The path to load for <paramref name="text"/>.</summary>
    /// <param name="download">False for commands that only read the store (inspect): a missing model is an error
    /// naming the pull command instead of a download.</param>
    /// <exception cref="ModelStoreException">Not in the store and offline (or not allowed to download), or the pull failed.</exception>
    public async Task<ResolvedModel> ResolveAsync(string text, bool download, CancellationToken cancellationToken)
    {
        switch (Parse(text))
        {
            case LocalModelReference local:
                return new ResolvedModel(local.Path, System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(local.Path)), null);
            case HubModelReference hub:
                StoredModel? stored = store.Find(hub);
                if (stored is { State: StoredModelState.Ready })
                {
                    return new ResolvedModel(stored.LoadPath, hub.ToString(), stored);
                }
                string pull = PullCommand(hub);
                if (hubOptions.Offline || !download)
                {
                    string why = hubOptions.Offline ? $"offline mode (--offline or {HubOptions.OfflineVariable}) forbids downloading it" : "this command does not download";
                    throw new ModelStoreException(stored is null
                        ? $"{hub.Display} is not in the model store ({store.Root}) and {why}: run `{pull}` first (while online), or give a local file"
                        : $"{hub.Display} in the model store is damaged ({stored.Problem}) and {why}: run `{pull}` to repair it");
                }
                if (stored is not null)
                {
                    reporter.Note($"{hub.Display} in the model store is damaged ({stored.Problem}); downloading what is missing");
                }
                else if (hub.Alias is not null)
                {
                    reporter.Note($"{hub.Alias} is {hub} on {hubOptions.Endpoint.AbsoluteUri.TrimEnd('/')}, not yet in the model store ({store.Root}); downloading it once");
                }
                StoredModel pulled = await PullAsync(hub, cancellationToken);
                return new ResolvedModel(pulled.LoadPath, hub.ToString(), pulled);
            default:
                throw new InvalidOperationException("unknown reference kind");
        }
    }

    /// <summary>Downloads <paramref name="reference"/> into the store (or returns it, if there) without a request.</summary>
    /// <exception cref="ModelStoreException">Offline, or the pull failed.</exception>
    public async Task<StoredModel> PullAsync(HubModelReference reference, CancellationToken cancellationToken)
    {
        if (store.Find(reference) is { State: StoredModelState.Ready } present)
        {
            return present;
        }
        if (hubOptions.Offline)
        {
            throw new ModelStoreException($"offline mode (--offline or {HubOptions.OfflineVariable}) forbids downloading {reference.Display}; unset it to pull");
        }
        if (store.Find(reference) is not null)
        {
            // A damaged model: its manifest no longer vouches for anything; files that still match are re-hashed and kept.
            File.Delete(store.ManifestPath(reference));
        }
        using var hub = new HubClient(hubOptions, handler);
        var puller = new ModelPuller(store, hub, reporter, freeSpace);
        return await puller.PullAsync(reference, PullCommand(reference), cancellationToken);
    }

    /// <summary>The command that downloads <paramref name="reference"/> into this store.</summary>
    public string PullCommand(HubModelReference reference) =>
        $"sirocco pull {reference.Alias ?? reference.ToString()}" + (store.IsExplicit ? $" --models-dir {store.Root}" : "");
}
