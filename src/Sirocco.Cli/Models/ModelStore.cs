// The model store: the cache directory where pulled models live, shared by every command. Layout (docs/MODELS.md):
//   <root>/<owner>/<repo>/<commit>/<file as the hub names it>        the files (FILE.partial while downloading)
//   <root>/<owner>/<repo>/<selector>[@<revision>].manifest.json      one per model: written last, atomically
//   <root>/<owner>/<repo>/<selector>[@<revision>].pending.json       the plan of a download not finished yet
// (owner and repo lowercased: hub ids are case-insensitive). A model is present only when its manifest says verified
// and every file it lists is there with its size; ModelPuller writes files, this class reads, lists and removes them.

using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sirocco.Cli.Models;

/// <summary>One file of a stored model.</summary>
/// <param name="Path">Relative to the model's snapshot directory, as the hub names it.</param>
/// <param name="Sha256">Lowercase hex, computed while downloading (and equal to what the hub published, where it did).</param>
/// <param name="GitOid">The git blob id the hub listed, if any.</param>
internal sealed record ManifestFile(string Path, long Size, string Sha256, string? GitOid);

/// <summary>What the store knows about one model; the JSON of a manifest or pending file.</summary>
internal sealed record ModelManifest
{
    public int Version { get; init; } = 1;

    /// <summary>The reference as typed without alias: owner/repo[@revision][:selector].</summary>
    public required string Reference { get; init; }

    public required string Endpoint { get; init; }

    /// <summary>The repository id as the hub spells it.</summary>
    public required string Repo { get; init; }

    public required string Revision { get; init; }

    /// <summary>The 40-hex commit the files were downloaded at; also their directory's name.</summary>
    public required string Commit { get; init; }

    public required ModelKind Kind { get; init; }

    /// <summary>The GGUF file type (Q4_K_M, Q8_0 …) or the safetensors dtype (BF16 …), when known.</summary>
    public string? Quantization { get; init; }

    /// <summary>What the loaders are given, relative to the snapshot directory ("." for a checkpoint directory).</summary>
    public required string LoadPath { get; init; }

    public required IReadOnlyList<ManifestFile> Files { get; init; }

    public DateTimeOffset? DownloadedAt { get; init; }

    /// <summary>True once every file was verified against the hub's size and digest; pending plans say false.</summary>
    public bool Verified { get; init; }

    [JsonIgnore]
    public long SizeBytes => Files.Sum(f => f.Size);
}

internal enum StoredModelState
{
    /// <summary>Verified, and every file is there with its size: loadable.</summary>
    Ready,

    /// <summary>A manifest whose files are missing or have the wrong size (or that cannot be read).</summary>
    Damaged,

    /// <summary>A download that has not finished (a pending plan, partial files).</summary>
    Incomplete,
}

/// <summary>A model in the store, as found on disk.</summary>
/// <param name="SnapshotDirectory">The directory its files are in.</param>
/// <param name="Problem">Why it is not Ready, in words.</param>
/// <param name="PresentBytes">Bytes on disk of its files (partial files included).</param>
internal sealed record StoredModel(ModelManifest Manifest, string ManifestPath, string SnapshotDirectory, StoredModelState State, string? Problem, long PresentBytes)
{
    public string LoadPath => System.IO.Path.GetFullPath(System.IO.Path.Combine(SnapshotDirectory, Manifest.LoadPath));

    /// <summary>The main file (the GGUF) or directory, for listings.</summary>
    public string DisplayPath => Manifest.Kind == ModelKind.Gguf ? LoadPath : SnapshotDirectory;
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    UseStringEnumConverter = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ModelManifest))]
internal sealed partial class ModelStoreJson : JsonSerializerContext;

/// <summary>The on-disk cache of pulled models.</summary>
internal sealed class ModelStore
{
    /// <summary>Overrides the default store directory (as --models-dir does).</summary>
    public const string DirectoryVariable = "SIROCCO_MODELS";

    private const string ManifestSuffix = ".manifest.json";
    private const string PendingSuffix = ".pending.json";

    /// <param name="isExplicit">The directory came from --models-dir, so commands suggested in messages repeat it.</param>
    public ModelStore(string root, bool isExplicit = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        Root = Path.GetFullPath(root);
        IsExplicit = isExplicit;
    }

    /// <summary>The store's directory (absolute).</summary>
    public string Root { get; }

    /// <summary>Opens the store at <paramref name="modelsDir"/> (--models-dir), else SIROCCO_MODELS, else the default.</summary>
    public static ModelStore Open(string? modelsDir) =>
        modelsDir is { Length: > 0 } ? new(modelsDir, isExplicit: true)
            : new(Environment.GetEnvironmentVariable(DirectoryVariable) is { Length: > 0 } variable ? variable : DefaultRoot());

    /// <summary><c>$XDG_CACHE_HOME/sirocco/models</c>, by default <c>~/.cache/sirocco/models</c>
    /// (on Windows, <c>%LOCALAPPDATA%\sirocco\models</c>).</summary>
    public static string DefaultRoot()
    {
        if (OperatingSystem.IsWindows())
        {
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "sirocco", "models");
        }
        string cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg && Path.IsPathRooted(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(cache, "sirocco", "models");
    }

    /// <summary>True when the directory was given with --models-dir (not the environment or the default).</summary>
    public bool IsExplicit { get; }

    public string RepoDirectory(HubModelReference reference) =>
        Path.Combine(Root, reference.Owner.ToLowerInvariant(), reference.Name.ToLowerInvariant());

    /// <summary>Where the files of <paramref name="reference"/> at <paramref name="commit"/> go.</summary>
    public string SnapshotDirectory(HubModelReference reference, string commit) => Path.Combine(RepoDirectory(reference), commit);

    public string ManifestPath(HubModelReference reference) => Path.Combine(RepoDirectory(reference), Key(reference) + ManifestSuffix);

    public string PendingPath(HubModelReference reference) => Path.Combine(RepoDirectory(reference), Key(reference) + PendingSuffix);

    /// <summary>The stored model <paramref name="reference"/> names (in any state but Incomplete), or null.</summary>
    public StoredModel? Find(HubModelReference reference)
    {
        string path = ManifestPath(reference);
        return File.Exists(path) ? Inspect(path, pending: false) : null;
    }

    /// <summary>The unfinished download of <paramref name="reference"/>, or null.</summary>
    public StoredModel? FindPending(HubModelReference reference)
    {
        string path = PendingPath(reference);
        return File.Exists(path) ? Inspect(path, pending: true) : null;
    }

    /// <summary>Every model and unfinished download in the store, by reference.</summary>
    public IReadOnlyList<StoredModel> List()
    {
        if (!Directory.Exists(Root))
        {
            return [];
        }
        var models = new List<StoredModel>();
        foreach (string owner in Directory.EnumerateDirectories(Root))
        {
            foreach (string repo in Directory.EnumerateDirectories(owner))
            {
                foreach (string file in Directory.EnumerateFiles(repo, "*.json"))
                {
                    if (file.EndsWith(ManifestSuffix, StringComparison.Ordinal) || file.EndsWith(PendingSuffix, StringComparison.Ordinal))
                    {
                        models.Add(Inspect(file, pending: file.EndsWith(PendingSuffix, StringComparison.Ordinal)));
                    }
                }
            }
        }
        return [.. models.OrderBy(m => m.Manifest.Reference, StringComparer.OrdinalIgnoreCase).ThenBy(m => m.State)];
    }

    /// <summary>Files of Ready models of the same repository and commit, by path: they were verified when
    /// downloaded, so another model that shares them need not fetch or hash them again.</summary>
    public IReadOnlyDictionary<string, ManifestFile> VerifiedFiles(HubModelReference reference, string commit)
    {
        var files = new Dictionary<string, ManifestFile>(StringComparer.Ordinal);
        string repo = RepoDirectory(reference);
        if (!Directory.Exists(repo))
        {
            return files;
        }
        foreach (string path in Directory.EnumerateFiles(repo, "*" + ManifestSuffix))
        {
            StoredModel model = Inspect(path, pending: false);
            if (model.State == StoredModelState.Ready && model.Manifest.Commit == commit)
            {
                foreach (ManifestFile file in model.Manifest.Files)
                {
                    files.TryAdd(file.Path, file);
                }
            }
        }
        return files;
    }

    /// <summary>Records the plan of a download about to start, so that `sirocco models` shows it and `sirocco rm`
    /// can clean it up if it never finishes.</summary>
    public void WritePending(HubModelReference reference, ModelManifest plan) =>
        WriteAtomically(PendingPath(reference), plan with { Verified = false });

    /// <summary>Registers a downloaded and verified model: the manifest is written (atomically) last, then the plan
    /// is removed. Returns the model as stored.</summary>
    public StoredModel Complete(HubModelReference reference, ModelManifest manifest)
    {
        if (!manifest.Verified)
        {
            throw new ArgumentException("only a verified model is registered", nameof(manifest));
        }
        string path = ManifestPath(reference);
        WriteAtomically(path, manifest);
        File.Delete(PendingPath(reference));
        return Inspect(path, pending: false);
    }

    /// <summary>Deletes a model: its manifest (or plan), its partial files, and every file no other model of the store
    /// lists, then any directory left empty. Returns the bytes freed.</summary>
    public long Remove(StoredModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var shared = new HashSet<string>(StringComparer.Ordinal);
        string repo = Path.GetDirectoryName(model.ManifestPath)!;
        foreach (string other in Directory.EnumerateFiles(repo, "*.json"))
        {
            if (other != model.ManifestPath && (other.EndsWith(ManifestSuffix, StringComparison.Ordinal) || other.EndsWith(PendingSuffix, StringComparison.Ordinal))
                && TryRead(other) is { } manifest && manifest.Commit == model.Manifest.Commit)
            {
                shared.UnionWith(manifest.Files.Select(f => f.Path));
            }
        }
        long freed = 0;
        foreach (ManifestFile file in model.Manifest.Files)
        {
            string target = Path.Combine(model.SnapshotDirectory, file.Path);
            foreach (string path in shared.Contains(file.Path) ? [target + ".partial"] : (string[])[target, target + ".partial"])
            {
                if (File.Exists(path))
                {
                    freed += new FileInfo(path).Length;
                    File.Delete(path);
                }
            }
        }
        File.Delete(model.ManifestPath);
        // Prune directories the removal emptied, from the deepest file's folder up to (not including) the root.
        foreach (string dir in model.Manifest.Files.Select(f => Path.GetDirectoryName(Path.Combine(model.SnapshotDirectory, f.Path))!)
            .Distinct().OrderByDescending(d => d.Length))
        {
            PruneEmpty(dir);
        }
        PruneEmpty(repo);
        return freed;
    }

    /// <summary>Hashes every file of a Ready model again and compares it with the manifest. A file that no longer
    /// matches is deleted together with the manifest, so the model is never used again until it is pulled.</summary>
    /// <returns>Null when every file matches, else what did not.</returns>
    public static async Task<string?> VerifyAsync(StoredModel model, DownloadReporter reporter, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(reporter);
        if (model.State != StoredModelState.Ready)
        {
            return model.Problem;
        }
        foreach (ManifestFile file in model.Manifest.Files)
        {
            string path = Path.Combine(model.SnapshotDirectory, file.Path);
            var entry = new HubFileEntry(file.Path, file.Size, null, file.Sha256);
            (string sha256, _) = await Downloader.HashFileAsync(path, entry, reporter.Bar($"verifying {file.Path}", 0), cancellationToken);
            if (sha256 != file.Sha256)
            {
                File.Delete(path);
                File.Delete(model.ManifestPath);
                return $"{file.Path} does not match its sha256 (expected {file.Sha256}, got {sha256}); it was deleted";
            }
        }
        return null;
    }

    /// <summary>Deletes <paramref name="directory"/> and its parents while they are empty, up to (not including) the root.</summary>
    private void PruneEmpty(string directory)
    {
        for (string? d = directory; d is not null && d.Length > Root.Length && d.StartsWith(Root, StringComparison.Ordinal); d = Path.GetDirectoryName(d))
        {
            if (Directory.Exists(d))
            {
                if (Directory.EnumerateFileSystemEntries(d).Any())
                {
                    return;
                }
                Directory.Delete(d);
            }
        }
    }

    /// <summary>Reads a manifest or plan and checks its files against the disk.</summary>
    private static StoredModel Inspect(string path, bool pending)
    {
        ModelManifest? manifest = TryRead(path);
        string repoDirectory = Path.GetDirectoryName(path)!;
        if (manifest is null)
        {
            var unreadable = new ModelManifest
            {
                Reference = Path.GetFileName(path), Endpoint = "", Repo = "", Revision = "", Commit = "", Kind = ModelKind.Gguf, LoadPath = ".", Files = [],
            };
            return new StoredModel(unreadable, path, repoDirectory, StoredModelState.Damaged, $"{path} cannot be read; remove it", 0);
        }
        string snapshot = Path.Combine(repoDirectory, manifest.Commit);
        long present = 0;
        string? problem = null;
        foreach (ManifestFile file in manifest.Files)
        {
            var info = new FileInfo(Path.Combine(snapshot, file.Path));
            var partial = new FileInfo(info.FullName + ".partial");
            if (info.Exists)
            {
                present += info.Length;
                if (info.Length != file.Size)
                {
                    problem ??= $"{file.Path} is {info.Length:N0} bytes, not {file.Size:N0}";
                }
            }
            else
            {
                present += partial.Exists ? partial.Length : 0;
                problem ??= $"{file.Path} is missing";
            }
        }
        StoredModelState state = pending ? StoredModelState.Incomplete
            : !manifest.Verified ? StoredModelState.Damaged
            : problem is null ? StoredModelState.Ready
            : StoredModelState.Damaged;
        if (pending)
        {
            long total = manifest.SizeBytes;
            problem = $"download not finished: {ConsoleProgress.FormatBytes(present)} of {ConsoleProgress.FormatBytes(total)}";
        }
        else if (!manifest.Verified)
        {
            problem = "not verified";
        }
        return new StoredModel(manifest, path, snapshot, state, state == StoredModelState.Ready ? null : problem, present);
    }

    /// <summary>The manifest at <paramref name="path"/>, or null when it is unreadable or names unsafe paths.</summary>
    private static ModelManifest? TryRead(string path)
    {
        try
        {
            using FileStream stream = File.OpenRead(path);
            ModelManifest? manifest = JsonSerializer.Deserialize(stream, ModelStoreJson.Default.ModelManifest);
            return manifest is not null && HubClient.IsGitId(manifest.Commit) && RepoPaths.IsSafe(manifest.LoadPath == "." ? "x" : manifest.LoadPath)
                && manifest.Files.All(f => RepoPaths.IsSafe(f.Path) && f.Size >= 0)
                ? manifest
                : null;
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void WriteAtomically(string path, ModelManifest manifest)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string temp = $"{path}.{Environment.ProcessId}.tmp";
        using (FileStream stream = File.Create(temp))
        {
            JsonSerializer.Serialize(stream, manifest, ModelStoreJson.Default.ModelManifest);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The manifest's file name without suffix: the selector, plus "@revision" off main.</summary>
    private static string Key(HubModelReference reference) =>
        reference.Selector.Key + (reference.Revision == HubModelReference.DefaultRevision ? "" : "@" + reference.Revision.Replace('/', '~'));
}
