// The LoRA adapters loaded for run requests, kept in memory least-recently-used by bytes: a request naming a
// finetune gets the loaded adapter (loading it on first use, once even when several requests ask at the same time),
// and the least recently used ones are dropped when the total passes the budget. Also maps the engine's adapter
// errors to API errors that name the uploaded file.

using System.Collections.Concurrent;
using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;
using Sirocco.Server.Finetunes;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Hosting;

/// <summary>Loads and caches adapters by the content of their two files. Thread-safe.</summary>
public sealed class AdapterCache
{
    /// <summary>File names of a PEFT adapter, used in error messages instead of the store's blob names.</summary>
    public const string ConfigFileName = "adapter_config.json";

    /// <summary>See <see cref="ConfigFileName"/>.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    private readonly ModelWeights _baseModel;
    private readonly LoraLimits _limits;
    private readonly long _budgetBytes;
    private readonly Lock _lock = new();
    private readonly ConcurrentDictionary<string, Lazy<LoraAdapter>> _loading = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Key, LoraAdapter Adapter)> _recent = new(); // most recent first
    private long _bytes;

    public AdapterCache(ModelWeights baseModel, LoraLimits limits, long budgetBytes)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budgetBytes);
        _baseModel = baseModel;
        _limits = limits;
        _budgetBytes = budgetBytes;
    }

    /// <summary>Adapters held now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _recent.Count;
            }
        }
    }

    /// <summary>Bytes the held adapters take.</summary>
    public long Bytes
    {
        get
        {
            lock (_lock)
            {
                return _bytes;
            }
        }
    }

    /// <summary>How many adapters were loaded from disk (misses).</summary>
    public int LoadCount => Volatile.Read(ref _loads);

    private int _loads;

    /// <summary>The adapter of <paramref name="resolved"/>, from memory or loaded now.</summary>
    /// <exception cref="ApiException">400 when the files do not form an adapter for the loaded model (3039 when one
    /// is missing, 5006 otherwise), naming the file and the problem.</exception>
    public LoraAdapter Get(ResolvedAdapter resolved)
    {
        ArgumentNullException.ThrowIfNull(resolved);
        string key = string.Join('/', resolved.Finetune.Files.Values.Select(f => f.Sha256).Order(StringComparer.Ordinal));
        lock (_lock)
        {
            for (LinkedListNode<(string Key, LoraAdapter Adapter)>? node = _recent.First; node is not null; node = node.Next)
            {
                if (node.Value.Key == key)
                {
                    _recent.Remove(node);
                    _recent.AddFirst(node);
                    return node.Value.Adapter;
                }
            }
        }
        Lazy<LoraAdapter> load = _loading.GetOrAdd(key, _ => new Lazy<LoraAdapter>(() => Load(resolved.ConfigPath, resolved.WeightsPath)));
        LoraAdapter adapter;
        try
        {
            adapter = load.Value;
        }
        finally
        {
            _loading.TryRemove(new KeyValuePair<string, Lazy<LoraAdapter>>(key, load));
        }
        lock (_lock)
        {
            if (!_recent.Any(entry => entry.Key == key))
            {
                _recent.AddFirst((key, adapter));
                _bytes += adapter.SizeBytes;
                // Drop the least recently used until within budget; the one just loaded always stays.
                while (_bytes > _budgetBytes && _recent.Count > 1)
                {
                    _bytes -= _recent.Last!.Value.Adapter.SizeBytes;
                    _recent.RemoveLast();
                }
            }
        }
        return adapter;
    }

    /// <summary>Loads an adapter from its two files, errors mapped to 400 naming the file by its PEFT name.</summary>
    public LoraAdapter Load(string configPath, string weightsPath)
    {
        Interlocked.Increment(ref _loads);
        return Check(() => LoraAdapter.LoadPeft(configPath, weightsPath, _baseModel, _limits), configPath);
    }

    /// <summary>Runs <paramref name="load"/>, turning <see cref="LoraFormatException"/> into an <see cref="ApiException"/>
    /// whose message names adapter_config.json or adapter_model.safetensors rather than a stored file's name.</summary>
    public static T Check<T>(Func<T> load, string configPath)
    {
        ArgumentNullException.ThrowIfNull(load);
        try
        {
            return load();
        }
        catch (LoraFormatException e)
        {
            string file = e.FilePath == configPath ? ConfigFileName : WeightsFileName;
            string prefix = Path.GetFileName(e.FilePath) + ": ";
            string detail = e.Message.StartsWith(prefix, StringComparison.Ordinal) ? e.Message[prefix.Length..] : e.Message;
            int code = e.Kind == LoraErrorKind.MissingFile ? ErrorCodes.FinetuneMissingFiles : ErrorCodes.BadInput;
            throw new ApiException(code, 400, $"LoRA adapter {file}: {detail}", "/lora");
        }
    }
}

/// <summary>Checks uploads by loading them with the engine against the served model: rank, targets, shapes, tensor
/// names, dtypes, header and values, exactly as a run would.</summary>
public sealed class EngineAdapterValidator : IAdapterValidator
{
    private readonly ModelWeights _baseModel;
    private readonly LoraLimits _limits;

    public EngineAdapterValidator(ModelWeights baseModel, LoraLimits limits)
    {
        _baseModel = baseModel;
        _limits = limits;
    }

    /// <inheritdoc/>
    public void Validate(string configPath, string weightsPath) =>
        AdapterCache.Check(() => LoraAdapter.LoadPeft(configPath, weightsPath, _baseModel, _limits), configPath);
}
