// A finetune (a LoRA adapter for one base model) as the FinetuneStore keeps it and the finetunes API shows it: who owns
// it, who may read it, and which of its two PEFT files have been uploaded (each a content-addressed blob).

namespace Sirocco.Server.Finetunes;

/// <summary>One uploaded adapter file: the SHA-256 of its bytes (lower-case hex, the name of its blob) and its size.</summary>
public sealed record FinetuneFile(string Sha256, long SizeBytes);

/// <summary>A finetune. Immutable; the store writes a new version on every change.</summary>
public sealed record Finetune
{
    /// <summary>The PEFT adapter configuration file (JSON: <c>r</c>, <c>lora_alpha</c>, <c>target_modules</c>, and the
    /// <c>model_type</c> Workers AI requires).</summary>
    public const string ConfigFileName = "adapter_config.json";

    /// <summary>The PEFT adapter weights (safetensors: the A and B matrices per target module).</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>The files a finetune needs, in upload order of the docs and wrangler.</summary>
    public static IReadOnlyList<string> RequiredFileNames { get; } = [ConfigFileName, WeightsFileName];

    /// <summary>A UUID (lower-case, with hyphens) chosen by the store.</summary>
    public required string Id { get; init; }

    /// <summary>The name, unique among its owner's finetunes (<see cref="FinetuneStore.ValidateName"/>).</summary>
    public required string Name { get; init; }

    /// <summary>The base model's catalog name (an alias given at creation is stored as the catalog name).</summary>
    public required string Model { get; init; }

    /// <summary>Free text; empty when none was given.</summary>
    public string Description { get; init; } = "";

    /// <summary>When it was created (UTC).</summary>
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>When it last changed: creation or the last file upload (UTC).</summary>
    public required DateTimeOffset ModifiedAt { get; init; }

    /// <summary>Readable (listed, runnable) by every account; still changed and deleted only by its owner.</summary>
    public bool IsPublic { get; init; }

    /// <summary>The owning account, or null for an adapter the operator added with `sirocco lora add` without
    /// <c>--account</c> (always public).</summary>
    public string? AccountId { get; init; }

    /// <summary>The uploaded files by file name (<see cref="ConfigFileName"/>, <see cref="WeightsFileName"/>).</summary>
    public IReadOnlyDictionary<string, FinetuneFile> Files { get; init; } = new Dictionary<string, FinetuneFile>();

    /// <summary>True when both required files are present (and so passed validation together).</summary>
    public bool IsReady => RequiredFileNames.All(Files.ContainsKey);

    /// <summary>The required files not uploaded yet.</summary>
    public IEnumerable<string> MissingFileNames => RequiredFileNames.Where(n => !Files.ContainsKey(n));

    /// <summary>Bytes of all uploaded files.</summary>
    public long TotalBytes => Files.Values.Sum(f => f.SizeBytes);

    /// <summary>Whether <paramref name="account"/> owns it (null: the operator's ownerless adapters).</summary>
    public bool IsOwnedBy(string? account) => string.Equals(AccountId, account, StringComparison.Ordinal);

    /// <summary>Value equality, the files compared by content (a version read back from disk equals the one written).</summary>
    public bool Equals(Finetune? other) =>
        other is not null && Id == other.Id && Name == other.Name && Model == other.Model && Description == other.Description
        && CreatedAt == other.CreatedAt && ModifiedAt == other.ModifiedAt && IsPublic == other.IsPublic && AccountId == other.AccountId
        && Files.Count == other.Files.Count && Files.All(f => other.Files.TryGetValue(f.Key, out FinetuneFile? o) && o == f.Value);

    public override int GetHashCode() => HashCode.Combine(Id, ModifiedAt, Files.Count);

    public override string ToString() =>
        $"Finetune {Name} ({Id}, {Model}, account {AccountId ?? "none"}, {(IsPublic ? "public" : "private")}, " +
        $"files [{string.Join(", ", Files.Select(f => $"{f.Key} {f.Value.SizeBytes} B {f.Value.Sha256[..12]}"))}], modified {ModifiedAt:O})";
}

/// <summary>A finetune ready to run, with the paths of its two files (read-only blobs; never write to them).</summary>
public sealed record ResolvedAdapter(Finetune Finetune, string ConfigPath, string WeightsPath);

/// <summary>Store limits. Defaults are Workers AI's 2024 ones (research §5.1).</summary>
public sealed record FinetuneLimits
{
    /// <summary>Largest adapter file, in bytes (100 MiB; Workers AI: "less than 100MB").</summary>
    public long MaxFileBytes { get; init; } = 100L << 20;

    /// <summary>Finetunes an account may own (Workers AI: 30). The operator's ownerless adapters do not count.</summary>
    public int MaxFinetunesPerAccount { get; init; } = 30;
}
