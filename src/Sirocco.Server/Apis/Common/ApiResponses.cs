// Writes the bodies every API route answers with: Cloudflare's envelope ({"result","success","errors","messages"}) for
// successes and errors, and the OpenAI error shape for the /v1 routes. One place maps an error to status and body.

using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Sirocco.Server.Apis.Common;

internal static class ApiResponses
{
    /// <summary>JSON writer settings for every body: UTF-8 text as is (no \uXXXX for non-ASCII or for &lt; &gt; &amp;),
    /// since these are API bodies, never embedded in HTML.</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Serializer settings matching <see cref="WriterOptions"/>.</summary>
    public static readonly JsonSerializerOptions SerializerOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes <c>{"result":…,"success":true,"errors":[],"messages":[]}</c> with status 200.</summary>
    public static Task WriteSuccessAsync(HttpContext context, Action<Utf8JsonWriter> writeResult, Action<Utf8JsonWriter>? writeExtra = null)
    {
        return WriteJsonAsync(context, StatusCodes.Status200OK, writer =>
        {
            writer.WriteStartObject();
            writer.WritePropertyName("result");
            writeResult(writer);
            writer.WriteBoolean("success", true);
            writer.WriteStartArray("errors");
            writer.WriteEndArray();
            writer.WriteStartArray("messages");
            writer.WriteEndArray();
            writeExtra?.Invoke(writer);
            writer.WriteEndObject();
        });
    }

    /// <summary>Writes <c>{"result":null,"success":false,"errors":[{"code":N,"message":"…"}],"messages":[]}</c>.</summary>
    public static Task WriteErrorAsync(HttpContext context, int status, int code, string message)
    {
        return WriteJsonAsync(context, status, writer =>
        {
            writer.WriteStartObject();
            writer.WriteNull("result");
            writer.WriteBoolean("success", false);
            writer.WriteStartArray("errors");
            writer.WriteStartObject();
            writer.WriteNumber("code", code);
            writer.WriteString("message", message);
            writer.WriteEndObject();
            writer.WriteEndArray();
            writer.WriteStartArray("messages");
            writer.WriteEndArray();
            writer.WriteEndObject();
        });
    }

    /// <summary>Writes OpenAI's <c>{"error":{"message","type","param","code"}}</c> (what the OpenAI SDKs parse).</summary>
    public static Task WriteOpenAiErrorAsync(HttpContext context, int status, string message, string type, string? code, string? param = null)
    {
        return WriteJsonAsync(context, status, writer =>
        {
            writer.WriteStartObject();
            writer.WriteStartObject("error");
            writer.WriteString("message", message);
            writer.WriteString("type", type);
            WriteStringOrNull(writer, "param", param);
            WriteStringOrNull(writer, "code", code);
            writer.WriteEndObject();
            writer.WriteEndObject();
        });
    }

    /// <summary>Writes a JSON body with <paramref name="status"/>.</summary>
    public static async Task WriteJsonAsync(HttpContext context, int status, Action<Utf8JsonWriter> write)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(writer);
        }
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.ContentLength = buffer.WrittenCount;
        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }

    /// <summary>Writes <c>"usage":{"prompt_tokens","completion_tokens","total_tokens"}</c>, the shape both the Workers AI
    /// and the OpenAI answers use.</summary>
    public static void WriteUsage(Utf8JsonWriter writer, int promptTokens, int completionTokens)
    {
        writer.WriteStartObject("usage");
        writer.WriteNumber("prompt_tokens", promptTokens);
        writer.WriteNumber("completion_tokens", completionTokens);
        writer.WriteNumber("total_tokens", promptTokens + completionTokens);
        writer.WriteEndObject();
    }

    private static void WriteStringOrNull(Utf8JsonWriter writer, string name, string? value)
    {
        if (value is null)
        {
            writer.WriteNull(name);
        }
        else
        {
            writer.WriteString(name, value);
        }
    }
}
