// OpenAI chat completions and completions over the shared generation path: a whole `chat.completion` /
// `text_completion` object, or a stream of chunks (`choices[0].delta.content` / `choices[0].text`) ending with a chunk
// that carries finish_reason, then a usage chunk when stream_options.include_usage asks for it, then `data: [DONE]`.

using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Sirocco.Engine.Generation;
using Sirocco.Engine.Scheduling;
using Sirocco.Server.Apis.Common;
using Sirocco.Server.Apis.WorkersAi;
using Sirocco.Server.Catalog;
using Sirocco.Server.Finetunes;
using Sirocco.Server.Hosting;
using Sirocco.Server.Prompting;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Apis.OpenAi;

internal static class OpenAiServing
{
    public static Task ChatAsync(HttpContext context, OpenAiRequest request, ModelHost host, FinetuneStore finetunes) =>
        GenerateAsync(context, request, host, finetunes, chat: true);

    public static Task CompletionAsync(HttpContext context, OpenAiRequest request, ModelHost host, FinetuneStore finetunes) =>
        GenerateAsync(context, request, host, finetunes, chat: false);

    public static Task ListModelsAsync(HttpContext context, ModelHost host) => ApiResponses.WriteJsonAsync(context, 200, writer =>
    {
        writer.WriteStartObject();
        writer.WriteString("object", "list");
        writer.WriteStartArray("data");
        foreach (CatalogModel model in host.Catalog.Models)
        {
            WriteModel(writer, model);
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
    });

    public static Task GetModelAsync(HttpContext context, string name, ModelHost host)
    {
        CatalogModel model = host.Catalog.Find(name) ?? throw ModelNotFound(name);
        return ApiResponses.WriteJsonAsync(context, 200, writer => WriteModel(writer, model));
    }

    private static void WriteModel(Utf8JsonWriter writer, CatalogModel model)
    {
        writer.WriteStartObject();
        writer.WriteString("id", model.Name);
        writer.WriteString("object", "model");
        writer.WriteNumber("created", 0);
        writer.WriteString("owned_by", "mistral");
        writer.WriteEndObject();
    }

    private static ApiException ModelNotFound(string name) =>
        new(ErrorCodes.NoSuchModel, 404, $"The model `{name}` does not exist; this server serves @hf/mistral/mistral-7b-instruct-v0.2 and @cf/mistral/mistral-7b-instruct-v0.2-lora.");

    private static async Task GenerateAsync(HttpContext context, OpenAiRequest request, ModelHost host, FinetuneStore finetunes, bool chat)
    {
        GenerationMetrics metrics = GenerationMetrics.For(context);
        metrics.Model = request.Model;
        CatalogModel model = host.Catalog.Find(request.Model) ?? throw ModelNotFound(request.Model);
        metrics.Model = model.Name;
        if (request.Run.Tools is { Count: > 0 } && !model.SupportsTools)
        {
            throw new ApiException(ErrorCodes.BadInput, 400, $"tools: {model.Name} does not accept tools; use @hf/mistral/mistral-7b-instruct-v0.2");
        }
        PreparedGeneration prepared = host.Prepare(request.Run, model) with
        {
            Adapter = WorkersAiServing.ResolveAdapter(context, request.Run.Lora, host, finetunes),
        };
        metrics.PromptTokens = prepared.PromptIds.Length;
        string id = (chat ? "chatcmpl-" : "cmpl-") + context.TraceIdentifier;
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        GenerationStream generation = host.Start(prepared with { StopSequences = request.Stop }, context.RequestAborted);
        if (request.Stream)
        {
            await StreamAsync(context, request, generation, metrics, id, created, model.Name, chat);
            return;
        }
        GenerationOutcome outcome = await WorkersAiServing.AwaitOutcomeAsync(context, generation);
        metrics.Outcome = outcome;
        string text = outcome.Text;
        IReadOnlyList<JsonObject> toolCalls = chat && request.Run.Tools is { Count: > 0 } tools ? ToolPrompt.ParseToolCalls(text, tools) : [];
        await ApiResponses.WriteJsonAsync(context, 200, writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("id", id);
            writer.WriteString("object", chat ? "chat.completion" : "text_completion");
            writer.WriteNumber("created", created);
            writer.WriteString("model", model.Name);
            writer.WriteStartArray("choices");
            writer.WriteStartObject();
            writer.WriteNumber("index", 0);
            if (chat)
            {
                writer.WriteStartObject("message");
                writer.WriteString("role", "assistant");
                if (toolCalls.Count > 0)
                {
                    writer.WriteNull("content");
                    WriteToolCalls(writer, toolCalls);
                }
                else
                {
                    writer.WriteString("content", text);
                }
                writer.WriteEndObject();
            }
            else
            {
                writer.WriteString("text", text);
            }
            writer.WriteNull("logprobs");
            writer.WriteString("finish_reason", toolCalls.Count > 0 ? "tool_calls" : FinishReasonOf(outcome));
            writer.WriteEndObject();
            writer.WriteEndArray();
            ApiResponses.WriteUsage(writer, outcome.PromptTokens, outcome.CompletionTokens);
            writer.WriteEndObject();
        });
    }

    private static async Task StreamAsync(HttpContext context, OpenAiRequest request, GenerationStream generation,
        GenerationMetrics metrics, string id, long created, string model, bool chat)
    {
        CancellationToken aborted = context.RequestAborted;
        var sse = new SseWriter(context.Response);
        await sse.StartAsync(aborted);
        if (chat)
        {
            await sse.WriteJsonAsync(writer => WriteChunk(writer, id, created, model, chat, "", role: true, finish: null), aborted);
        }
        GenerationOutcome outcome;
        try
        {
            await foreach (string piece in generation.Text.ReadAllAsync(aborted))
            {
                await sse.WriteJsonAsync(writer => WriteChunk(writer, id, created, model, chat, piece, role: false, finish: null), aborted);
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
            metrics.Ending = "failed";
            await sse.WriteJsonAsync(writer =>
            {
                writer.WriteStartObject();
                writer.WriteStartObject("error");
                writer.WriteString("message", e is OperationCanceledException ? "The server is shutting down and cancelled this request." : "Generation failed: " + e.Message);
                writer.WriteString("type", "server_error");
                writer.WriteEndObject();
                writer.WriteEndObject();
            }, aborted);
            return;
        }
        metrics.Outcome = outcome;
        string finish = FinishReasonOf(outcome);
        await sse.WriteJsonAsync(writer => WriteChunk(writer, id, created, model, chat, null, role: false, finish: finish), aborted);
        if (request.IncludeUsage)
        {
            await sse.WriteJsonAsync(writer =>
            {
                writer.WriteStartObject();
                WriteHeader(writer, id, created, model, chat);
                writer.WriteStartArray("choices");
                writer.WriteEndArray();
                ApiResponses.WriteUsage(writer, outcome.PromptTokens, outcome.CompletionTokens);
                writer.WriteEndObject();
            }, aborted);
        }
        await sse.WriteDoneAsync(aborted);
    }

    private static void WriteChunk(Utf8JsonWriter writer, string id, long created, string model, bool chat, string? text, bool role, string? finish)
    {
        writer.WriteStartObject();
        WriteHeader(writer, id, created, model, chat);
        writer.WriteStartArray("choices");
        writer.WriteStartObject();
        writer.WriteNumber("index", 0);
        if (chat)
        {
            writer.WriteStartObject("delta");
            if (role)
            {
                writer.WriteString("role", "assistant");
            }
            if (text is not null)
            {
                writer.WriteString("content", text);
            }
            writer.WriteEndObject();
        }
        else
        {
            writer.WriteString("text", text ?? "");
        }
        writer.WriteNull("logprobs");
        if (finish is null)
        {
            writer.WriteNull("finish_reason");
        }
        else
        {
            writer.WriteString("finish_reason", finish);
        }
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static void WriteHeader(Utf8JsonWriter writer, string id, long created, string model, bool chat)
    {
        writer.WriteString("id", id);
        writer.WriteString("object", chat ? "chat.completion.chunk" : "text_completion");
        writer.WriteNumber("created", created);
        writer.WriteString("model", model);
    }

    private static void WriteToolCalls(Utf8JsonWriter writer, IReadOnlyList<JsonObject> calls)
    {
        writer.WriteStartArray("tool_calls");
        for (int i = 0; i < calls.Count; i++)
        {
            writer.WriteStartObject();
            writer.WriteString("id", $"call_{i}");
            writer.WriteString("type", "function");
            writer.WriteStartObject("function");
            writer.WriteString("name", calls[i]["name"]?.GetValue<string>() ?? "");
            // OpenAI carries arguments as a JSON string.
            writer.WriteString("arguments", calls[i]["arguments"]?.ToJsonString() ?? "{}");
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
    }

    private static string FinishReasonOf(GenerationOutcome outcome) => outcome.Finish == FinishReason.Stop ? "stop" : "length";
}
