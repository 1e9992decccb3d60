// OpenAI-compatible routes: POST chat/completions and completions, GET models, under `/v1` (what OpenAI SDKs use with
// base URL http://host:port/v1) and under `/accounts/{account_id}/ai/v1` (Cloudflare's OpenAI-compatible base URL),
// the latter also below `/client/v4`.

using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Sirocco.Server.Apis.Common;
using Sirocco.Server.Auth;
using Sirocco.Server.Finetunes;
using Sirocco.Server.Hosting;

namespace Sirocco.Server.Apis.OpenAi;

internal static class OpenAiEndpoints
{
    /// <summary>Maps <c>{prefix}/accounts/{account_id}/ai/v1/…</c>.</summary>
    public static void MapAccountRoutes(IEndpointRouteBuilder routes, string prefix, ApiTokens tokens)
    {
        RouteGroupBuilder group = routes.MapGroup(prefix + "/accounts/{account_id}/ai/v1");
        group.AddEndpointFilterFactory((_, next) => ApiAuthentication.AccountRoute(tokens, next));
        MapRoutes(group);
    }

    /// <summary>Maps <c>/v1/…</c>.</summary>
    public static void MapRootRoutes(IEndpointRouteBuilder routes, ApiTokens tokens)
    {
        RouteGroupBuilder group = routes.MapGroup("/v1");
        group.AddEndpointFilterFactory((_, next) => ApiAuthentication.OpenAiRoute(tokens, next));
        MapRoutes(group);
    }

    private static void MapRoutes(RouteGroupBuilder group)
    {
        group.MapPost("/chat/completions", async (HttpContext context, ModelHost host, ServerOptions options, FinetuneStore finetunes) =>
            await OpenAiServing.ChatAsync(context, OpenAiProtocol.ParseChat(await RequestBody.ReadAsync(context, options.MaxRequestBodyBytes)), host, finetunes));
        group.MapPost("/completions", async (HttpContext context, ModelHost host, ServerOptions options, FinetuneStore finetunes) =>
            await OpenAiServing.CompletionAsync(context, OpenAiProtocol.ParseCompletion(await RequestBody.ReadAsync(context, options.MaxRequestBodyBytes)), host, finetunes));
        group.MapGet("/models", OpenAiServing.ListModelsAsync);
        group.MapGet("/models/{**model}", (HttpContext context, string model, ModelHost host) =>
            OpenAiServing.GetModelAsync(context, Uri.UnescapeDataString(model), host));
    }
}
