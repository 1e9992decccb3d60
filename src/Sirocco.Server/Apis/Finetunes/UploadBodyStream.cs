// Wraps the request body of an asset upload so that a failure to read it is told apart from a failure of the store:
// a client that went away becomes a cancellation (the request log shows 499), a body over Kestrel's limit 413/3006,
// and a body that ends early or is not valid multipart 400/5006. Errors writing to disk stay what they are (500).

using Microsoft.AspNetCore.Http;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Apis.Finetunes;

internal sealed class UploadBodyStream(Stream inner, HttpContext context) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            return await inner.ReadAsync(buffer, cancellationToken);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or BadHttpRequestException)
        {
            throw Translate(context, e);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <summary>The exception to throw for a failure reading the upload (the body, or the multipart framing in it).</summary>
    public static Exception Translate(HttpContext context, Exception e)
    {
        if (context.RequestAborted.IsCancellationRequested)
        {
            return new OperationCanceledException("the client went away during the upload", e, context.RequestAborted);
        }
        if (e is BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge })
        {
            return new ApiException(ErrorCodes.RequestTooLarge, StatusCodes.Status413PayloadTooLarge, $"Request is too large: {e.Message}");
        }
        return ApiException.BadInput($"Bad input: the multipart/form-data body is malformed or ended early: {e.Message}");
    }
}
