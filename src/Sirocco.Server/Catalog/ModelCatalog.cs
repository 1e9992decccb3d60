// The models this server answers for: the two Mistral-7B-Instruct-v0.2 entries of Workers AI's catalog, embedded as
// resources (Sirocco.Server.Catalog.<file>.json). The HTTP layer resolves /ai/run/{model} with Find and serves
// /ai/models/search with Search.

using System.Text.Json.Nodes;

namespace Sirocco.Server.Catalog;

/// <summary>The model catalog. Immutable and thread-safe.</summary>
public sealed class ModelCatalog
{
    /// <summary>Name of the LoRA-capable @cf model.</summary>
    public const string LoraModelName = "@cf/mistral/mistral-7b-instruct-v0.2-lora";

    /// <summary>Name of the TGI-hosted @hf model.</summary>
    public const string HfModelName = "@hf/mistral/mistral-7b-instruct-v0.2";

    /// <summary>The name the Workers AI LoRA docs use in their examples (binding call and finetune list); the catalog
    /// itself says <see cref="LoraModelName"/>. Accepted as an alias of it.</summary>
    public const string LoraModelAlias = "@cf/mistralai/mistral-7b-instruct-v0.2-lora";

    private static readonly string[] s_resources =
    [
        "Sirocco.Server.Catalog.mistral-7b-instruct-v0.2-lora.json",
        "Sirocco.Server.Catalog.mistral-7b-instruct-v0.2.json",
    ];

    private readonly Dictionary<string, CatalogModel> _byName;

    private ModelCatalog(IReadOnlyList<CatalogModel> models)
    {
        Models = models;
        _byName = new Dictionary<string, CatalogModel>(StringComparer.Ordinal);
        foreach (var model in models)
        {
            _byName.Add(model.Name, model);
        }
        if (_byName.TryGetValue(LoraModelName, out var lora))
        {
            _byName.TryAdd(LoraModelAlias, lora);
        }
    }

    /// <summary>The models in catalog order (the LoRA model, then the @hf one).</summary>
    public IReadOnlyList<CatalogModel> Models { get; }

    /// <summary>Loads both seed entries from the assembly's resources.</summary>
    /// <param name="loraContextWindow">The LoRA model's context window in tokens (prompt plus <c>max_tokens</c>); the
    /// server passes the smaller of its configured context and the model's. The @hf model's window is its catalog
    /// <c>max_total_tokens</c> (4096), whatever this says.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="loraContextWindow"/> is not positive.</exception>
    public static ModelCatalog Load(int loraContextWindow)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(loraContextWindow);
        var assembly = typeof(ModelCatalog).Assembly;
        var models = new List<CatalogModel>(s_resources.Length);
        foreach (string resource in s_resources)
        {
            using var stream = assembly.GetManifestResourceStream(resource)
                ?? throw new InvalidOperationException($"the catalog resource {resource} is missing from {assembly.GetName().Name}");
            var json = JsonNode.Parse(stream) as JsonObject
                ?? throw new InvalidOperationException($"the catalog resource {resource} is not a JSON object");
            models.Add(new CatalogModel(json, loraContextWindow));
        }
        return new ModelCatalog(models);
    }

    /// <summary>The model with exactly this name (or the documented alias of the LoRA model), or null.</summary>
    public CatalogModel? Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.GetValueOrDefault(name);
    }

    /// <summary>One page of the models matching every given filter, in catalog order.</summary>
    /// <param name="search">Case-insensitive substring of the name or the description; null or empty matches all.</param>
    /// <param name="task">The task's name (case-insensitive, e.g. "text generation") or its id; null or empty matches all.</param>
    /// <param name="author">The author (case-insensitive, e.g. "mistral"); null or empty matches all.</param>
    /// <param name="source">The catalog source number (1 or 2); null matches all.</param>
    /// <param name="page">1-based page number. A page past the end is empty (clients page until an empty page).</param>
    /// <param name="perPage">Items per page.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="page"/> or <paramref name="perPage"/> is below 1
    /// (the HTTP layer validates query parameters before calling).</exception>
    public CatalogPage Search(string? search, string? task, string? author, int? source, int page, int perPage)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(page, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(perPage, 1);
        var matches = Models.Where(m =>
            (string.IsNullOrEmpty(search)
                || m.Name.Contains(search, StringComparison.OrdinalIgnoreCase)
                || m.Description.Contains(search, StringComparison.OrdinalIgnoreCase))
            && (string.IsNullOrEmpty(task)
                || string.Equals(m.TaskName, task, StringComparison.OrdinalIgnoreCase)
                || string.Equals(m.TaskId, task, StringComparison.OrdinalIgnoreCase))
            && (string.IsNullOrEmpty(author) || string.Equals(m.Author, author, StringComparison.OrdinalIgnoreCase))
            && (source is null || m.Source == source)).ToList();

        long skip = (long)(page - 1) * perPage;
        var items = skip >= matches.Count
            ? []
            : matches.Skip((int)skip).Take(perPage).Select(m => m.Entry).ToList();
        return new CatalogPage(items, new CatalogResultInfo(page, perPage, items.Count, matches.Count));
    }
}
