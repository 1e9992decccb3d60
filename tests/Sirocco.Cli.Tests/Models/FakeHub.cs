// A local stand-in for the Hugging Face Hub on 127.0.0.1 (Kestrel), speaking the file protocol Sirocco uses:
// /api/models/{repo}[/revision/{rev}], /api/models/{repo}/tree/{rev}, and /{repo}/resolve/{rev}/{path}, which answers
// LFS files with a 302 to a "CDN" on a second port (a different origin, so tests can see the token is not forwarded)
// and X-Linked-Etag / X-Linked-Size / X-Repo-Commit, small files directly with a git-blob ETag. Range requests get 206.
// Switches make it misbehave: drop connections mid-file, ignore Range, corrupt bytes, lie about sizes, demand tokens.

using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Sirocco.Cli.Tests.Models;

internal enum FakeAccess
{
    Public,

    /// <summary>Everything needs a valid token; without one the hub says 401 RepoNotFound, with a wrong one 404.</summary>
    Private,

    /// <summary>Info and file list are public; downloads need a token (401 GatedRepo) that has access (else 403 GatedRepo).</summary>
    Gated,
}

internal sealed record FakeFile(string Path, byte[] Content, bool Lfs)
{
    public string Sha256 { get; } = Convert.ToHexStringLower(SHA256.HashData(Content));

#pragma warning disable CA5350 // git's blob id is SHA-1 by definition.
    public string GitOid { get; } = Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {Content.Length}\0"), .. Content]));
#pragma warning restore CA5350
}

internal sealed class FakeRepo(string id, string commit, FakeAccess access)
{
    public string Id { get; } = id;

    public string Commit { get; } = commit;

    public FakeAccess Access { get; } = access;

    public Dictionary<string, FakeFile> Files { get; } = new(StringComparer.Ordinal);
}

/// <summary>One request the fake hub received.</summary>
internal sealed record FakeRequest(string Path, bool ToCdn, string? Range, string? Authorization);

internal sealed class FakeHub : IAsyncDisposable
{
    public const string ValidToken = "hf_valid_test_token";
    public const string NoAccessToken = "hf_token_without_access";

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, FakeRepo> _repos = new(StringComparer.OrdinalIgnoreCase);
    private int _hubPort;
    private long _cdnBytes;
    private int _drops;

    private FakeHub(WebApplication app) => _app = app;

    /// <summary>The hub's base URL (HF_ENDPOINT).</summary>
    public Uri Endpoint { get; private set; } = null!;

    /// <summary>The CDN's base URL (another port: another origin).</summary>
    public Uri Cdn { get; private set; } = null!;

    public ConcurrentQueue<FakeRequest> Requests { get; } = new();

    /// <summary>Body bytes the CDN has sent, over all requests.</summary>
    public long CdnBytesServed => Interlocked.Read(ref _cdnBytes);

    /// <summary>Drop (abort) the next <see cref="DropCount"/> CDN responses after this many body bytes.</summary>
    public long DropAfterBytes { get; set; } = -1;

    public int DropCount
    {
        get => Volatile.Read(ref _drops);
        set => Volatile.Write(ref _drops, value);
    }

    /// <summary>Serve every file from the CDN with one byte changed (same size, wrong digest).</summary>
    public bool CorruptContent { get; set; }

    /// <summary>Answer Range requests with the whole file and 200, as some servers do.</summary>
    public bool IgnoreRange { get; set; }

    /// <summary>Append this many bytes to what the CDN sends (and its Content-Length).</summary>
    public int ExtraBytes { get; set; }

    public static async Task<FakeHub> StartAsync()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0);
            k.Listen(IPAddress.Loopback, 0);
        });
        WebApplication app = builder.Build();
        var hub = new FakeHub(app);
        app.Run(hub.HandleAsync);
        await app.StartAsync();
        string[] addresses = [.. app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses];
        hub.Endpoint = new Uri(addresses[0]);
        hub.Cdn = new Uri(addresses[1]);
        hub._hubPort = hub.Endpoint.Port;
        return hub;
    }

    /// <summary>Adds a repository (its commit is derived from its id) with the given files.</summary>
    public FakeRepo AddRepo(string id, FakeAccess access, params FakeFile[] files)
    {
        string commit = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(id)))[..40];
        var repo = new FakeRepo(id, commit, access);
        foreach (FakeFile file in files)
        {
            repo.Files[file.Path] = file;
        }
        _repos[id] = repo;
        return repo;
    }

    public int RequestCount => Requests.Count;

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        string path = Uri.UnescapeDataString(context.Request.Path.Value ?? "");
        bool toCdn = context.Connection.LocalPort != _hubPort;
        Requests.Enqueue(new FakeRequest(path + context.Request.QueryString, toCdn, context.Request.Headers.Range.FirstOrDefault(),
            context.Request.Headers.Authorization.FirstOrDefault()));
        if (toCdn)
        {
            await ServeCdnAsync(context, path);
            return;
        }
        string[] parts = path.Trim('/').Split('/');
        if (parts is ["api", "models", var owner, var name, ..])
        {
            await ServeApiAsync(context, $"{owner}/{name}", parts[4..]);
        }
        else if (parts.Length >= 5 && parts[2] == "resolve")
        {
            await ServeResolveAsync(context, $"{parts[0]}/{parts[1]}", parts[3], string.Join('/', parts[4..]));
        }
        else
        {
            context.Response.StatusCode = 404;
        }
    }

    private async Task ServeApiAsync(HttpContext context, string id, string[] rest)
    {
        if (!TryRepo(context, id, forDownload: false, out FakeRepo? repo))
        {
            return;
        }
        string? revision = rest switch
        {
            [] => "main",
            ["revision", var r] => r,
            ["tree", var r] => r,
            _ => null,
        };
        if (revision is null)
        {
            context.Response.StatusCode = 404;
            return;
        }
        if (revision != "main" && revision != repo.Commit)
        {
            Error(context, 404, "RevisionNotFound", $"Invalid rev id: {revision}");
            return;
        }
        context.Response.ContentType = "application/json";
        if (rest is ["tree", _])
        {
            await context.Response.WriteAsync(JsonSerializer.Serialize(repo.Files.Values.Select(f => f.Lfs
                ? (object)new { type = "file", oid = f.GitOid, size = f.Content.Length, path = f.Path, lfs = new { oid = f.Sha256, size = f.Content.Length, pointerSize = 134 } }
                : new { type = "file", oid = f.GitOid, size = f.Content.Length, path = f.Path })));
            return;
        }
        await context.Response.WriteAsync(JsonSerializer.Serialize(new
        {
            id = repo.Id,
            sha = repo.Commit,
            siblings = repo.Files.Keys.Select(p => new { rfilename = p }),
        }));
    }

    private async Task ServeResolveAsync(HttpContext context, string id, string revision, string path)
    {
        if (!TryRepo(context, id, forDownload: true, out FakeRepo? repo))
        {
            return;
        }
        if (revision != "main" && revision != repo.Commit)
        {
            Error(context, 404, "RevisionNotFound", $"Invalid rev id: {revision}");
            return;
        }
        if (!repo.Files.TryGetValue(path, out FakeFile? file))
        {
            Error(context, 404, "EntryNotFound", $"{path} does not exist on \"{revision}\"");
            return;
        }
        context.Response.Headers["X-Repo-Commit"] = repo.Commit;
        if (file.Lfs)
        {
            context.Response.StatusCode = 302;
            context.Response.Headers.Location = new Uri(Cdn, $"cdn/{file.Sha256}").AbsoluteUri;
            context.Response.Headers["X-Linked-Etag"] = $"\"{file.Sha256}\"";
            context.Response.Headers["X-Linked-Size"] = file.Content.Length.ToString();
            context.Response.Headers.ETag = $"\"{file.Sha256}\"";
            return;
        }
        context.Response.Headers.ETag = $"\"{file.GitOid}\"";
        await ServeBytesAsync(context, file.Content, countAsCdn: false);
    }

    private async Task ServeCdnAsync(HttpContext context, string path)
    {
        string sha = path.StartsWith("/cdn/", StringComparison.Ordinal) ? path[5..] : "";
        FakeFile? file = _repos.Values.SelectMany(r => r.Files.Values).FirstOrDefault(f => f.Sha256 == sha);
        if (file is null)
        {
            context.Response.StatusCode = 404;
            return;
        }
        byte[] content = file.Content;
        if (CorruptContent || ExtraBytes > 0)
        {
            content = [.. content, .. new byte[ExtraBytes]];
            if (CorruptContent)
            {
                content[content.Length / 2] ^= 0x5A;
            }
        }
        context.Response.Headers.ETag = "\"not-a-sha256-cdn-etag\"";
        await ServeBytesAsync(context, content, countAsCdn: true);
    }

    /// <summary>200 with the whole body, or 206 for <c>Range: bytes=N-</c> (416 past the end); drops the connection
    /// mid-body when a drop is armed.</summary>
    private async Task ServeBytesAsync(HttpContext context, byte[] content, bool countAsCdn)
    {
        long start = 0;
        string? range = context.Request.Headers.Range.FirstOrDefault();
        if (range is not null && !IgnoreRange && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            start = long.Parse(range[6..^1]);
            if (start >= content.Length)
            {
                context.Response.StatusCode = 416;
                context.Response.Headers.ContentRange = $"bytes */{content.Length}";
                return;
            }
            context.Response.StatusCode = 206;
            context.Response.Headers.ContentRange = $"bytes {start}-{content.Length - 1}/{content.Length}";
        }
        context.Response.ContentLength = content.Length - start;
        bool drop = countAsCdn && DropAfterBytes >= 0 && Interlocked.Decrement(ref _drops) >= 0;
        long sent = 0;
        const int Chunk = 64 * 1024;
        for (long offset = start; offset < content.Length; offset += Chunk)
        {
            int count = (int)Math.Min(Chunk, content.Length - offset);
            if (drop && sent + count > DropAfterBytes)
            {
                count = (int)(DropAfterBytes - sent);
                await context.Response.Body.WriteAsync(content.AsMemory((int)offset, count));
                await context.Response.Body.FlushAsync();
                Interlocked.Add(ref _cdnBytes, count);
                await Task.Delay(50); // let the bytes leave before the reset (an abort discards what is still buffered)
                context.Abort();
                return;
            }
            await context.Response.Body.WriteAsync(content.AsMemory((int)offset, count));
            sent += count;
            if (countAsCdn)
            {
                Interlocked.Add(ref _cdnBytes, count);
            }
        }
    }

    private bool TryRepo(HttpContext context, string id, bool forDownload, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out FakeRepo? repo)
    {
        string? token = context.Request.Headers.Authorization.FirstOrDefault() is { } auth && auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth[7..] : null;
        if (!_repos.TryGetValue(id, out repo))
        {
            // The real hub will not say whether a private repository exists to an anonymous caller.
            Error(context, token is null ? 401 : 404, "RepoNotFound", "Repository not found");
            return false;
        }
        switch (repo.Access)
        {
            case FakeAccess.Private when token is null:
                Error(context, 401, "RepoNotFound", "Repository not found");
                return false;
            case FakeAccess.Private when token != ValidToken:
                Error(context, 404, "RepoNotFound", "Repository not found");
                return false;
            case FakeAccess.Gated when forDownload && token is null:
                Error(context, 401, "GatedRepo", "Access to model is restricted. You must have access to it and be authenticated to access it.");
                return false;
            case FakeAccess.Gated when forDownload && token != ValidToken:
                Error(context, 403, "GatedRepo", "Access to model is restricted and you are not in the authorized list.");
                return false;
            default:
                return true;
        }
    }

    private static void Error(HttpContext context, int status, string code, string message)
    {
        context.Response.StatusCode = status;
        context.Response.Headers["X-Error-Code"] = code;
        context.Response.Headers["X-Error-Message"] = message;
    }
}
