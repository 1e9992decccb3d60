// The Hugging Face Hub's file protocol, as huggingface_hub speaks it: repository info (`/api/models/{repo}`, for the
// commit a revision points at), the file list (`/api/models/{repo}/tree/{commit}?recursive=true`, with sizes and the
// sha256 of LFS files) and file downloads (`/{repo}/resolve/{commit}/{path}`, which answers 302 to a CDN for LFS files
// with X-Linked-Etag / X-Linked-Size / X-Repo-Commit). Redirects are followed here, not by HttpClient, so the token
// goes only to the hub's own origin. Errors become one-line ModelStoreExceptions (HubClient.Errors.cs).

using System.Net;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Sirocco.Cli.Models;

/// <summary>What <c>/api/models/{repo}</c> says about a revision.</summary>
/// <param name="Id">The repository id with the hub's spelling.</param>
/// <param name="Commit">The 40-hex commit the revision points at.</param>
internal sealed record HubRepoInfo(string Id, string Commit);

/// <summary>One file of a repository's tree.</summary>
/// <param name="Size">Bytes of the file itself (for LFS files, of the content, not the pointer).</param>
/// <param name="GitOid">The git blob id (sha1 of "blob SIZE\0" + content), when listed.</param>
/// <param name="Sha256">For LFS files, the sha256 of the content: what the download is verified against.</param>
internal sealed record HubFileEntry(string Path, long Size, string? GitOid, string? Sha256)
{
    public bool IsLfs => Sha256 is not null;
}

/// <summary>A file download in flight: the final response (200, 206 or 416) and what the hub said about the file on
/// the way (from responses of the hub's own origin, not the CDN's).</summary>
internal sealed class HubFileResponse(HttpResponseMessage response, string? etag, long? linkedSize, string? repoCommit) : IDisposable
{
    public HttpResponseMessage Response { get; } = response;

    /// <summary>X-Linked-Etag, else ETag, unquoted: the sha256 of an LFS file, the git blob id of a small one.</summary>
    public string? Etag { get; } = etag;

    /// <summary>X-Linked-Size: the size of an LFS file.</summary>
    public long? LinkedSize { get; } = linkedSize;

    /// <summary>X-Repo-Commit: the commit the hub resolved the path at.</summary>
    public string? RepoCommit { get; } = repoCommit;

    public void Dispose() => Response.Dispose();
}

/// <summary>HTTP access to a Hugging Face Hub (or a mirror at HF_ENDPOINT).</summary>
internal sealed partial class HubClient : IDisposable
{
    private const int MaxRedirects = 10;
    private readonly HttpClient _http;
    private readonly HubOptions _options;
    private volatile bool _reachedHub;

    /// <param name="handler">For tests; by default a SocketsHttpHandler that follows no redirects and asks for no
    /// compression (sizes and digests are of the bytes as stored).</param>
    public HubClient(HubOptions options, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Offline)
        {
            throw new InvalidOperationException("offline: no hub client may be created");
        }
        _options = options;
        handler ??= new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = options.ConnectTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("sirocco", Version));
    }

    /// <summary>The hub's base URL.</summary>
    public Uri Endpoint => _options.Endpoint;

    public HubOptions Options => _options;

    /// <summary>This program's version, as sent in User-Agent.</summary>
    public static string Version { get; } =
        (typeof(HubClient).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0")
            .Split('+')[0];

    /// <summary>The commit <paramref name="reference"/>'s revision points at.</summary>
    /// <exception cref="ModelStoreException">The hub cannot be reached, refuses (401/403), has no such repository or
    /// revision (404), or answers something that is not repository info.</exception>
    public async Task<HubRepoInfo> GetRepoAsync(HubModelReference reference, CancellationToken cancellationToken)
    {
        string path = reference.Revision == HubModelReference.DefaultRevision
            ? $"api/models/{reference.Repo}"
            : $"api/models/{reference.Repo}/revision/{Uri.EscapeDataString(reference.Revision)}";
        using JsonDocument json = await GetJsonAsync(Url(path), reference, null, cancellationToken);
        JsonElement root = json.RootElement;
        string? commit = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("sha", out var sha) && sha.ValueKind == JsonValueKind.String ? sha.GetString() : null;
        if (commit is null || !s_commit.IsMatch(commit))
        {
            throw new ModelStoreException($"{Endpoint}/{path} did not name the commit of {reference.Repo}@{reference.Revision} (no 40-hex \"sha\"); is {HubOptions.EndpointVariable} a Hugging Face Hub?");
        }
        string id = root.TryGetProperty("id", out var idElement) && idElement.ValueKind == JsonValueKind.String ? idElement.GetString()! : reference.Repo;
        return new HubRepoInfo(id, commit);
    }

    /// <summary>Every file of the repository at <paramref name="commit"/> (recursive, following the hub's paging).</summary>
    /// <exception cref="ModelStoreException">As <see cref="GetRepoAsync"/>, or a listed path is unsafe.</exception>
    public async Task<IReadOnlyList<HubFileEntry>> ListFilesAsync(HubModelReference reference, string commit, CancellationToken cancellationToken)
    {
        var files = new List<HubFileEntry>();
        Uri? next = Url($"api/models/{reference.Repo}/tree/{commit}?recursive=true");
        for (int page = 0; next is not null; page++)
        {
            if (page > 1000)
            {
                throw new ModelStoreException($"the file list of {reference.Repo} at {Endpoint} does not end (over 1000 pages)");
            }
            (JsonDocument json, Uri? following) = await GetJsonPageAsync(next, reference, null, cancellationToken);
            using (json)
            {
                if (json.RootElement.ValueKind != JsonValueKind.Array)
                {
                    throw new ModelStoreException($"the file list of {reference.Repo} at {Endpoint} is not a JSON array; is {HubOptions.EndpointVariable} a Hugging Face Hub?");
                }
                foreach (JsonElement entry in json.RootElement.EnumerateArray())
                {
                    if (ParseEntry(entry, reference) is { } file)
                    {
                        files.Add(file);
                    }
                }
            }
            next = following;
        }
        return files;
    }

    /// <summary>Starts downloading <paramref name="path"/> at <paramref name="commit"/> from byte
    /// <paramref name="offset"/> (a Range request when above 0), following redirects.</summary>
    /// <returns>The final response, whose status is 200, 206 or 416; the caller reads (and disposes) it.</returns>
    /// <exception cref="ModelStoreException">The hub cannot be reached, refuses, has no such file, or fails (5xx: transient).</exception>
    public async Task<HubFileResponse> OpenFileAsync(HubModelReference reference, string commit, string path, long offset, CancellationToken cancellationToken)
    {
        Uri url = ResolveUrl(reference, commit, path);
        string? etag = null, repoCommit = null;
        long? linkedSize = null;
        for (int hop = 0; hop <= MaxRedirects; hop++)
        {
            HttpResponseMessage response = await SendAsync(url, offset, reference, path, cancellationToken);
            if (SameOrigin(url, Endpoint))
            {
                // The hub's own answers describe the file; a CDN's ETag is its own business (S3's is no sha256).
                etag = NormalizeEtag(Header(response, "X-Linked-Etag") ?? response.Headers.ETag?.Tag) ?? etag;
                linkedSize = long.TryParse(Header(response, "X-Linked-Size"), out long size) ? size : linkedSize;
                repoCommit = Header(response, "X-Repo-Commit") ?? repoCommit;
            }
            if (IsRedirect(response.StatusCode))
            {
                Uri? location = response.Headers.Location;
                response.Dispose();
                if (location is null)
                {
                    throw new ModelStoreException($"{url} redirected without a Location header", isTransient: true);
                }
                url = location.IsAbsoluteUri ? location : new Uri(url, location);
                if (url.Scheme is not ("http" or "https"))
                {
                    throw new ModelStoreException($"the hub redirected {path} to {url.Scheme}:, which is not HTTP");
                }
                continue;
            }
            if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.PartialContent or HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                return new HubFileResponse(response, etag, linkedSize, repoCommit);
            }
            using (response)
            {
                throw Describe(response, reference, path);
            }
        }
        throw new ModelStoreException($"downloading {path} of {reference.Repo}: more than {MaxRedirects} redirects");
    }

    /// <summary>The hub URL of a file: <c>{endpoint}/{repo}/resolve/{revision}/{path}</c>.</summary>
    public Uri ResolveUrl(HubModelReference reference, string revision, string path) =>
        Url($"{reference.Repo}/resolve/{Uri.EscapeDataString(revision)}/{RepoPaths.Escape(path)}");

    public void Dispose() => _http.Dispose();

    private Uri Url(string relative) => new(_options.Endpoint.AbsoluteUri.TrimEnd('/') + "/" + relative);

    private async Task<JsonDocument> GetJsonAsync(Uri url, HubModelReference reference, string? path, CancellationToken cancellationToken)
    {
        (JsonDocument json, _) = await GetJsonPageAsync(url, reference, path, cancellationToken);
        return json;
    }

    /// <summary>GETs a JSON document, following (same-origin) redirects and retrying transient failures; returns it
    /// with the <c>Link: &lt;…&gt;; rel="next"</c> page, if any.</summary>
    private async Task<(JsonDocument Json, Uri? Next)> GetJsonPageAsync(Uri url, HubModelReference reference, string? path, CancellationToken cancellationToken)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                Uri current = url;
                for (int hop = 0; ; hop++)
                {
                    using HttpResponseMessage response = await SendAsync(current, 0, reference, path, cancellationToken);
                    if (IsRedirect(response.StatusCode) && response.Headers.Location is { } location && hop < MaxRedirects)
                    {
                        current = location.IsAbsoluteUri ? location : new Uri(current, location);
                        continue;
                    }
                    if (response.StatusCode != HttpStatusCode.OK)
                    {
                        throw Describe(response, reference, path);
                    }
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeout.CancelAfter(_options.ReadTimeout);
                    try
                    {
                        await using Stream body = await response.Content.ReadAsStreamAsync(timeout.Token);
                        JsonDocument json = await JsonDocument.ParseAsync(body, default, timeout.Token);
                        return (json, NextPage(response, current));
                    }
                    catch (JsonException e)
                    {
                        throw new ModelStoreException($"{current} did not answer JSON ({e.Message}); is {HubOptions.EndpointVariable} a Hugging Face Hub?", e);
                    }
                    catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
                    {
                        throw new ModelStoreException($"{current}: no answer within {_options.ReadTimeout.TotalSeconds:0} s", isTransient: true, e);
                    }
                    catch (IOException e)
                    {
                        throw new ModelStoreException($"{current}: the connection dropped ({e.Message})", isTransient: true, e);
                    }
                }
            }
            catch (ModelStoreException e) when (e.IsTransient && attempt < _options.MaxAttempts)
            {
                await Task.Delay(Backoff(_options, attempt), cancellationToken);
            }
        }
    }

    /// <summary>Sends one GET (no redirect following) and returns once headers arrive.</summary>
    private async Task<HttpResponseMessage> SendAsync(Uri url, long offset, HubModelReference reference, string? path, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (offset > 0)
        {
            request.Headers.Range = new RangeHeaderValue(offset, null);
        }
        if (_options.Token is { } token && SameOrigin(url, Endpoint))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ReadTimeout + _options.ConnectTimeout);
        try
        {
            HttpResponseMessage response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (SameOrigin(url, Endpoint))
            {
                _reachedHub = true;
            }
            return response;
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ModelStoreException($"{url.GetLeftPart(UriPartial.Authority)} did not answer within {(_options.ReadTimeout + _options.ConnectTimeout).TotalSeconds:0} s", isTransient: true, e);
        }
        catch (HttpRequestException e)
        {
            throw Unreachable(url, e, reference);
        }
    }

    private static HubFileEntry? ParseEntry(JsonElement entry, HubModelReference reference)
    {
        if (entry.ValueKind != JsonValueKind.Object
            || !entry.TryGetProperty("type", out var type) || type.GetString() != "file"
            || !entry.TryGetProperty("path", out var pathElement) || pathElement.GetString() is not { } path)
        {
            return null; // directories (the recursive listing names them too)
        }
        if (!RepoPaths.IsSafe(path))
        {
            throw new ModelStoreException($"the file list of {reference.Repo} names an unsafe path '{path}'; refusing to download from it");
        }
        long size = entry.TryGetProperty("size", out var sizeElement) && sizeElement.TryGetInt64(out long s) ? s : -1;
        string? oid = entry.TryGetProperty("oid", out var oidElement) ? oidElement.GetString() : null;
        string? sha256 = null;
        if (entry.TryGetProperty("lfs", out var lfs) && lfs.ValueKind == JsonValueKind.Object)
        {
            sha256 = lfs.TryGetProperty("oid", out var lfsOid) ? lfsOid.GetString()?.ToLowerInvariant() : null;
            if (lfs.TryGetProperty("size", out var lfsSize) && lfsSize.TryGetInt64(out long l))
            {
                size = l;
            }
        }
        if (size < 0)
        {
            throw new ModelStoreException($"the file list of {reference.Repo} gives no size for {path}");
        }
        return new HubFileEntry(path, size,
            oid is not null && s_commit.IsMatch(oid.ToLowerInvariant()) ? oid.ToLowerInvariant() : null,
            sha256 is not null && s_sha256.IsMatch(sha256) ? sha256 : null);
    }

    /// <summary>The next page of a paged listing: <c>Link: &lt;URL&gt;; rel="next"</c>, kept to the same origin.</summary>
    private static Uri? NextPage(HttpResponseMessage response, Uri current)
    {
        if (!response.Headers.TryGetValues("Link", out var values))
        {
            return null;
        }
        foreach (string link in values.SelectMany(v => v.Split(',')))
        {
            Match m = s_nextLink.Match(link);
            if (m.Success)
            {
                var next = new Uri(current, m.Groups["url"].Value);
                return SameOrigin(next, current) ? next : null;
            }
        }
        return null;
    }

    /// <summary>"W/\"abc\"" → "abc", lowercased; null for null.</summary>
    internal static string? NormalizeEtag(string? etag)
    {
        if (etag is null)
        {
            return null;
        }
        string e = etag.Trim();
        if (e.StartsWith("W/", StringComparison.Ordinal))
        {
            e = e[2..];
        }
        return e.Trim('"').ToLowerInvariant();
    }

    internal static bool SameOrigin(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
        && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase)
        && a.Port == b.Port;

    private static bool IsRedirect(HttpStatusCode status) => status is HttpStatusCode.MovedPermanently or HttpStatusCode.Found
        or HttpStatusCode.SeeOther or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    /// <summary>Wait before retry number <paramref name="failures"/> (1-based): RetryDelay doubled per failure, ≤ 30 s.</summary>
    internal static TimeSpan Backoff(HubOptions options, int failures) =>
        TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(30).Ticks, options.RetryDelay.Ticks << Math.Min(failures - 1, 16)));

    /// <summary>True for a 40-hex git id (a commit or a blob), lowercase.</summary>
    public static bool IsGitId(string? text) => text is not null && s_commit.IsMatch(text);

    /// <summary>True for a 64-hex sha256, lowercase.</summary>
    public static bool IsSha256(string? text) => text is not null && s_sha256.IsMatch(text);

    private static readonly Regex s_commit = new("^[0-9a-f]{40}$", RegexOptions.CultureInvariant);
    private static readonly Regex s_sha256 = new("^[0-9a-f]{64}$", RegexOptions.CultureInvariant);
    private static readonly Regex s_nextLink = new("<(?<url>[^>]+)>\\s*;\\s*rel=\"?next\"?", RegexOptions.CultureInvariant);
}
