// Runtime policy of the HTTP server: where it listens, who may call it, how many requests run and wait, the LoRA
// model's context window, SSE padding, shutdown grace, where finetunes are stored and their limits. `sirocco serve`
// binds its options to this class; tests build it directly. Model hyperparameters come from the model file, never here.

using Sirocco.Server.Auth;

namespace Sirocco.Server;

/// <summary>How the server runs. Defaults are what `sirocco serve` uses without options.</summary>
public sealed record ServerOptions
{
    /// <summary>Address to listen on: an IP address or <c>localhost</c>. Default loopback only.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one (tests). Default 8787, as `wrangler dev`.</summary>
    public int Port { get; init; } = 8787;

    /// <summary>API tokens, each bound to one account id. Empty: no authentication, and then the server only binds to
    /// loopback unless <see cref="AllowUnauthenticatedRemote"/> is set.</summary>
    public IReadOnlyList<ApiToken> Tokens { get; init; } = [];

    /// <summary>Bind to a non-loopback address even though no tokens are configured (anyone who can reach the port can
    /// use the model).</summary>
    public bool AllowUnauthenticatedRemote { get; init; }

    /// <summary>Requests generating at once (continuous batching).</summary>
    public int MaxActiveSequences { get; init; } = 4;

    /// <summary>Requests that may wait for a slot; one more gets 429 with code 3040 and Retry-After.</summary>
    public int MaxQueuedRequests { get; init; } = 32;

    /// <summary>Context window of <c>@cf/mistral/mistral-7b-instruct-v0.2-lora</c> in tokens (input + max_tokens); null
    /// means the model's own context length (32768 for Mistral-7B-Instruct-v0.2). Capped at the model's.</summary>
    public int? LoraContextWindow { get; init; }

    /// <summary>KV cache budget shared by all running requests, in bytes; null sizes it for one request of the largest
    /// context window. Requests wait for room rather than fail.</summary>
    public long? KvCacheBytes { get; init; }

    /// <summary>Longest <c>p</c> padding on streamed events (a random length from 1 to this, against token-length side
    /// channels); 0 sends no padding.</summary>
    public int SsePaddingMaxLength { get; init; } = 48;

    /// <summary>Largest request body accepted, in bytes (413 with code 3006 beyond). Default 4 MiB: a 131072-character
    /// prompt escaped as JSON fits several times over.</summary>
    public long MaxRequestBodyBytes { get; init; } = 4L << 20;

    /// <summary>On shutdown, how long running requests may keep generating before they are cancelled.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Where finetunes (LoRA adapters) are stored; null means <c>SIROCCO_DATA_DIR</c>, or else
    /// <c>sirocco</c> under the user's local application data (<c>~/.local/share/sirocco</c>). Shared with
    /// `sirocco lora`.</summary>
    public string? DataDirectory { get; init; }

    /// <summary>Largest adapter file a finetune upload may send, in bytes (413 with code 3006 beyond). Default 100 MiB,
    /// Workers AI's limit.</summary>
    public long MaxAdapterFileBytes { get; init; } = 100L << 20;

    /// <summary>Finetunes one account may own; creating one more is 400. Default 30, Workers AI's 2024 limit.</summary>
    public int MaxFinetunesPerAccount { get; init; } = 30;

    /// <summary>Largest LoRA rank <c>r</c> an uploaded adapter may have. Default 8, Workers AI's limit.</summary>
    public int MaxLoraRank { get; init; } = 8;

    /// <summary>Memory for loaded LoRA adapters, in bytes; the least recently used are dropped beyond it. Default
    /// 1 GiB: an r=8 adapter on every projection of Mistral-7B takes about 84 MB as f32.</summary>
    public long LoraCacheBytes { get; init; } = 1L << 30;

    /// <summary>Checks every value; returns one sentence per problem.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (Port is < 0 or > 65535)
        {
            problems.Add($"port {Port}: use 1 … 65535");
        }
        if (MaxActiveSequences is < 1 or > 256)
        {
            problems.Add($"max active requests {MaxActiveSequences}: use 1 … 256");
        }
        if (MaxQueuedRequests is < 0 or > 100_000)
        {
            problems.Add($"max queued requests {MaxQueuedRequests}: use 0 … 100000");
        }
        if (LoraContextWindow is < 16)
        {
            problems.Add($"LoRA model context window {LoraContextWindow}: use at least 16 tokens");
        }
        if (KvCacheBytes is <= 0)
        {
            problems.Add($"KV cache size {KvCacheBytes} bytes: must be positive");
        }
        if (SsePaddingMaxLength is < 0 or > 1024)
        {
            problems.Add($"SSE padding {SsePaddingMaxLength}: use 0 … 1024 characters");
        }
        if (MaxRequestBodyBytes < 1024)
        {
            problems.Add($"max request body {MaxRequestBodyBytes} bytes: use at least 1024");
        }
        if (DataDirectory is not null && (DataDirectory.Trim().Length == 0 || DataDirectory.Any(char.IsControl)))
        {
            problems.Add("data directory: give a path without control characters");
        }
        if (LoraCacheBytes is < 1 << 20 or > 1L << 40)
        {
            problems.Add($"LoRA cache {LoraCacheBytes} bytes: use 1 MiB … 1 TiB");
        }
        if (MaxAdapterFileBytes is < 1024 or > 16L << 30)
        {
            problems.Add($"max adapter file size {MaxAdapterFileBytes} bytes: use 1024 … {16L << 30}");
        }
        if (MaxFinetunesPerAccount is < 1 or > 100_000)
        {
            problems.Add($"max finetunes per account {MaxFinetunesPerAccount}: use 1 … 100000");
        }
        if (MaxLoraRank is < 1 or > 4096)
        {
            problems.Add($"max LoRA rank {MaxLoraRank}: use 1 … 4096");
        }
        if (ShutdownGrace < TimeSpan.Zero)
        {
            problems.Add($"shutdown grace {ShutdownGrace}: must not be negative");
        }
        return problems;
    }
}
