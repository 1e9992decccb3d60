// The loaded model as the APIs see it: tokenizer, catalog, KV cache pool and the continuous-batching scheduler, plus
// the two steps every generation route shares: Prepare (prompt ids, the catalog model's token limits, max_tokens) and
// Start (submit to the scheduler, mapping its refusals to API errors). `sirocco serve` and the tests build one.

using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;
using Sirocco.Engine.Sampling;
using Sirocco.Engine.Scheduling;
using Sirocco.Engine.Tokenization;
using Sirocco.Server.Catalog;
using Sirocco.Server.Prompting;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Hosting;

/// <summary>A request turned into what the scheduler runs: prompt ids, the token budget, sampling.</summary>
/// <param name="Model">The catalog model the request named.</param>
/// <param name="PromptIds">Prompt token ids (BOS first).</param>
/// <param name="MaxTokens">Most tokens to generate, after the limits were applied.</param>
/// <param name="Sampling">Validated sampling options.</param>
public sealed record PreparedGeneration(CatalogModel Model, int[] PromptIds, int MaxTokens, SamplingOptions Sampling)
{
    /// <summary>Texts that end the generation when they appear in the output (not included in it).</summary>
    public IReadOnlyList<string> StopSequences { get; init; } = [];

    /// <summary>The LoRA adapter the request named, applied to this sequence only; null for the base model.</summary>
    public IProjectionAdapter? Adapter { get; init; }
}

/// <summary>Owns the model and everything that serves it; disposed when the server stops.</summary>
public sealed class ModelHost : IDisposable
{
    private readonly LlamaModel _model;
    private readonly KvCachePool _cache;

    /// <summary>Builds the host over a loaded model; takes ownership of <paramref name="model"/>.</summary>
    /// <param name="model">The loaded model.</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    /// <param name="options">Server policy (batch and queue sizes, context window, cache budget).</param>
    /// <param name="description">What was loaded, for the startup log and /healthz (e.g. the file name).</param>
    /// <param name="cacheType">KV cache element type.</param>
    public ModelHost(LlamaModel model, Tokenizer tokenizer, ServerOptions options, string description, KvCacheType cacheType = KvCacheType.F16)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        _model = model;
        Tokenizer = tokenizer;
        Description = description;
        int context = model.Config.ContextLength;
        Catalog = ModelCatalog.Load(Math.Min(options.LoraContextWindow ?? context, context));
        int largestWindow = Catalog.Models.Max(WindowOf);
        long budget = options.KvCacheBytes ?? KvCacheOptions.ForPositions(model.Config, largestWindow, cacheType).BudgetBytes;
        _cache = model.CreateCache(new KvCacheOptions(budget, Type: cacheType));
        Adapters = new AdapterCache(model.Weights, new LoraLimits(options.MaxLoraRank, options.MaxAdapterFileBytes), options.LoraCacheBytes);
        Scheduler = new GenerationScheduler(model, tokenizer, _cache, new SchedulerOptions
        {
            MaxActiveSequences = options.MaxActiveSequences,
            MaxQueuedRequests = options.MaxQueuedRequests,
        });
    }

    public Tokenizer Tokenizer { get; }

    public ModelCatalog Catalog { get; }

    public GenerationScheduler Scheduler { get; }

    /// <summary>LoRA adapters loaded for requests, least recently used dropped beyond the budget.</summary>
    public AdapterCache Adapters { get; }

    /// <summary>The served model's weights (what adapters are checked against).</summary>
    public ModelWeights Weights => _model.Weights;

    public string Description { get; }

    public ModelConfig Config => _model.Config;

    /// <summary>Tokens a request to <paramref name="model"/> may use in all (input + max_tokens): the catalog's window,
    /// capped by the loaded model's context length.</summary>
    public int WindowOf(CatalogModel model) => PromptBuilder.Window(model, _model.Config.ContextLength);

    /// <summary>Builds the prompt and checks it against <paramref name="model"/>'s limits.</summary>
    /// <exception cref="ApiException">5006 for a conversation the template cannot place; 5021 when the input, or the
    /// input plus max_tokens, is over the model's limit (the message gives the numbers).</exception>
    public PreparedGeneration Prepare(RunRequest request, CatalogModel model)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(model);
        int[] ids = PromptBuilder.Build(request, Tokenizer);
        // max_tokens not given: the default, shortened to what the window leaves rather than refused.
        int maxTokens = request.MaxTokens ?? Math.Clamp(WindowOf(model) - ids.Length, 0, RunRequest.DefaultMaxTokens);
        PromptBuilder.EnsureFits(model, ids.Length, maxTokens, _model.Config.ContextLength);
        return new PreparedGeneration(model, ids, maxTokens, request.ToSamplingOptions());
    }

    /// <summary>Submits <paramref name="prepared"/> to the scheduler.</summary>
    /// <exception cref="ApiException">429/3040 when the queue is full (with the retry delay), 503 when shutting down,
    /// 400/5021 when the request cannot fit the KV cache at all.</exception>
    public GenerationStream Start(PreparedGeneration prepared, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prepared);
        try
        {
            return Scheduler.Submit(new GenerationRequest(prepared.PromptIds, prepared.MaxTokens, prepared.Sampling, prepared.Adapter) { StopSequences = prepared.StopSequences }, cancellationToken);
        }
        catch (SchedulerBusyException e)
        {
            throw new ApiException(ErrorCodes.OutOfCapacity, 429, "Capacity temporarily exceeded, please try again.") { RetryAfter = e.RetryAfter };
        }
        catch (SchedulerStoppedException)
        {
            throw new ApiException(ErrorCodes.OutOfCapacity, 503, "The server is shutting down; try again shortly.") { RetryAfter = TimeSpan.FromSeconds(5) };
        }
        catch (ArgumentException e)
        {
            throw new ApiException(ErrorCodes.ContextWindowExceeded, 400, e.Message);
        }
    }

    public void Dispose()
    {
        Scheduler.Dispose();
        _cache.Dispose();
        _model.Dispose();
    }
}
