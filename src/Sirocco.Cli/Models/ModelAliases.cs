// Short names for hub references. The built-in table holds the default model, `mistral-7b-instruct-v0.2`, which is what
// `sirocco serve` runs when no --model is given; SIROCCO_MODEL_ALIASES adds entries or replaces them (tests point the
// default alias at a tiny model on a local fake hub this way).

namespace Sirocco.Cli.Models;

/// <summary>Alias name → hub reference, case-insensitive.</summary>
internal sealed class ModelAliases
{
    /// <summary>The model `sirocco serve` uses when none is given.</summary>
    public const string DefaultName = "mistral-7b-instruct-v0.2";

    /// <summary>TheBloke's Q4_K_M GGUF of Mistral-7B-Instruct-v0.2: mistral-7b-instruct-v0.2.Q4_K_M.gguf,
    /// 4,368,439,584 bytes (4.37 GB), sha256 3e0039fd…0ccf9 on the hub.</summary>
    public const string DefaultTarget = "TheBloke/Mistral-7B-Instruct-v0.2-GGUF:Q4_K_M";

    /// <summary>The default model's download size in bytes, for messages written before the hub is asked.</summary>
    public const long DefaultDownloadBytes = 4_368_439_584;

    /// <summary>Extra or replacement aliases: <c>name=owner/repo[:QUANT]</c> entries separated by ';' or ','.</summary>
    public const string EnvironmentVariable = "SIROCCO_MODEL_ALIASES";

    private readonly Dictionary<string, HubModelReference> _aliases = new(StringComparer.OrdinalIgnoreCase);

    private ModelAliases()
    {
        Add(DefaultName, DefaultTarget, "built-in alias");
    }

    /// <summary>The built-in table only.</summary>
    public static ModelAliases BuiltIn() => new();

    /// <summary>The built-in table with the entries of <see cref="EnvironmentVariable"/> applied on top.</summary>
    /// <exception cref="ModelStoreException">An entry is malformed.</exception>
    public static ModelAliases FromEnvironment() => WithOverrides(Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary>The built-in table with <paramref name="overrides"/> (the variable's syntax) applied on top.</summary>
    /// <exception cref="ModelStoreException">An entry is malformed.</exception>
    public static ModelAliases WithOverrides(string? overrides)
    {
        var aliases = new ModelAliases();
        foreach (string entry in (overrides ?? "").Split([';', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int equals = entry.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new ModelStoreException($"{EnvironmentVariable}: '{entry}' is not name=owner/repo[:QUANT]");
            }
            aliases.Add(entry[..equals].Trim(), entry[(equals + 1)..].Trim(), EnvironmentVariable);
        }
        return aliases;
    }

    /// <summary>The reference <paramref name="name"/> stands for, or null.</summary>
    public HubModelReference? Find(string name) => _aliases.GetValueOrDefault(name);

    /// <summary>The aliases that stand for exactly <paramref name="reference"/>.</summary>
    public IEnumerable<string> NamesFor(HubModelReference reference) =>
        _aliases.Where(a => a.Value.SameModel(reference)).Select(a => a.Key).Order(StringComparer.Ordinal);

    private void Add(string name, string target, string source)
    {
        if (name.Length == 0 || name.Contains('/', StringComparison.Ordinal) || name.Contains(':', StringComparison.Ordinal))
        {
            throw new ModelStoreException($"{source}: alias '{name}' must be a plain name (no '/' or ':')");
        }
        _aliases[name] = HubModelReference.TryParse(target, out var reference)
            ? reference
            : throw new ModelStoreException($"{source}: alias {name}={target}: the target is not owner/repo[@revision][:QUANT]");
    }
}
