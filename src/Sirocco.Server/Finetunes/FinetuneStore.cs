// The adapter store: finetunes (LoRA adapters) and their files, embedded and persistent under a data directory that
// `sirocco serve` and `sirocco lora` share. The finetunes API and the CLI call it; /ai/run resolves `lora` with
// ResolveForRun. Layout and crash safety: docs/API.md "Adapter store".
//
//   <data-dir>/finetunes/<id>.json     one metadata file per finetune (FinetuneJson), replaced atomically
//   <data-dir>/finetunes/.lock         held (FileShare.None) around every change, by whichever process makes it
//   <data-dir>/blobs/sha256/<hex>      file contents, named by their SHA-256, immutable
//   .tmp-*                             files being written; abandoned ones are removed when a store opens
//
// Every change runs under an in-process gate and the cross-process lock, re-reads the metadata from disk (another
// process may have changed it) and writes new metadata last, so a finetune on disk only ever references blobs that
// are complete and flushed. Reads take no lock: renames are atomic, so a reader sees each file whole, old or new.

using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sirocco.Server.Catalog;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Finetunes;

/// <summary>Finetunes and their adapter files on disk. Thread-safe, and safe to share with other processes.</summary>
public sealed partial class FinetuneStore
{
    /// <summary>Environment variable naming the data directory when <c>--data-dir</c> is not given.</summary>
    public const string DataDirectoryVariable = "SIROCCO_DATA_DIR";

    /// <summary>Longest finetune name, in characters.</summary>
    public const int MaxNameLength = 64;

    /// <summary>Longest description, in Unicode code points.</summary>
    public const int MaxDescriptionLength = 1024;

    /// <summary>How long a change waits for another process's lock before it fails.</summary>
    private static readonly TimeSpan s_lockTimeout = TimeSpan.FromSeconds(10);

    private readonly Lock _gate = new();
    private readonly string _metadataDirectory;
    private readonly string _blobDirectory;
    private readonly string _lockPath;
    private readonly IAdapterValidator _validator;
    private readonly ModelCatalog _catalog;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;

    /// <summary>Opens (creating if needed) the store under <paramref name="dataDirectory"/>, removing what an
    /// interrupted writer left behind: temporary files and blobs no finetune references.</summary>
    /// <param name="dataDirectory">The data directory (<see cref="DefaultDataDirectory"/> when the user gave none).</param>
    /// <param name="validator">Checks an adapter's two files when the upload that completes it arrives.</param>
    /// <param name="catalog">The models finetunes may be created for (those whose catalog entry says <c>lora</c>).</param>
    /// <param name="limits">File size and per-account count limits.</param>
    /// <param name="logger">Warnings about unreadable metadata and what recovery removed.</param>
    /// <param name="time">The clock for created_at and modified_at (tests pass a fake one).</param>
    /// <exception cref="IOException">The directory cannot be created or written (the message names it and says how to
    /// choose another).</exception>
    public FinetuneStore(string dataDirectory, IAdapterValidator validator, ModelCatalog catalog, FinetuneLimits? limits = null,
        ILogger? logger = null, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dataDirectory);
        ArgumentNullException.ThrowIfNull(validator);
        ArgumentNullException.ThrowIfNull(catalog);
        DataDirectory = Path.GetFullPath(dataDirectory);
        _metadataDirectory = Path.Combine(DataDirectory, "finetunes");
        _blobDirectory = Path.Combine(DataDirectory, "blobs", "sha256");
        _lockPath = Path.Combine(_metadataDirectory, ".lock");
        _validator = validator;
        _catalog = catalog;
        Limits = limits ?? new FinetuneLimits();
        _logger = logger ?? NullLogger.Instance;
        _time = time ?? TimeProvider.System;
        PrepareDirectory(DataDirectory);
        try
        {
            Locked(Recover);
        }
        catch (UnauthorizedAccessException e)
        {
            throw Unusable(DataDirectory, e);
        }
    }

    /// <summary>Creates the store's directories under <paramref name="dataDirectory"/> if needed, so that a directory
    /// that cannot be used is reported before anything else starts (`sirocco serve` calls it before loading).</summary>
    /// <exception cref="IOException">The directories cannot be created; the message names the path and says how to
    /// choose another.</exception>
    public static void PrepareDirectory(string dataDirectory)
    {
        string full = Path.GetFullPath(dataDirectory);
        try
        {
            Directory.CreateDirectory(Path.Combine(full, "finetunes"));
            Directory.CreateDirectory(Path.Combine(full, "blobs", "sha256"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Unusable(full, e);
        }
    }

    private static IOException Unusable(string dataDirectory, Exception e) =>
        new($"data directory {dataDirectory} cannot be used ({e.Message.TrimEnd('.')}); choose another with --data-dir or {DataDirectoryVariable}", e);

    /// <summary>The data directory (absolute).</summary>
    public string DataDirectory { get; }

    /// <summary>The limits this store enforces.</summary>
    public FinetuneLimits Limits { get; }

    /// <summary>The data directory when none is given: <see cref="DataDirectoryVariable"/> if set, otherwise
    /// <c>sirocco</c> under the user's local application data (<c>~/.local/share/sirocco</c> on Linux).</summary>
    /// <exception cref="IOException">Neither is available (no home directory).</exception>
    public static string DefaultDataDirectory()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable(DataDirectoryVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            return fromEnvironment;
        }
        string local = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        if (string.IsNullOrEmpty(local))
        {
            throw new IOException($"no data directory: the user has no local application data folder; set {DataDirectoryVariable} or pass --data-dir");
        }
        return Path.Combine(local, "sirocco");
    }

    /// <summary>Creates an empty (not ready) finetune owned by <paramref name="account"/>.</summary>
    /// <param name="account">The owner; null for an operator's adapter, which is then always public.</param>
    /// <param name="name">Unique per owner; see <see cref="ValidateName"/>.</param>
    /// <param name="model">A catalog model that takes LoRA adapters, or its alias; stored as the catalog name.</param>
    /// <param name="description">Optional free text, at most <see cref="MaxDescriptionLength"/> code points.</param>
    /// <param name="isPublic">Readable by every account.</param>
    /// <exception cref="ApiException">Invalid name or description (400/5006), unknown model (400/5007), a model without
    /// LoRA (405/5005), a name already taken (400/5006), the account's limit reached (400/5006).</exception>
    public Finetune Create(string? account, string name, string model, string? description = null, bool isPublic = false)
    {
        ValidateName(name);
        description ??= "";
        int descriptionLength = description.EnumerateRunes().Count();
        if (descriptionLength > MaxDescriptionLength)
        {
            throw ApiException.BadInput(
                $"Bad input: /description: {descriptionLength} characters is longer than the maximum {MaxDescriptionLength}", "/description");
        }
        string canonicalModel = CanonicalModel(model);
        isPublic |= account is null;
        return Locked(() =>
        {
            List<Finetune> all = ReadAll(out _);
            if (all.Any(f => f.IsOwnedBy(account) && f.Name == name))
            {
                throw FinetuneErrors.NameTaken(name);
            }
            if (isPublic && all.Any(f => f.IsPublic && f.Name == name))
            {
                throw FinetuneErrors.PublicNameTaken(name);
            }
            if (account is not null && all.Count(f => f.IsOwnedBy(account)) >= Limits.MaxFinetunesPerAccount)
            {
                throw FinetuneErrors.TooMany(Limits.MaxFinetunesPerAccount);
            }
            DateTimeOffset now = Now();
            var finetune = new Finetune
            {
                Id = Guid.NewGuid().ToString("D"),
                Name = name,
                Model = canonicalModel,
                Description = description,
                CreatedAt = now,
                ModifiedAt = now,
                IsPublic = isPublic,
                AccountId = account,
            };
            WriteMetadata(finetune);
            return finetune;
        });
    }

    /// <summary>The finetunes <paramref name="account"/> owns (null: the operator's ownerless ones), oldest first.</summary>
    public IReadOnlyList<Finetune> List(string? account) => [.. Ordered(ReadAll(out _).Where(f => f.IsOwnedBy(account)))];

    /// <summary>Every public finetune, whoever owns it, oldest first.</summary>
    public IReadOnlyList<Finetune> ListPublic() => [.. Ordered(ReadAll(out _).Where(f => f.IsPublic))];

    /// <summary>Every finetune of every account, oldest first (the operator's view: `sirocco lora list`).</summary>
    public IReadOnlyList<Finetune> ListAll() => [.. Ordered(ReadAll(out _))];

    /// <summary>The finetune <paramref name="account"/> may read with this id or name: its own first, then a public one;
    /// null when there is none (a private finetune of another account is "none").</summary>
    public Finetune? Find(string? account, string idOrName) => FindReadable(ReadAll(out _), account, idOrName);

    /// <summary>The finetune <paramref name="account"/> owns with this id or name.</summary>
    /// <exception cref="ApiException">404/3042 when there is none; 403/3041 when it is another owner's public one.</exception>
    public Finetune GetOwned(string? account, string idOrName) => FindOwned(ReadAll(out _), account, idOrName);

    /// <summary>Deletes a finetune and the blobs no other finetune shares.</summary>
    /// <returns>The finetune as it was.</returns>
    /// <exception cref="ApiException">404/3042 or 403/3041, as <see cref="GetOwned"/>.</exception>
    public Finetune Delete(string? account, string idOrName) => Locked(() =>
    {
        List<Finetune> all = ReadAll(out bool complete);
        Finetune finetune = FindOwned(all, account, idOrName);
        File.Delete(MetadataPath(finetune.Id));
        DurableFiles.FlushDirectory(_metadataDirectory);
        if (complete)
        {
            var stillUsed = all.Where(f => f.Id != finetune.Id).SelectMany(f => f.Files.Values).Select(f => f.Sha256).ToHashSet(StringComparer.Ordinal);
            foreach (FinetuneFile file in finetune.Files.Values.Where(f => !stillUsed.Contains(f.Sha256)))
            {
                DurableFiles.TryDelete(BlobPath(file.Sha256));
            }
        }
        return finetune;
    });

    /// <summary>The adapter a run request's <c>lora</c> names, with the paths of its files.</summary>
    /// <exception cref="ApiException">400/5006 when <paramref name="account"/> can see no finetune of that id or name
    /// (the message names it); 400/3039 when it lacks a file.</exception>
    public ResolvedAdapter ResolveForRun(string? account, string idOrName)
    {
        ArgumentNullException.ThrowIfNull(idOrName);
        Finetune finetune = Find(account, idOrName) ?? throw FinetuneErrors.UnknownForRun(idOrName);
        var missing = finetune.MissingFileNames.Concat(
            finetune.Files.Where(f => !File.Exists(BlobPath(f.Value.Sha256))).Select(f => f.Key)).ToList();
        if (missing.Count > 0)
        {
            throw FinetuneErrors.MissingFiles(finetune, missing);
        }
        return new ResolvedAdapter(finetune,
            BlobPath(finetune.Files[Finetune.ConfigFileName].Sha256),
            BlobPath(finetune.Files[Finetune.WeightsFileName].Sha256));
    }

    /// <summary>Checks a finetune name: 1 to <see cref="MaxNameLength"/> characters, ASCII letters, digits, <c>-</c>,
    /// <c>_</c> and <c>.</c>, starting with a letter or digit (so no <c>..</c>, no hidden or option-like names, no path
    /// separators or control characters), and not a UUID (ids and names share the `lora` field).</summary>
    /// <exception cref="ApiException">400/5006 naming the rule broken.</exception>
    public static void ValidateName(string? name)
    {
        const string Pointer = "/name";
        if (string.IsNullOrEmpty(name))
        {
            throw ApiException.BadInput("Bad input: /name: a finetune name is required (1 to 64 letters, digits, '-', '_' or '.')", Pointer);
        }
        if (name.Length > MaxNameLength)
        {
            throw ApiException.BadInput($"Bad input: /name: {FinetuneErrors.Show(name)} is longer than the maximum {MaxNameLength} characters", Pointer);
        }
        int bad = name.AsSpan().IndexOfAnyExcept(s_nameCharacters);
        if (bad >= 0)
        {
            throw ApiException.BadInput(
                $"Bad input: /name: {FinetuneErrors.Show(name)} contains {Describe(name[bad])} at position {bad}; use letters, digits, '-', '_' and '.'", Pointer);
        }
        if (!char.IsAsciiLetterOrDigit(name[0]))
        {
            throw ApiException.BadInput($"Bad input: /name: {FinetuneErrors.Show(name)} must start with a letter or a digit", Pointer);
        }
        if (Guid.TryParse(name, out _))
        {
            throw ApiException.BadInput($"Bad input: /name: {FinetuneErrors.Show(name)} looks like a finetune id; choose a name that is not a UUID", Pointer);
        }
    }

    private static readonly System.Buffers.SearchValues<char> s_nameCharacters =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");

    private static string Describe(char c) => c switch
    {
        '/' or '\\' => $"a path separator '{c}'",
        _ when char.IsControl(c) => $"a control character (U+{(int)c:X4})",
        ' ' => "a space",
        _ => $"'{c}'",
    };

    /// <summary>The catalog name of a model that takes LoRA adapters.</summary>
    private string CanonicalModel(string? model)
    {
        if (string.IsNullOrEmpty(model))
        {
            throw ApiException.BadInput($"Bad input: /model: the base model is required, e.g. {ModelCatalog.LoraModelName}", "/model");
        }
        CatalogModel found = _catalog.Find(model) ?? throw new ApiException(ErrorCodes.NoSuchModel, 400,
            $"No such model {model} or task: finetunes can be created for " +
            string.Join(", ", _catalog.Models.Where(TakesLora).Select(m => m.Name)) + $" (or {ModelCatalog.LoraModelAlias})", "/model");
        if (!TakesLora(found))
        {
            throw ApiException.LoraUnsupported(found.Name);
        }
        return found.Name;
    }

    private static bool TakesLora(CatalogModel model) =>
        model.Properties.TryGetValue("lora", out string? lora) && string.Equals(lora, "true", StringComparison.OrdinalIgnoreCase);

    private static Finetune? FindReadable(List<Finetune> all, string? account, string idOrName) =>
        Match(all.Where(f => f.IsOwnedBy(account)), idOrName) ?? Match(all.Where(f => f.IsPublic), idOrName);

    private static Finetune FindOwned(List<Finetune> all, string? account, string idOrName)
    {
        if (Match(all.Where(f => f.IsOwnedBy(account)), idOrName) is { } owned)
        {
            return owned;
        }
        if (Match(all.Where(f => f.IsPublic), idOrName) is { } other)
        {
            throw FinetuneErrors.NotOwner(other);
        }
        throw FinetuneErrors.NotFound(idOrName);
    }

    /// <summary>The finetune whose id (any UUID spelling) or name (exact) is <paramref name="idOrName"/>. A name is
    /// never a UUID, so the two cannot collide.</summary>
    private static Finetune? Match(IEnumerable<Finetune> candidates, string idOrName) =>
        Guid.TryParse(idOrName, out Guid id)
            ? candidates.FirstOrDefault(f => f.Id == id.ToString("D"))
            : candidates.FirstOrDefault(f => f.Name == idOrName);

    private static IEnumerable<Finetune> Ordered(IEnumerable<Finetune> finetunes) =>
        finetunes.OrderBy(f => f.CreatedAt).ThenBy(f => f.Id, StringComparer.Ordinal);

    private DateTimeOffset Now()
    {
        // Millisecond precision, as stored, so a finetune compares equal to itself read back.
        DateTimeOffset now = _time.GetUtcNow();
        return new DateTimeOffset(now.Ticks - now.Ticks % TimeSpan.TicksPerMillisecond, TimeSpan.Zero);
    }
}
