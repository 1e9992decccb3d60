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

    /// <summary>The finetune name of the LoRA adapter the request ran with, if any.</summary>
    public string? Adapter { get; set; }

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
            Write(logger, context, id, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
    };

    private static void Write(ILogger logger, HttpContext context, string id, double elapsedMs)
    {
        if (!logger.IsEnabled(LogLevel.Information))
        {
            return;
        }
        string method = context.Request.Method;
        string path = context.Request.Path.Value ?? "";
        int status = context.Response.StatusCode;
        double ms = Math.Round(elapsedMs, 1);
        if (context.Features.Get<GenerationMetrics>() is { } metrics)
        {
            GenerationOutcome? outcome = metrics.Outcome;
            int promptTokens = outcome?.PromptTokens ?? metrics.PromptTokens;
            int completionTokens = outcome?.CompletionTokens ?? 0;
            double ttft = Math.Round(outcome?.TimeToFirstToken.TotalMilliseconds ?? 0, 1);
            double speed = Math.Round(outcome?.DecodeTokensPerSecond ?? 0, 2);
            string finish = metrics.Ending ?? (outcome is null ? "none" : outcome.Finish.ToString().ToLowerInvariant());
            string model = metrics.Adapter is null ? metrics.Model ?? "" : $"{metrics.Model} lora={metrics.Adapter}";
            Generation(logger, id, method, path, status, model, promptTokens, completionTokens, ttft, speed, ms, finish);
        }
        else if (!context.Request.Path.StartsWithSegments("/healthz", StringComparison.Ordinal))
        {
            Request(logger, id, method, path, status, ms);
        }
    }

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
