// The one mapper from failures to HTTP answers. ApiException carries Cloudflare's code and the status; anything
// unexpected is logged with the request id and answered 500 without internals. /v1 routes get OpenAI's error shape,
// the rest Cloudflare's envelope. Errors after a stream started are the streaming handler's business.

using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Sirocco.Server.Hosting;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Apis.Common;

internal static class ErrorHandling
{
    /// <summary>Cloudflare has no published code for an internal failure; 3000 is ours (documented in docs/API.md).</summary>
    public const int InternalErrorCode = 3000;

    public static RequestDelegate Middleware(RequestDelegate next, ILogger logger) => async context =>
    {
        try
        {
            await next(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nobody is left to answer. 499 is nginx's "client closed request", for the log
            // (a stream that already started keeps its 200).
            if (!context.Response.HasStarted)
            {
                context.Response.StatusCode = 499;
            }
        }
        catch (ApiException e) when (!context.Response.HasStarted)
        {
            if (e.RetryAfter is TimeSpan retry)
            {
                int seconds = Math.Max(1, (int)Math.Ceiling(retry.TotalSeconds));
                context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                context.Response.Headers["retry-after-ms"] = ((long)Math.Max(1, retry.TotalMilliseconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            await WriteAsync(context, e.Status, e.Code, e.Message);
        }
        catch (BadHttpRequestException e) when (!context.Response.HasStarted)
        {
            int code = e.StatusCode == StatusCodes.Status413PayloadTooLarge ? ErrorCodes.RequestTooLarge : ErrorCodes.BadInput;
            await WriteAsync(context, e.StatusCode, code, e.Message);
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            RequestLog.Failed(logger, e, context.TraceIdentifier);
            await WriteAsync(context, StatusCodes.Status500InternalServerError, InternalErrorCode,
                $"Internal error (request {context.TraceIdentifier}); the server log has the details.");
        }
    };

    /// <summary>Whether <paramref name="context"/> is an OpenAI-compatible route (errors in OpenAI's shape).</summary>
    public static bool IsOpenAiRoute(HttpContext context)
    {
        string path = context.Request.Path.Value ?? "";
        return path.StartsWith("/v1/", StringComparison.Ordinal) || path.Contains("/ai/v1/", StringComparison.Ordinal);
    }

    public static Task WriteAsync(HttpContext context, int status, int code, string message)
    {
        if (!IsOpenAiRoute(context))
        {
            return ApiResponses.WriteErrorAsync(context, status, code, message);
        }
        string type = status switch
        {
            401 => "authentication_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            >= 500 => "server_error",
            _ => "invalid_request_error",
        };
        return ApiResponses.WriteOpenAiErrorAsync(context, status, message, type, code.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }
}
