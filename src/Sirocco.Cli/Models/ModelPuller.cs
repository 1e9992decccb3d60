// `sirocco pull` and first use of a hub model: asks the hub which commit the revision is at and which files it has,
// picks the files (FileSelection), checks the disk has room, records the plan, downloads each file (Downloader:
// resumable, verified), checks the result opens as a model, and registers it with a manifest written last. A model
// already in the store is returned without a single request.

using Sirocco.Engine.Formats;
using Sirocco.Engine.Formats.Gguf;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Model;

namespace Sirocco.Cli.Models;

/// <summary>Downloads hub models into a <see cref="ModelStore"/>.</summary>
/// <param name="freeSpace">Free bytes in a directory; <see cref="DiskSpace.Available"/> unless a test injects one.</param>
internal sealed class ModelPuller(ModelStore store, HubClient hub, DownloadReporter reporter, Func<string, long>? freeSpace = null)
{
    private readonly Func<string, long> _freeSpace = freeSpace ?? DiskSpace.Available;

    /// <summary>Makes <paramref name="reference"/> present in the store and returns it.</summary>
    /// <param name="retryCommand">The command a user runs to try again (`sirocco pull …`), for messages.</param>
    /// <exception cref="ModelStoreException">Any failure, with what to do; the store never holds a manifest for a
    /// model whose files were not all verified.</exception>
    public async Task<StoredModel> PullAsync(HubModelReference reference, string retryCommand, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (store.Find(reference) is { State: StoredModelState.Ready } present)
        {
            return present;
        }
        HubRepoInfo info = await hub.GetRepoAsync(reference, cancellationToken);
        IReadOnlyList<HubFileEntry> listing = await hub.ListFilesAsync(reference, info.Commit, cancellationToken);
        FileSelection selection = FileSelection.Select(reference, listing);
        string directory = store.SnapshotDirectory(reference, info.Commit);
        IReadOnlyDictionary<string, ManifestFile> verified = store.VerifiedFiles(reference, info.Commit);

        long total = selection.Files.Sum(f => f.Size), needed = 0;
        foreach (HubFileEntry file in selection.Files)
        {
            string target = Path.Combine(directory, file.Path);
            var partial = new FileInfo(target + ".partial");
            bool have = IsVerifiedCopy(verified, file, target) || (File.Exists(target) && new FileInfo(target).Length == file.Size);
            needed += have ? 0 : file.Size - (partial.Exists && partial.Length <= file.Size ? partial.Length : 0);
        }
        long free = _freeSpace(directory);
        if (needed + DiskSpace.MarginBytes > free)
        {
            throw new ModelStoreException(
                $"not enough disk space for {reference.Display}: the download needs {ConsoleProgress.FormatBytes(needed)} more and {store.Root} has " +
                $"{ConsoleProgress.FormatBytes(free)} free (keeping {ConsoleProgress.FormatBytes(DiskSpace.MarginBytes)} spare); free some space, " +
                $"or put the store elsewhere with --models-dir or {ModelStore.DirectoryVariable}");
        }

        var plan = new ModelManifest
        {
            Reference = (reference with { Alias = null }).ToString(),
            Endpoint = hub.Endpoint.AbsoluteUri.TrimEnd('/'),
            Repo = info.Id,
            Revision = reference.Revision,
            Commit = info.Commit,
            Kind = selection.Kind,
            LoadPath = selection.LoadPath,
            Files = [.. selection.Files.Select(f => new ManifestFile(f.Path, f.Size, f.Sha256 ?? "", f.GitOid))],
        };
        store.WritePending(reference, plan);
        reporter.Note($"pulling {reference.Display} from {plan.Endpoint} (commit {info.Commit[..12]}): {selection.Files.Count} file(s), " +
            $"{ConsoleProgress.FormatBytes(total)}" + (needed < total ? $", {ConsoleProgress.FormatBytes(needed)} left to download" : "") + $", into {directory}");

        var downloader = new Downloader(hub, reporter);
        var files = new List<ManifestFile>();
        try
        {
            for (int i = 0; i < selection.Files.Count; i++)
            {
                HubFileEntry file = selection.Files[i];
                string target = Path.Combine(directory, file.Path);
                string label = selection.Files.Count > 1 ? $"{file.Path} ({i + 1}/{selection.Files.Count})" : file.Path;
                string sha256;
                if (IsVerifiedCopy(verified, file, target))
                {
                    sha256 = verified[file.Path].Sha256;
                }
                else if (await VerifyExistingAsync(file, target, label, cancellationToken) is { } existing)
                {
                    sha256 = existing;
                }
                else
                {
                    sha256 = await downloader.DownloadAsync(reference, info.Commit, file, target, label, retryCommand, cancellationToken);
                }
                files.Add(new ManifestFile(file.Path, file.Size, sha256, file.GitOid));
            }
        }
        catch (ModelStoreException) when (!selection.Files.Any(f => HasBytes(Path.Combine(directory, f.Path), verified.ContainsKey(f.Path))))
        {
            // Refused before a byte arrived (401, 404 …): leave no trace of the attempt in the store.
            if (store.FindPending(reference) is { } pending)
            {
                store.Remove(pending);
            }
            throw;
        }

        string? quantization;
        try
        {
            quantization = Describe(selection.Kind, Path.Combine(directory, selection.LoadPath));
        }
        catch (Exception e) when (e is ModelFormatException or UnsupportedModelException or FileNotFoundException)
        {
            long freed = store.FindPending(reference) is { } pending ? store.Remove(pending) : 0;
            throw new ModelStoreException(
                $"{reference.Display} was downloaded and matches the hub's digests, but it is not a model Sirocco can read ({e.Message}); " +
                $"its files were removed ({ConsoleProgress.FormatBytes(freed)}). Pick another file or repository", e);
        }
        return store.Complete(reference, plan with { Files = files, Quantization = quantization, DownloadedAt = DateTimeOffset.UtcNow, Verified = true });
    }

    /// <summary>True when this pull left something worth resuming at <paramref name="target"/>.</summary>
    private static bool HasBytes(string target, bool shared) =>
        (File.Exists(target + ".partial") && new FileInfo(target + ".partial").Length > 0) || (!shared && File.Exists(target));

    private static bool IsVerifiedCopy(IReadOnlyDictionary<string, ManifestFile> verified, HubFileEntry file, string target) =>
        verified.TryGetValue(file.Path, out ManifestFile? known) && known.Size == file.Size
        && (file.Sha256 is null || file.Sha256 == known.Sha256)
        && File.Exists(target) && new FileInfo(target).Length == file.Size;

    /// <summary>A file already at its final name that no Ready manifest vouches for (an interrupted multi-file pull, or
    /// one a verification deleted the manifest of) is hashed again before it is used: its sha256, or null (and it is
    /// deleted) when it does not match or has the wrong size.</summary>
    private async Task<string?> VerifyExistingAsync(HubFileEntry file, string target, string label, CancellationToken cancellationToken)
    {
        if (!File.Exists(target))
        {
            return null;
        }
        if (new FileInfo(target).Length == file.Size)
        {
            (string sha256, string? gitId) = await Downloader.HashFileAsync(target, file, reporter.Bar($"checking {label}", 0), cancellationToken);
            if ((file.Sha256 is null || file.Sha256 == sha256) && (file.IsLfs || file.GitOid is null || file.GitOid == gitId))
            {
                return sha256;
            }
        }
        reporter.Note($"{label}: the copy already in the store does not match the hub's; downloading it again");
        File.Delete(target);
        return null;
    }

    /// <summary>Opens the downloaded model the way the loaders will (header and tensor table, no weights read) and
    /// names its quantization: the GGUF file type, or the checkpoint's main dtype.</summary>
    private static string? Describe(ModelKind kind, string path)
    {
        if (kind == ModelKind.Gguf)
        {
            using GgufFile gguf = GgufFile.Open(path);
            int fileType = gguf.GetInt("general.file_type", -1);
            return fileType >= 0 && Enum.IsDefined((ModelFileType)(uint)fileType) ? ((ModelFileType)(uint)fileType).ToString()
                : gguf.Tensors.GroupBy(t => t.Type).MaxBy(g => g.Sum(t => t.ByteCount))?.Key.ToString();
        }
        using SafeTensorCheckpoint checkpoint = SafeTensorCheckpoint.Open(path);
        return checkpoint.Tensors.GroupBy(t => t.Dtype).MaxBy(g => g.Sum(t => t.ByteCount))?.Key.ToString();
    }
}
