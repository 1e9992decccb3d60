// Routes of Cloudflare's finetunes API (research §5.2, §5.3), mapped under a prefix like the other Workers AI routes
// (the server maps them under both `/client/v4` and the root) behind the same account check: create, upload an
// asset, list the account's, list the public ones, delete. Paths are accepted with and without a trailing slash
// (the SDKs and wrangler send none, the docs' curl examples one).

using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sirocco.Server.Auth;
using Sirocco.Server.Catalog;
using Sirocco.Server.Finetunes;

namespace Sirocco.Server.Apis.Finetunes;

internal static class FinetunesEndpoints
{
    /// <summary>Registers the adapter store, opened when the server starts (so a data directory that cannot be used
    /// stops it then, not at the first request; building the app touches no disk), and, unless one is registered
    /// already, the basic <see cref="JsonConfigValidator"/>.</summary>
    public static void AddServices(IServiceCollection services, ServerOptions options, ModelCatalog catalog)
    {
        services.TryAddSingleton<IAdapterValidator>(new JsonConfigValidator(options.MaxLoraRank));
        services.AddSingleton(provider => new FinetuneStore(
            options.DataDirectory ?? FinetuneStore.DefaultDataDirectory(),
            provider.GetRequiredService<IAdapterValidator>(),
            catalog,
            new FinetuneLimits { MaxFileBytes = options.MaxAdapterFileBytes, MaxFinetunesPerAccount = options.MaxFinetunesPerAccount },
            provider.GetRequiredService<ILoggerFactory>().CreateLogger<FinetuneStore>()));
        services.AddHostedService<OpenStoreAtStartup>();
    }

    public static void Map(IEndpointRouteBuilder routes, string prefix, ApiTokens tokens)
    {
        RouteGroupBuilder group = routes.MapGroup(prefix + "/accounts/{account_id}/ai/finetunes");
        group.AddEndpointFilterFactory((_, next) => ApiAuthentication.AccountRoute(tokens, next));
        // Routing matches a path with a trailing slash to the same template (mapping both would be ambiguous).
        group.MapPost("", FinetunesServing.CreateAsync);
        group.MapGet("", FinetunesServing.ListAsync);
        group.MapGet("/public", FinetunesServing.ListPublicAsync);
        group.MapPost("/{finetune}/finetune-assets", FinetunesServing.UploadAsync);
        group.MapDelete("/{finetune}", FinetunesServing.DeleteAsync);
    }

    /// <summary>Resolving the store (in the constructor) opens it: creates the directories and recovers.</summary>
    private sealed class OpenStoreAtStartup(FinetuneStore store) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            GC.KeepAlive(store);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
