// Builds the web application: Kestrel on the configured address, the request log and error mapping, and the API
// groups — Workers AI (with finetunes) under both `/client/v4` and the root, OpenAI-compatible under `/v1` and
// `/accounts/{account_id}/ai/v1` — plus /healthz. `sirocco serve` runs it; tests start it on 127.0.0.1:0.

using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sirocco.Engine.Lora;
using Sirocco.Server.Apis.Common;
using Sirocco.Server.Apis.Finetunes;
using Sirocco.Server.Apis.OpenAi;
using Sirocco.Server.Apis.WorkersAi;
using Sirocco.Server.Auth;
using Sirocco.Server.Finetunes;
using Sirocco.Server.Hosting;

namespace Sirocco.Server;

/// <summary>Creates the Sirocco web application over a <see cref="ModelHost"/>.</summary>
public static class SiroccoServer
{
    /// <summary>Builds (does not start) the application. The caller keeps ownership of <paramref name="host"/>.</summary>
    /// <param name="options">Server policy; validated here.</param>
    /// <param name="host">The loaded model.</param>
    /// <param name="configureLogging">Replaces the default console logging (tests capture logs with it).</param>
    /// <exception cref="ArgumentException">Invalid options, or a non-loopback address without tokens and without
    /// <see cref="ServerOptions.AllowUnauthenticatedRemote"/>.</exception>
    public static WebApplication Build(ServerOptions options, ModelHost host, Action<ILoggingBuilder>? configureLogging = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(host);
        IReadOnlyList<string> problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", problems), nameof(options));
        }
        IPAddress? address = ParseHost(options.Host);
        bool loopback = address is null || IPAddress.IsLoopback(address);
        if (!loopback && options.Tokens.Count == 0 && !options.AllowUnauthenticatedRemote)
        {
            throw new ArgumentException(
                $"refusing to listen on {options.Host} without API tokens: anyone who can reach it could use the model. " +
                $"Configure tokens (--tokens-file or {ApiTokens.EnvironmentVariable}), listen on 127.0.0.1, or pass --allow-unauthenticated.",
                nameof(options));
        }

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        if (configureLogging is not null)
        {
            configureLogging(builder.Logging);
        }
        else
        {
            builder.Logging.AddSimpleConsole(console =>
            {
                console.SingleLine = true;
                console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                console.UseUtcTimestamp = true;
            });
        }
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            kestrel.AddServerHeader = false;
            if (address is null)
            {
                kestrel.ListenLocalhost(options.Port);
            }
            else
            {
                kestrel.Listen(address, options.Port);
            }
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.ShutdownGrace + TimeSpan.FromSeconds(5));
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(host);
        // Uploads are checked by loading them with the engine against the served model (before the basic validator
        // FinetunesEndpoints would otherwise register).
        builder.Services.AddSingleton<IAdapterValidator>(new EngineAdapterValidator(host.Weights, new LoraLimits(options.MaxLoraRank, options.MaxAdapterFileBytes)));
        FinetunesEndpoints.AddServices(builder.Services, options, host.Catalog);
        var tokens = new ApiTokens(options.Tokens);

        WebApplication app = builder.Build();
        ILogger logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Sirocco.Server");
        app.Use(next => RequestLog.Middleware(next, logger));
        app.Use(next => ErrorHandling.Middleware(next, logger));

        app.MapGet("/healthz", (HttpContext context) => ApiResponses.WriteJsonAsync(context, 200, writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("status", "ok");
            writer.WriteString("model", host.Description);
            writer.WriteNumber("active_requests", host.Scheduler.ActiveCount);
            writer.WriteNumber("queued_requests", host.Scheduler.QueuedCount);
            writer.WriteEndObject();
        }));
        foreach (string prefix in (string[])["", "/client/v4"])
        {
            WorkersAiEndpoints.Map(app, prefix, tokens);
            FinetunesEndpoints.Map(app, prefix, tokens);
            OpenAiEndpoints.MapAccountRoutes(app, prefix, tokens);
        }
        OpenAiEndpoints.MapRootRoutes(app, tokens);
        app.MapFallback((HttpContext context) => ErrorHandling.WriteAsync(context, StatusCodes.Status404NotFound, 7000,
            $"No route for that URI: {context.Request.Method} {context.Request.Path}"));

        // Shutdown: stop admitting at once, let running requests finish for the grace period, then cancel the rest, so
        // Kestrel's drain finds every request answered.
        app.Lifetime.ApplicationStopping.Register(() => _ = host.Scheduler.ShutdownAsync(options.ShutdownGrace));
        return app;
    }

    /// <summary>The address to bind, or null for <c>localhost</c> (both loopback families).</summary>
    private static IPAddress? ParseHost(string host)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        if (IPAddress.TryParse(host, out IPAddress? address))
        {
            return address;
        }
        throw new ArgumentException($"--host {host}: use an IP address (127.0.0.1, 0.0.0.0, ::) or localhost", nameof(host));
    }
}
