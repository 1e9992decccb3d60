// Small HTTP helpers for the endpoint tests: post a body as given (with or without a content type), read the answer as
// JSON, and parse server-sent-event streams into their data lines.

using System.Net;
using System.Text;
using System.Text.Json;

namespace Sirocco.Server.Tests.Http;

internal sealed record ApiAnswer(HttpStatusCode Status, JsonElement Json, string Body, HttpResponseMessage Response)
{
    public JsonElement Result => Json.GetProperty("result");

    public int ErrorCode => Json.GetProperty("errors")[0].GetProperty("code").GetInt32();

    public string ErrorMessage => Json.GetProperty("errors")[0].GetProperty("message").GetString()!;
}

internal static class Api
{
    public const string Hf = "@hf/mistral/mistral-7b-instruct-v0.2";
    public const string Lora = "@cf/mistral/mistral-7b-instruct-v0.2-lora";

    public static string RunPath(string model, string account = "test-account", string prefix = "/client/v4") =>
        $"{prefix}/accounts/{account}/ai/run/{model}";

    /// <summary>POSTs <paramref name="body"/> as is; <paramref name="contentType"/> null sends curl's default
    /// form type, the way Cloudflare's curl examples post JSON.</summary>
    public static async Task<ApiAnswer> PostAsync(HttpClient client, string path, string body, string? contentType = "application/json",
        string? bearer = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = new StringContent(body, Encoding.UTF8, contentType ?? "application/x-www-form-urlencoded"),
        };
        if (bearer is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer);
        }
        HttpResponseMessage response = await client.SendAsync(request);
        return await ReadAsync(response);
    }

    public static async Task<ApiAnswer> GetAsync(HttpClient client, string path, string? bearer = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (bearer is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer);
        }
        return await ReadAsync(await client.SendAsync(request));
    }

    /// <summary>Sends any method with any content (multipart uploads, DELETE).</summary>
    public static async Task<ApiAnswer> SendAsync(HttpClient client, HttpMethod method, string path, HttpContent? content = null, string? bearer = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        if (bearer is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer);
        }
        return await ReadAsync(await client.SendAsync(request));
    }

    private static async Task<ApiAnswer> ReadAsync(HttpResponseMessage response)
    {
        string text = await response.Content.ReadAsStringAsync();
        JsonElement json = text.Length > 0 && (text[0] == '{' || text[0] == '[') ? JsonDocument.Parse(text).RootElement.Clone() : default;
        return new ApiAnswer(response.StatusCode, json, text, response);
    }

    /// <summary>The data payloads of an SSE body, checking the framing: every event is exactly one `data: ` line
    /// followed by a blank line.</summary>
    public static List<string> SseData(string body)
    {
        var events = new List<string>();
        string[] blocks = body.Split("\n\n");
        Assert.Equal("", blocks[^1]);
        foreach (string block in blocks[..^1])
        {
            Assert.StartsWith("data: ", block, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', block);
            events.Add(block["data: ".Length..]);
        }
        return events;
    }
}
