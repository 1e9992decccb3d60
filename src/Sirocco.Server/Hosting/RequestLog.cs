// One structured log line per API request: id, method, path, status, model, prompt and completion tokens, time to
// first token, decode speed and total time. Handlers that generate fill in a GenerationMetrics; the middleware times
// the request, sets the X-Request-Id header and writes the line when the response is done.

using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Sirocco.Engine.Scheduling;

namespace Sirocco.Server.Hosting;

/// <summary>What a generating request did, for its log line.</summary>
internal sealed class GenerationMetrics
{
    public string? Model { get; set; }

    public GenerationOutcome? Outcome { get; set; }

    public int PromptTokens { get; set; }

    /// <summary>How the generation ended if not normally: "cancelled" (client went away), "failed".</summary>
    public string? Ending { get; set; }

    public static GenerationMetrics For(HttpContext context)
    {
        if (context.Features.Get<GenerationMetrics>() is { } existing)
        {
            return existing;
        }
        var metrics = new GenerationMetrics();
        context.Features.Set(metrics);
        return metrics;
    }
}

internal static partial class RequestLog
{
    /// <summary>Adds the request id header and logs each request when it completes.</summary>
    public static RequestDelegate Middleware(RequestDelegate next, ILogger logger) => async context =>
    {
        string id = context.TraceIdentifier = Guid.NewGuid().ToString("N")[..16];
        context.Response.Headers["X-Request-Id"] = id;
        long start = Stopwatch.GetTimestamp();
        try
        {
            await next(context);
        }
        finally
        {
            double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (context.Features.Get<GenerationMetrics>() is { } metrics)
            {
                GenerationOutcome? outcome = metrics.Outcome;
                Generation(logger, id, context.Request.Method, context.Request.Path.Value ?? "", context.Response.StatusCode, metrics.Model ?? "",
                    outcome?.PromptTokens ?? metrics.PromptTokens, outcome?.CompletionTokens ?? 0,
                    Math.Round(outcome?.TimeToFirstToken.TotalMilliseconds ?? 0, 1), Math.Round(outcome?.DecodeTokensPerSecond ?? 0, 2),
                    Math.Round(ms, 1), metrics.Ending ?? (outcome is null ? "none" : outcome.Finish.ToString().ToLowerInvariant()));
            }
            else if (!context.Request.Path.StartsWithSegments("/healthz", StringComparison.Ordinal))
            {
                Request(logger, id, context.Request.Method, context.Request.Path.Value ?? "", context.Response.StatusCode, Math.Round(ms, 1));
            }
        }
    };

    [LoggerMessage(EventId = 1, Level = LogLevel.Information,
        Message = "request {RequestId} {Method} {Path} {Status} model={Model} prompt_tokens={PromptTokens} completion_tokens={CompletionTokens} " +
                  "ttft_ms={TimeToFirstTokenMs} tokens_per_s={TokensPerSecond} ms={ElapsedMs} finish={Finish}")]
    private static partial void Generation(ILogger logger, string requestId, string method, string path, int status, string model,
        int promptTokens, int completionTokens, double timeToFirstTokenMs, double tokensPerSecond, double elapsedMs, string finish);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "request {RequestId} {Method} {Path} {Status} ms={ElapsedMs}")]
    private static partial void Request(ILogger logger, string requestId, string method, string path, int status, double elapsedMs);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "request {RequestId} failed")]
    public static partial void Failed(ILogger logger, Exception exception, string requestId);
}
