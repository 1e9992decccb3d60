// POST /ai/run/{model}: body → validated request → prompt ids and limits → the scheduler → either one envelope with
// the whole response and usage, or a server-sent-event stream of `{"response":"…","p":"…"}` events, a usage event and
// `[DONE]`. A client that disconnects cancels its generation through RequestAborted.

using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Sirocco.Engine.Model;
using Sirocco.Engine.Scheduling;
using Sirocco.Server.Apis.Common;
using Sirocco.Server.Catalog;
using Sirocco.Server.Finetunes;
using Sirocco.Server.Hosting;
using Sirocco.Server.Prompting;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Apis.WorkersAi;

internal static class WorkersAiServing
{
    public static async Task RunAsync(HttpContext context, string modelName, ModelHost host, ServerOptions options, FinetuneStore finetunes)
    {
        GenerationMetrics metrics = GenerationMetrics.For(context);
        metrics.Model = modelName;
        CatalogModel model = host.Catalog.Find(modelName) ?? throw ApiException.NoSuchModel(modelName);
        metrics.Model = model.Name;
        byte[] body = await RequestBody.ReadAsync(context, options.MaxRequestBodyBytes);
        RunRequest request = RunRequestParser.Parse(body, model);
        PreparedGeneration prepared = host.Prepare(request, model) with
        {
            Adapter = ResolveAdapter(context, request.Lora, host, finetunes),
        };
        metrics.PromptTokens = prepared.PromptIds.Length;
        GenerationStream generation = host.Start(prepared, context.RequestAborted);
        if (request.Stream)
        {
            await StreamAsync(context, generation, metrics, options.SsePaddingMaxLength);
            return;
        }
        GenerationOutcome outcome = await AwaitOutcomeAsync(context, generation);
        metrics.Outcome = outcome;
        IReadOnlyList<JsonObject>? toolCalls = request.Tools is { Count: > 0 } tools ? ToolPrompt.ParseToolCalls(outcome.Text, tools) : null;
        await ApiResponses.WriteSuccessAsync(context, writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("response", outcome.Text);
            if (toolCalls is not null)
            {
                writer.WriteStartArray("tool_calls");
                foreach (JsonObject call in toolCalls)
                {
                    call.WriteTo(writer);
                }
                writer.WriteEndArray();
            }
            WriteUsage(writer, outcome);
            writer.WriteEndObject();
        });
    }

    /// <summary>The adapter a request's <c>lora</c> names (a finetune id or name this account may read), loaded or
    /// from the cache; null when the request names none.</summary>
    /// <exception cref="ApiException">400: unknown finetune (5006), not ready (3039), or files that do not fit the
    /// model.</exception>
    public static IProjectionAdapter? ResolveAdapter(HttpContext context, string? lora, ModelHost host, FinetuneStore finetunes)
    {
        if (lora is null)
        {
            return null;
        }
        ResolvedAdapter resolved = finetunes.ResolveForRun(Auth.ApiAuthentication.AccountOf(context), lora);
        GenerationMetrics.For(context).Adapter = resolved.Finetune.Name;
        return host.Adapters.Get(resolved);
    }

    /// <summary>Waits for the end of a generation whose text is not streamed, mapping a cancellation that did not come
    /// from the client (server shutdown) to 503.</summary>
    public static async Task<GenerationOutcome> AwaitOutcomeAsync(HttpContext context, GenerationStream generation)
    {
        try
        {
            return await generation.Completion;
        }
        catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
        {
            throw new ApiException(ErrorCodes.OutOfCapacity, 503, "The server is shutting down and cancelled this request; try again shortly.");
        }
    }

    private static void WriteUsage(Utf8JsonWriter writer, GenerationOutcome outcome) =>
        ApiResponses.WriteUsage(writer, outcome.PromptTokens, outcome.CompletionTokens);

    private static async Task StreamAsync(HttpContext context, GenerationStream generation, GenerationMetrics metrics, int paddingMaxLength)
    {
        CancellationToken aborted = context.RequestAborted;
        var sse = new SseWriter(context.Response);
        await sse.StartAsync(aborted);
        GenerationOutcome outcome;
        try
        {
            await foreach (string piece in generation.Text.ReadAllAsync(aborted))
            {
                string? padding = Padding.Next(paddingMaxLength);
                await sse.WriteJsonAsync(writer =>
                {
                    writer.WriteStartObject();
                    writer.WriteString("response", piece);
                    if (padding is not null)
                    {
                        writer.WriteString("p", padding);
                    }
                    writer.WriteEndObject();
                }, aborted);
            }
            outcome = await generation.Completion;
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            metrics.Ending = "cancelled";
            throw;
        }
        catch (Exception e)
        {
            // Headers are gone, so the error travels as a last event (every event keeps a string `response`, which
            // LangChain and older workers-ai-provider read unconditionally), and no [DONE]: clients see the stream
            // end early.
            metrics.Ending = e is OperationCanceledException ? "cancelled by shutdown" : "failed";
            string message = e is OperationCanceledException ? "The server is shutting down and cancelled this request." : "Generation failed: " + e.Message;
            await sse.WriteJsonAsync(writer =>
            {
                writer.WriteStartObject();
                writer.WriteString("response", "");
                writer.WriteStartArray("errors");
                writer.WriteStartObject();
                writer.WriteNumber("code", e is OperationCanceledException ? ErrorCodes.OutOfCapacity : ErrorHandling.InternalErrorCode);
                writer.WriteString("message", message);
                writer.WriteEndObject();
                writer.WriteEndArray();
                writer.WriteEndObject();
            }, aborted);
            return;
        }
        metrics.Outcome = outcome;
        await sse.WriteJsonAsync(writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("response", "");
            WriteUsage(writer, outcome);
            writer.WriteEndObject();
        }, aborted);
        await sse.WriteDoneAsync(aborted);
    }
}
