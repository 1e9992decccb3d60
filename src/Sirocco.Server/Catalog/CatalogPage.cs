// A page of /ai/models/search: the items and the Cloudflare v4 `result_info` pagination block.

using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Sirocco.Server.Catalog;

/// <summary>One page of catalog items (each a <see cref="CatalogModel.Entry"/> copy) and its pagination info.</summary>
public sealed record CatalogPage(IReadOnlyList<JsonObject> Items, CatalogResultInfo ResultInfo);

/// <summary>Cloudflare's <c>result_info</c>; serializes with the wire names.</summary>
/// <param name="Page">The 1-based page asked for.</param>
/// <param name="PerPage">The page size asked for.</param>
/// <param name="Count">Items on this page (0 past the end).</param>
/// <param name="TotalCount">Items matching the filters, over all pages.</param>
public sealed record CatalogResultInfo(
    [property: JsonPropertyName("page")] int Page,
    [property: JsonPropertyName("per_page")] int PerPage,
    [property: JsonPropertyName("count")] int Count,
    [property: JsonPropertyName("total_count")] int TotalCount);
