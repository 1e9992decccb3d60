// How Sirocco talks to the Hugging Face Hub: the endpoint (HF_ENDPOINT), the token (HF_TOKEN or the file
// `huggingface-cli login` writes), offline mode (--offline or HF_HUB_OFFLINE), timeouts and retry policy. Read from the
// environment once per command; tests build it directly with short delays.

namespace Sirocco.Cli.Models;

/// <summary>Settings for <see cref="HubClient"/> and <see cref="Downloader"/>.</summary>
internal sealed record HubOptions
{
    public const string DefaultEndpoint = "https://huggingface.co";
    public const string EndpointVariable = "HF_ENDPOINT";
    public const string TokenVariable = "HF_TOKEN";
    public const string OfflineVariable = "HF_HUB_OFFLINE";

    /// <summary>The hub's base URL, without a trailing slash.</summary>
    public Uri Endpoint { get; init; } = new(DefaultEndpoint);

    /// <summary>A Hugging Face access token sent as <c>Authorization: Bearer</c> to the endpoint (never to the CDN
    /// hosts it redirects to), or null.</summary>
    public string? Token { get; init; }

    /// <summary>Never touch the network: models come from the store or not at all.</summary>
    public bool Offline { get; init; }

    /// <summary>Longest wait for a TCP connection.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest wait for response headers, or for the next bytes of a body; past it the transfer counts as
    /// dropped and is retried.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Wait before the first retry; doubled for each further failure in a row, capped at 30 s.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Failures in a row, without a byte of progress between them, after which a download gives up (and a
    /// later pull resumes it).</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>Reads HF_ENDPOINT, HF_TOKEN (or HUGGING_FACE_HUB_TOKEN, or the token file) and HF_HUB_OFFLINE.</summary>
    /// <param name="offline">--offline was given.</param>
    /// <exception cref="ModelStoreException">HF_ENDPOINT is not an http(s) URL.</exception>
    public static HubOptions FromEnvironment(bool offline)
    {
        string endpointText = Environment.GetEnvironmentVariable(EndpointVariable) is { Length: > 0 } e ? e : DefaultEndpoint;
        if (!Uri.TryCreate(endpointText.TrimEnd('/'), UriKind.Absolute, out Uri? endpoint) || endpoint.Scheme is not ("http" or "https"))
        {
            throw new ModelStoreException($"{EndpointVariable}={endpointText} is not an http(s) URL; unset it to use {DefaultEndpoint}");
        }
        return new HubOptions
        {
            Endpoint = endpoint,
            Token = FindToken(),
            Offline = offline || IsTrue(Environment.GetEnvironmentVariable(OfflineVariable)),
        };
    }

    /// <summary>huggingface_hub's reading of boolean variables: 1, true, yes, on (any case).</summary>
    public static bool IsTrue(string? value) =>
        value?.Trim().ToUpperInvariant() is "1" or "TRUE" or "YES" or "ON";

    /// <summary>HF_TOKEN, then the legacy HUGGING_FACE_HUB_TOKEN, then the file `huggingface-cli login` writes
    /// (HF_TOKEN_PATH, or token under HF_HOME, by default ~/.cache/huggingface).</summary>
    private static string? FindToken()
    {
        foreach (string variable in (string[])[TokenVariable, "HUGGING_FACE_HUB_TOKEN"])
        {
            if (Environment.GetEnvironmentVariable(variable) is { } value && value.Trim().Length > 0)
            {
                return value.Trim();
            }
        }
        string? path = Environment.GetEnvironmentVariable("HF_TOKEN_PATH");
        if (string.IsNullOrEmpty(path))
        {
            string? home = Environment.GetEnvironmentVariable("HF_HOME");
            if (string.IsNullOrEmpty(home))
            {
                string cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
                    ? xdg
                    : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
                home = Path.Combine(cache, "huggingface");
            }
            path = Path.Combine(home, "token");
        }
        try
        {
            return File.Exists(path) && File.ReadAllText(path).Trim() is { Length: > 0 } token ? token : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // an unreadable token file is the same as none; a 401 then says to set HF_TOKEN
        }
    }
}
