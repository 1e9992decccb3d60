// The finetunes API's handlers: request → FinetuneStore → Cloudflare envelope. Uploads stream the multipart `file`
// part straight to the store (MultipartReader, no form buffering), checking `file_name` before the bytes when it
// comes first, as curl and wrangler send it. Every finetune is looked up within the caller's account.

using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;
using Sirocco.Server.Apis.Common;
using Sirocco.Server.Auth;
using Sirocco.Server.Finetunes;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Apis.Finetunes;

internal static class FinetunesServing
{
    /// <summary>Room for the multipart framing and the small fields around the file (Kestrel's body limit for an
    /// upload is the file limit plus this).</summary>
    public const long MultipartOverheadBytes = 1L << 20;

    /// <summary>Longest value of the <c>file_name</c> field read.</summary>
    private const int MaxFieldBytes = 1024;

    /// <summary>Largest <c>limit</c> of GET /finetunes/public.</summary>
    public const int MaxPublicLimit = 10_000;

    private static readonly string[] s_orderColumns = ["created_at", "modified_at", "name", "id", "model"];

    public static async Task CreateAsync(HttpContext context, FinetuneStore store, ServerOptions options)
    {
        byte[] body = await RequestBody.ReadAsync(context, options.MaxRequestBodyBytes);
        CreateFinetuneRequest request = FinetunesProtocol.ParseCreate(body);
        Finetune created = store.Create(Account(context), request.Name, request.Model, request.Description, request.IsPublic);
        await ApiResponses.WriteSuccessAsync(context, writer => FinetunesProtocol.WriteSummary(writer, created));
    }

    public static Task ListAsync(HttpContext context, FinetuneStore store) => WriteListAsync(context, store.List(Account(context)));

    public static Task ListPublicAsync(HttpContext context, FinetuneStore store)
    {
        IQueryCollection query = context.Request.Query;
        int offset = IntParameter(query, "offset", 0, 0, int.MaxValue);
        int limit = IntParameter(query, "limit", MaxPublicLimit, 1, MaxPublicLimit);
        IEnumerable<Finetune> ordered = Order(store.ListPublic(), query["orderBy"]);
        return WriteListAsync(context, [.. ordered.Skip(offset).Take(limit)]);
    }

    public static async Task DeleteAsync(HttpContext context, string finetune, FinetuneStore store)
    {
        Finetune deleted = store.Delete(Account(context), finetune);
        await ApiResponses.WriteSuccessAsync(context, writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("id", deleted.Id);
            writer.WriteEndObject();
        });
    }

    /// <summary>POST …/finetunes/{finetune}/finetune-assets: multipart/form-data with <c>file_name</c> and
    /// <c>file</c>, one file per request.</summary>
    public static async Task UploadAsync(HttpContext context, string finetune, FinetuneStore store)
    {
        string account = Account(context);
        store.GetOwned(account, finetune); // 404 or 403 before a byte of the body is read
        string boundary = Boundary(context.Request.ContentType);
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = store.Limits.MaxFileBytes + MultipartOverheadBytes;
        }
        CancellationToken aborted = context.RequestAborted;
        var reader = new MultipartReader(boundary, new UploadBodyStream(context.Request.Body, context));
        string? fileName = null;
        StagedFile? staged = null;
        try
        {
            while (await NextSectionAsync(context, reader) is { } section)
            {
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
                    || !disposition.DispositionType.Equals("form-data", StringComparison.OrdinalIgnoreCase))
                {
                    continue; // not a form field; MultipartReader skips its body
                }
                var body = new UploadBodyStream(section.Body, context);
                switch (HeaderUtilities.RemoveQuotes(disposition.Name).Value)
                {
                    case "file_name":
                        if (fileName is not null)
                        {
                            throw ApiException.BadInput("Bad input: /file_name: the field is given twice; upload one file per request", "/file_name");
                        }
                        fileName = await ReadFieldAsync(body, aborted);
                        // Refuse a wrong name or a file already uploaded before reading a 100 MB file part.
                        store.CheckUploadable(account, finetune, fileName);
                        break;
                    case "file":
                        if (staged is not null)
                        {
                            throw ApiException.BadInput("Bad input: /file: the field is given twice; upload one file per request", "/file");
                        }
                        staged = await store.StageAsync(body, aborted);
                        break;
                    default:
                        break; // unknown fields are ignored, as unknown JSON fields are
                }
            }
            if (fileName is null)
            {
                throw ApiException.BadInput(
                    $"Bad input: /file_name: the multipart field `file_name` is missing; send file_name={Finetune.ConfigFileName} or {Finetune.WeightsFileName} with the file",
                    "/file_name");
            }
            if (staged is null)
            {
                throw ApiException.BadInput("Bad input: /file: the multipart field `file` (the file's bytes) is missing", "/file");
            }
            Finetune updated = store.Commit(account, finetune, fileName, staged);
            await ApiResponses.WriteSuccessAsync(context, writer => FinetunesProtocol.WriteDetail(writer, updated));
        }
        finally
        {
            staged?.Dispose();
        }
    }

    private static async Task<MultipartSection?> NextSectionAsync(HttpContext context, MultipartReader reader)
    {
        try
        {
            return await reader.ReadNextSectionAsync(context.RequestAborted);
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            // The body itself read fine (UploadBodyStream translates its failures); the framing in it is wrong.
            throw UploadBodyStream.Translate(context, e);
        }
    }

    private static async Task<string> ReadFieldAsync(Stream body, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[MaxFieldBytes + 1];
        int length = 0;
        int read;
        while (length < buffer.Length && (read = await body.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0)
        {
            length += read;
        }
        if (length > MaxFieldBytes)
        {
            throw ApiException.BadInput($"Bad input: /file_name: longer than {MaxFieldBytes} bytes; use {Finetune.ConfigFileName} or {Finetune.WeightsFileName}", "/file_name");
        }
        return Encoding.UTF8.GetString(buffer, 0, length).Trim();
    }

    /// <summary>The multipart boundary of the request.</summary>
    /// <exception cref="ApiException">400/5006 when the body is not multipart/form-data with a boundary.</exception>
    private static string Boundary(string? contentType)
    {
        if (MediaTypeHeaderValue.TryParse(contentType, out MediaTypeHeaderValue? mediaType)
            && mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            && HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value is { Length: > 0 and <= 200 } boundary)
        {
            return boundary;
        }
        throw ApiException.BadInput(
            $"Bad input: expected a multipart/form-data body (with a boundary) holding the fields file_name and file; the Content-Type is {(contentType is null ? "missing" : FinetuneErrors.Show(contentType))}");
    }

    private static IEnumerable<Finetune> Order(IReadOnlyList<Finetune> finetunes, string? orderBy)
    {
        if (string.IsNullOrWhiteSpace(orderBy))
        {
            return finetunes; // oldest first
        }
        string[] parts = orderBy.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string column = parts[0].ToLowerInvariant();
        string direction = parts.Length > 1 ? parts[1].ToLowerInvariant() : "asc";
        if (parts.Length > 2 || !s_orderColumns.Contains(column) || direction is not ("asc" or "desc"))
        {
            throw ApiException.BadInput(
                $"Bad input: query parameter `orderBy` is {FinetuneErrors.Show(orderBy)}; use one of {string.Join(", ", s_orderColumns)}, optionally followed by asc or desc");
        }
        Func<Finetune, string> key = column switch
        {
            "created_at" => f => FinetuneJson.FormatTimestamp(f.CreatedAt),
            "modified_at" => f => FinetuneJson.FormatTimestamp(f.ModifiedAt),
            "name" => f => f.Name,
            "model" => f => f.Model,
            _ => f => f.Id,
        };
        IOrderedEnumerable<Finetune> sorted = direction == "desc"
            ? finetunes.OrderByDescending(key, StringComparer.Ordinal)
            : finetunes.OrderBy(key, StringComparer.Ordinal);
        return sorted.ThenBy(f => f.Id, StringComparer.Ordinal);
    }

    private static int IntParameter(IQueryCollection query, string name, int fallback, int min, int max)
    {
        string? text = query[name];
        if (string.IsNullOrEmpty(text))
        {
            return fallback;
        }
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < min || value > max)
        {
            throw ApiException.BadInput($"Bad input: query parameter `{name}` is {FinetuneErrors.Show(text)}; expected an integer from {min} to {max}");
        }
        return value;
    }

    private static Task WriteListAsync(HttpContext context, IReadOnlyList<Finetune> finetunes) =>
        ApiResponses.WriteSuccessAsync(context, writer =>
        {
            writer.WriteStartArray();
            foreach (Finetune finetune in finetunes)
            {
                FinetunesProtocol.WriteSummary(writer, finetune);
            }
            writer.WriteEndArray();
        });

    /// <summary>The account the request acts for (the auth filter always sets it on account routes).</summary>
    private static string Account(HttpContext context) =>
        ApiAuthentication.AccountOf(context) ?? throw new UnreachableException("account routes always carry an account");
}
