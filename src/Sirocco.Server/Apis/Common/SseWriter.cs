// Server-sent events on a response: headers once, then one `data: <payload>` line and a blank line per event, flushed
// at once so each piece of text reaches the client as it is generated. Workers AI's streams add a `p` field of random
// length to every text event (Cloudflare's mitigation of token-length side channels); Padding makes it.

using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Sirocco.Server.Apis.Common;

internal sealed class SseWriter
{
    private static readonly byte[] s_dataPrefix = "data: "u8.ToArray();
    private static readonly byte[] s_eventEnd = "\n\n"u8.ToArray();
    private readonly HttpResponse _response;
    private readonly System.Buffers.ArrayBufferWriter<byte> _buffer = new(256);

    public SseWriter(HttpResponse response) => _response = response;

    /// <summary>Whether the headers went out (after which errors can only be reported inside the stream).</summary>
    public bool HasStarted { get; private set; }

    /// <summary>Sends status 200 and the event-stream headers.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _response.StatusCode = StatusCodes.Status200OK;
        _response.ContentType = "text/event-stream";
        _response.Headers.CacheControl = "no-cache";
        // Proxies such as nginx buffer responses unless told not to; a buffered stream defeats streaming.
        _response.Headers["X-Accel-Buffering"] = "no";
        _response.HttpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await _response.StartAsync(cancellationToken);
        HasStarted = true;
    }

    /// <summary>Sends one event whose data is the JSON <paramref name="write"/> produces, on one line.</summary>
    public Task WriteJsonAsync(Action<Utf8JsonWriter> write, CancellationToken cancellationToken)
    {
        _buffer.ResetWrittenCount();
        _buffer.Write(s_dataPrefix);
        using (var writer = new Utf8JsonWriter(_buffer, ApiResponses.WriterOptions))
        {
            write(writer);
        }
        _buffer.Write(s_eventEnd);
        return SendAsync(cancellationToken);
    }

    /// <summary>Sends <c>data: [DONE]</c>, the end-of-stream marker every Workers AI and OpenAI client looks for.</summary>
    public Task WriteDoneAsync(CancellationToken cancellationToken)
    {
        _buffer.ResetWrittenCount();
        _buffer.Write("data: [DONE]\n\n"u8);
        return SendAsync(cancellationToken);
    }

    private async Task SendAsync(CancellationToken cancellationToken)
    {
        await _response.Body.WriteAsync(_buffer.WrittenMemory, cancellationToken);
        await _response.Body.FlushAsync(cancellationToken);
    }
}

/// <summary>The <c>p</c> padding of streamed events: a prefix, of random length, of a fixed alphabet, as in
/// Cloudflare's streams (<c>"p":"abcdefgh"</c>).</summary>
internal static class Padding
{
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

    /// <summary>A string of 1 … <paramref name="maxLength"/> characters, or null when padding is off (0). The length
    /// comes from a cryptographic generator so an observer cannot predict and subtract it.</summary>
    public static string? Next(int maxLength)
    {
        if (maxLength <= 0)
        {
            return null;
        }
        int length = RandomNumberGenerator.GetInt32(1, maxLength + 1);
        var text = new StringBuilder(length);
        for (int i = 0; i < length; i++)
        {
            text.Append(Alphabet[i % Alphabet.Length]);
        }
        return text.ToString();
    }
}
