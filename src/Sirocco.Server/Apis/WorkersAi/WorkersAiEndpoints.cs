// Routes of Cloudflare's Workers AI REST API, mapped under a prefix (the server maps them under both `/client/v4`,
// Cloudflare's base path, and the root): run a model, search the catalog, fetch a model's schemas. The model name in
// /ai/run/{model} may come raw (`@cf/mistral/…`) or with its slashes percent-encoded (`@cf%2Fmistral%2F…`, as the
// TypeScript SDK v7 sends it).

using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Sirocco.Server.Apis.Common;
using Sirocco.Server.Auth;
using Sirocco.Server.Catalog;
using Sirocco.Server.Finetunes;
using Sirocco.Server.Hosting;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Apis.WorkersAi;

internal static class WorkersAiEndpoints
{
    /// <summary>Largest per_page /models/search accepts.</summary>
    public const int MaxPerPage = 1000;

    public static void Map(IEndpointRouteBuilder routes, string prefix, ApiTokens tokens)
    {
        RouteGroupBuilder group = routes.MapGroup(prefix + "/accounts/{account_id}/ai");
        group.AddEndpointFilterFactory((_, next) => ApiAuthentication.AccountRoute(tokens, next));
        group.MapPost("/run/{**model}", (HttpContext context, string model, ModelHost host, ServerOptions options, FinetuneStore finetunes) =>
            WorkersAiServing.RunAsync(context, Uri.UnescapeDataString(model), host, options, finetunes));
        group.MapGet("/models/search", Search);
        group.MapGet("/models/schema", Schema);
    }

    private static async Task Search(HttpContext context, ModelHost host)
    {
        IQueryCollection query = context.Request.Query;
        int page = PositiveInt(query, "page", 1, int.MaxValue);
        int perPage = PositiveInt(query, "per_page", 100, MaxPerPage);
        int? source = query.ContainsKey("source") ? PositiveInt(query, "source", 0, int.MaxValue) : null;
        CatalogPage found = host.Catalog.Search(query["search"], query["task"], query["author"], source, page, perPage);
        await ApiResponses.WriteSuccessAsync(context,
            writer =>
            {
                writer.WriteStartArray();
                foreach (var item in found.Items)
                {
                    item.WriteTo(writer);
                }
                writer.WriteEndArray();
            },
            writer =>
            {
                writer.WriteStartObject("result_info");
                writer.WriteNumber("page", found.ResultInfo.Page);
                writer.WriteNumber("per_page", found.ResultInfo.PerPage);
                writer.WriteNumber("count", found.ResultInfo.Count);
                writer.WriteNumber("total_count", found.ResultInfo.TotalCount);
                writer.WriteEndObject();
            });
    }

    private static async Task Schema(HttpContext context, ModelHost host)
    {
        string? name = context.Request.Query["model"];
        if (string.IsNullOrEmpty(name))
        {
            throw new ApiException(ErrorCodes.BadInput, 400, "Bad input: the query parameter `model` is required (e.g. ?model=@hf/mistral/mistral-7b-instruct-v0.2)");
        }
        CatalogModel model = host.Catalog.Find(name) ?? throw ApiException.NoSuchModel(name);
        await ApiResponses.WriteSuccessAsync(context, writer =>
        {
            writer.WriteStartObject();
            writer.WritePropertyName("input");
            model.InputSchema.WriteTo(writer);
            writer.WritePropertyName("output");
            model.OutputSchema.WriteTo(writer);
            writer.WriteEndObject();
        });
    }

    

    private static int PositiveInt(IQueryCollection query, string name, int fallback, int max)
    {
        string? text = query[name];
        if (string.IsNullOrEmpty(text))
        {
            return fallback;
        }
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int value) || value < 1 || value > max)
        {
            throw new ApiException(ErrorCodes.BadInput, 400, $"Bad input: query parameter `{name}` is \"{Truncate(text)}\"; expected an integer from 1 to {max}");
        }
        return value;
    }

    private static string Truncate(string text) => text.Length <= 40 ? text : text[..40] + "…";
}
