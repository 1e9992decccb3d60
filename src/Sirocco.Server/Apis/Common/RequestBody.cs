// Reads a request body whole, up to the configured size, whatever its Content-Type (Cloudflare's curl examples send
// JSON with curl's default form content type). Too large answers 413 with Cloudflare's code 3006.

using Microsoft.AspNetCore.Http;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Apis.Common;

internal static class RequestBody
{
    /// <summary>The body's bytes.</summary>
    /// <exception cref="ApiException">413/3006 when it is longer than <paramref name="limit"/>.</exception>
    public static async Task<byte[]> ReadAsync(HttpContext context, long limit)
    {
        long? declared = context.Request.ContentLength;
        if (declared > limit)
        {
            throw TooLarge(declared.Value, limit);
        }
        using var buffer = new MemoryStream(declared is > 0 ? (int)declared.Value : 1024);
        byte[] chunk = new byte[16 * 1024];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                throw TooLarge(buffer.Length + read, limit);
            }
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    private static ApiException TooLarge(long size, long limit) =>
        new(ErrorCodes.RequestTooLarge, StatusCodes.Status413PayloadTooLarge,
            $"Request is too large: the body is at least {size} bytes; this server accepts up to {limit}.");
}
