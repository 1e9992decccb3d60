// adapter_config.json of a Hugging Face PEFT LoRA adapter, read and checked: rank and alpha (with the per-module
// rank_pattern/alpha_pattern overrides), rsLoRA, which modules of which layers are adapted, and the keys that select
// features Sirocco does not implement. LoraAdapter.LoadPeft reads it before touching the weights file. Matching
// rules follow PEFT (peft/tuners/tuners_utils.py check_target_module_exists, peft/utils/other.py get_pattern_key).

using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Sirocco.Engine.Lora;

/// <summary>The parts of a PEFT LoRA config that decide what an adapter does.</summary>
internal sealed class PeftAdapterConfig
{
    /// <summary>The file name PEFT (and Workers AI) use.</summary>
    public const string FileName = "adapter_config.json";

    /// <summary>Largest config accepted; real ones are under a kilobyte or two.</summary>
    public const long MaxFileBytes = 1 << 20;

    /// <summary>The only model_type this engine serves.</summary>
    public const string ModelType = "mistral";

    /// <summary>PEFT's default targets for Mistral when target_modules is null
    /// (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING["mistral"]).</summary>
    private static readonly string[] s_defaultTargets = ["q_proj", "v_proj"];

    /// <summary>Bounds the time a hostile pattern can take to match one module path.</summary>
    private static readonly TimeSpan s_regexTimeout = TimeSpan.FromMilliseconds(200);

    private readonly string _path;
    private readonly Target _targets;
    private readonly Target _excluded;
    private readonly (string Key, Regex Pattern, int Value)[] _rankPattern;
    private readonly (string Key, Regex Pattern, double Value)[] _alphaPattern;

    private PeftAdapterConfig(string path, int rank, double alpha, bool useRsLora, Target targets, Target excluded,
        int[]? layers, (string, Regex, int)[] rankPattern, (string, Regex, double)[] alphaPattern)
    {
        _path = path;
        Rank = rank;
        Alpha = alpha;
        UseRsLora = useRsLora;
        _targets = targets;
        _excluded = excluded;
        LayersToTransform = layers;
        _rankPattern = rankPattern;
        _alphaPattern = alphaPattern;
    }

    /// <summary><c>r</c>: the rank of modules no rank_pattern entry matches (PEFT's default is 8).</summary>
    public int Rank { get; }

    /// <summary><c>lora_alpha</c> (PEFT's default is 8).</summary>
    public double Alpha { get; }

    /// <summary><c>use_rslora</c>: scale by α/√r instead of α/r (Kalajdzievski 2023).</summary>
    public bool UseRsLora { get; }

    /// <summary><c>layers_to_transform</c>, or null for every layer.</summary>
    public int[]? LayersToTransform { get; }

    /// <summary>Reads and checks <paramref name="path"/>.</summary>
    /// <exception cref="LoraFormatException">MalformedFile, FileTooLarge, WrongModelType, Unsupported,
    /// NonFiniteValue, RankTooLarge or TargetMismatch, naming the key.</exception>
    public static PeftAdapterConfig Load(string path, int layerCount, LoraLimits limits)
    {
        long length = new FileInfo(path).Length;
        if (length > MaxFileBytes)
        {
            throw new LoraFormatException(LoraErrorKind.FileTooLarge, path, "size", $"at most {MaxFileBytes} bytes for a config", $"{length} bytes");
        }
        return Parse(File.ReadAllBytes(path), path, layerCount, limits);
    }

    /// <summary>Parses config JSON; <paramref name="path"/> names the source in errors.</summary>
    public static PeftAdapterConfig Parse(byte[] json, string path, int layerCount, LoraLimits limits)
    {
        ReadOnlySpan<byte> span = json;
        if (span.StartsWith(Encoding.UTF8.Preamble))
        {
            span = span[Encoding.UTF8.Preamble.Length..];
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(span.ToArray(), new JsonDocumentOptions { AllowDuplicateProperties = false, MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new LoraFormatException(LoraErrorKind.MalformedFile, path, "JSON", "well-formed JSON without duplicate keys", e.Message, e);
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new LoraFormatException(LoraErrorKind.MalformedFile, path, "config", "a JSON object", root.ValueKind.ToString());
            }
            return Read(new Keys(path, root), layerCount, limits);
        }
    }

    private static PeftAdapterConfig Read(Keys keys, int layerCount, LoraLimits limits)
    {
        string path = keys.Path;
        // Which adapter family and which model: the checks Workers AI makes first.
        string peftType = keys.String("peft_type") ?? "LORA";
        if (peftType != "LORA")
        {
            throw new LoraFormatException(LoraErrorKind.Unsupported, path, "peft_type", "\"LORA\"", $"\"{peftType}\" (only LoRA adapters are supported)");
        }
        string? modelType = keys.String("model_type");
        if (modelType is null ? limits.RequireModelType : modelType != ModelType)
        {
            throw new LoraFormatException(LoraErrorKind.WrongModelType, path, "model_type", $"\"{ModelType}\" (the adapter's base model family)",
                modelType is null ? "no model_type key" : $"\"{modelType}\"");
        }

        // Features that would change what the adapter computes and that Sirocco does not implement.
        if (keys.Bool("use_dora") == true)
        {
            throw new LoraFormatException(LoraErrorKind.Unsupported, path, "use_dora: DoRA adapters are not supported (only plain LoRA)");
        }
        string bias = keys.String("bias") ?? "none";
        if (bias != "none")
        {
            throw new LoraFormatException(LoraErrorKind.Unsupported, path, "bias", "\"none\" (Mistral's projections have no biases)", $"\"{bias}\"");
        }
        if (keys.Bool("lora_bias") == true)
        {
            throw new LoraFormatException(LoraErrorKind.Unsupported, path, "lora_bias: LoRA B biases are not supported");
        }
        foreach (string key in (string[])["modules_to_save", "target_parameters", "trainable_token_indices"])
        {
            if (keys.IsPresentAndNotEmpty(key))
            {
                throw new LoraFormatException(LoraErrorKind.Unsupported, path, key, "null or empty (Sirocco applies LoRA to layer projections only)", keys.Describe(key));
            }
        }
        if (keys.Has("layers_pattern") && keys.Element("layers_pattern") is { } layersPattern
            && !(layersPattern.ValueKind == JsonValueKind.Null
                || (layersPattern.ValueKind == JsonValueKind.String && layersPattern.GetString() == "layers")
                || (layersPattern.ValueKind == JsonValueKind.Array && layersPattern.GetArrayLength() == 1 && layersPattern[0].ValueKind == JsonValueKind.String && layersPattern[0].GetString() == "layers")))
        {
            throw new LoraFormatException(LoraErrorKind.Unsupported, path, "layers_pattern", "null or \"layers\" (Mistral's layer list)", keys.Describe("layers_pattern"));
        }
        // fan_in_fan_out only matters for GPT-2-style Conv1D layers; PEFT resets it to false on nn.Linear (Mistral's
        // projections) and stores lora_A [r, in] and lora_B [out, r] either way, so it is accepted and ignored.
        keys.Bool("fan_in_fan_out");

        // Rank and scaling.
        int rank = keys.Int("r") ?? 8;
        if (rank < 1)
        {
            throw new LoraFormatException(LoraErrorKind.MalformedFile, path, "r", "a positive rank", rank.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        double alpha = keys.Number("lora_alpha") ?? 8;
        bool useRsLora = keys.Bool("use_rslora") ?? false;
        (string, Regex, int)[] rankPattern = [.. keys.Object("rank_pattern").Select(p => (p.Key, Pattern(path, "rank_pattern", p.Key), keys.IntValue($"rank_pattern.{p.Key}", p.Value)))];
        (string, Regex, double)[] alphaPattern = [.. keys.Object("alpha_pattern").Select(p => (p.Key, Pattern(path, "alpha_pattern", p.Key), keys.NumberValue($"alpha_pattern.{p.Key}", p.Value)))];
        foreach ((string key, _, int value) in rankPattern)
        {
            if (value < 1)
            {
                throw new LoraFormatException(LoraErrorKind.MalformedFile, path, $"rank_pattern.{key}", "a positive rank", value.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        int largest = rankPattern.Select(p => p.Item3).Append(rank).Max();
        if (largest > limits.MaxRank)
        {
            string where = largest == rank ? "r" : $"rank_pattern.{rankPattern.First(p => p.Item3 == largest).Item1}";
            throw new LoraFormatException(LoraErrorKind.RankTooLarge, path, where, $"a rank of at most {limits.MaxRank}", largest.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        // What is adapted.
        Target targets = ReadTarget(keys, "target_modules", isExclusion: false);
        Target excluded = ReadTarget(keys, "exclude_modules", isExclusion: true);
        int[]? layers = keys.IntOrIntList("layers_to_transform");
        if (layers is not null)
        {
            foreach (int layer in layers)
            {
                if (layer < 0 || layer >= layerCount)
                {
                    throw new LoraFormatException(LoraErrorKind.TargetMismatch, path, "layers_to_transform",
                        $"layers 0 … {layerCount - 1} (the base model has {layerCount})", layer.ToString(System.Globalization.CultureInfo.InvariantCulture));
                }
            }
        }
        var config = new PeftAdapterConfig(path, rank, alpha, useRsLora, targets, excluded, layers, rankPattern, alphaPattern);
        config.CheckTargetsExist(layerCount);
        return config;
    }

    /// <summary>Whether the module at (<paramref name="layer"/>, <paramref name="module"/>) is adapted by this config.</summary>
    public bool IsTargeted(int layer, LoraModule module)
    {
        string modulePath = module.ModulePath(layer);
        return _targets.Matches(modulePath, _path) && !_excluded.Matches(modulePath, _path)
            && (LayersToTransform is null || LayersToTransform.Contains(layer));
    }

    /// <summary>The rank the config gives the module: the first rank_pattern entry matching it, else r.</summary>
    public int RankOf(int layer, LoraModule module) => First(_rankPattern, module.ModulePath(layer), Rank);

    /// <summary>The alpha the config gives the module: the first alpha_pattern entry matching it, else lora_alpha.</summary>
    public double AlphaOf(int layer, LoraModule module) => First(_alphaPattern, module.ModulePath(layer), Alpha);

    /// <summary>PEFT's scaling: α/r, or α/√r with rsLoRA, from the module's own rank and alpha.</summary>
    public double ScaleOf(int layer, LoraModule module)
    {
        int r = RankOf(layer, module);
        double a = AlphaOf(layer, module);
        return UseRsLora ? a / Math.Sqrt(r) : a / r;
    }

    /// <summary>The targets as written, for the description.</summary>
    public string DescribeTargets() => _targets.Text;

    private T First<T>((string Key, Regex Pattern, T Value)[] patterns, string modulePath, T fallback)
    {
        foreach ((string key, Regex pattern, T value) in patterns)
        {
            if (IsMatch(pattern, modulePath, _path, key))
            {
                return value;
            }
        }
        return fallback;
    }

    /// <summary>A config that targets nothing this model has would load as a no-op; PEFT refuses it, and so do we.</summary>
    private void CheckTargetsExist(int layerCount)
    {
        if (_targets.Names is { } names)
        {
            foreach (string name in names)
            {
                bool any = false;
                for (int layer = 0; layer < layerCount && !any; layer++)
                {
                    any = LoraModules.All.Any(m => Target.SuffixMatch(m.ModulePath(layer), name));
                }
                if (!any)
                {
                    throw new LoraFormatException(LoraErrorKind.TargetMismatch, _path, "target_modules",
                        $"module names among {LoraModules.PeftNames}", $"\"{name}\"");
                }
            }
        }
        bool anything = Enumerable.Range(0, layerCount).Any(layer => LoraModules.All.Any(m => IsTargeted(layer, m)));
        if (!anything)
        {
            throw new LoraFormatException(LoraErrorKind.TargetMismatch, _path, "target_modules",
                $"at least one of {LoraModules.PeftNames} in the model's layers", $"{_targets.Text} selecting nothing");
        }
    }

    private static Target ReadTarget(Keys keys, string key, bool isExclusion)
    {
        JsonElement? element = keys.Element(key);
        if (element is null || element.Value.ValueKind == JsonValueKind.Null)
        {
            return isExclusion ? Target.Nothing : new Target(s_defaultTargets, null, "[q_proj, v_proj] (PEFT's default for Mistral)");
        }
        JsonElement value = element.Value;
        if (value.ValueKind == JsonValueKind.Array)
        {
            var names = new List<string>();
            foreach (JsonElement item in value.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(item.GetString()))
                {
                    throw new LoraFormatException(LoraErrorKind.MalformedFile, keys.Path, key, "a list of module names", keys.Describe(key));
                }
                names.Add(item.GetString()!);
            }
            return new Target([.. names], null, $"[{string.Join(", ", names)}]");
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            throw new LoraFormatException(LoraErrorKind.MalformedFile, keys.Path, key, "a list of module names or a string", keys.Describe(key));
        }
        string text = value.GetString()!;
        if (!isExclusion && text == "all-linear")
        {
            // PEFT's shortcut for every linear layer but the output head: for Mistral, the seven projections.
            return new Target([.. LoraModules.All.Select(m => m.PeftName)], null, "all-linear");
        }
        if (LoraModules.FindPeft(text) is not null)
        {
            // A bare module name. PEFT would read a string as a regular expression matched against the whole module
            // path, which a bare name never matches; the intent is plain, so it is taken as that module.
            return new Target([text], null, text);
        }
        // Any other string is a regular expression that must match a module's whole path (PEFT: re.fullmatch).
        return new Target(null, Pattern(keys.Path, key, text, fullMatch: true), $"/{text}/");
    }

    /// <summary>A PEFT pattern as a .NET regular expression. Pattern keys match a suffix of the module path after a
    /// dot (<c>re.match(rf"(.*\.)?({key})$", path)</c>); target strings match the whole path (<c>re.fullmatch</c>).
    /// Python's and .NET's syntax agree on everything such patterns use (classes, groups, alternation, quantifiers).</summary>
    private static Regex Pattern(string path, string key, string pattern, bool fullMatch = false)
    {
        try
        {
            return new Regex(fullMatch ? $"^(?:{pattern})$" : $"^(.*\\.)?(?:{pattern})$", RegexOptions.CultureInvariant, s_regexTimeout);
        }
        catch (ArgumentException e)
        {
            throw new LoraFormatException(LoraErrorKind.MalformedFile, path, key, "a valid regular expression", $"\"{pattern}\" ({e.Message})", e);
        }
    }

    private static bool IsMatch(Regex regex, string input, string path, string key)
    {
        try
        {
            return regex.IsMatch(input);
        }
        catch (RegexMatchTimeoutException e)
        {
            throw new LoraFormatException(LoraErrorKind.Unsupported, path, key, "a pattern that matches in reasonable time", $"\"{key}\" took over {s_regexTimeout.TotalMilliseconds} ms", e);
        }
    }

    /// <summary>target_modules or exclude_modules: a list of names matched as PEFT does (the name itself or a
    /// dotted suffix of the module path), or one regular expression matched against the whole path.</summary>
    private sealed record Target(string[]? Names, Regex? Pattern, string Text)
    {
        public static Target Nothing { get; } = new([], null, "[]");

        public bool Matches(string modulePath, string path) =>
            Names is not null ? Names.Any(name => SuffixMatch(modulePath, name)) : IsMatch(Pattern!, modulePath, path, Text);

        public static bool SuffixMatch(string modulePath, string name) =>
            modulePath == name || modulePath.EndsWith("." + name, StringComparison.Ordinal);
    }

    /// <summary>Typed access to the config's keys; a value of the wrong type is a MalformedFile error naming the key.</summary>
    private readonly struct Keys(string path, JsonElement root)
    {
        public string Path => path;

        public bool Has(string key) => root.TryGetProperty(key, out _);

        public JsonElement? Element(string key) => root.TryGetProperty(key, out JsonElement value) ? value : null;

        public string Describe(string key)
        {
            string text = Element(key)?.GetRawText() ?? "nothing";
            return text.Length > 80 ? text[..80] + "…" : text;
        }

        public string? String(string key) => Element(key) switch
        {
            null => null,
            { ValueKind: JsonValueKind.Null } => null,
            { ValueKind: JsonValueKind.String } v => v.GetString(),
            _ => throw Wrong(key, "a string"),
        };

        public bool? Bool(string key) => Element(key) switch
        {
            null => null,
            { ValueKind: JsonValueKind.Null } => null,
            { ValueKind: JsonValueKind.True } => true,
            { ValueKind: JsonValueKind.False } => false,
            _ => throw Wrong(key, "true or false"),
        };

        public int? Int(string key) => Element(key) switch
        {
            null => null,
            { ValueKind: JsonValueKind.Null } => null,
            JsonElement v => IntValue(key, v),
        };

        public double? Number(string key) => Element(key) switch
        {
            null => null,
            { ValueKind: JsonValueKind.Null } => null,
            JsonElement v => NumberValue(key, v),
        };

        public int IntValue(string key, JsonElement value) =>
            value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int i) ? i : throw Wrong(key, "an integer", value);

        public double NumberValue(string key, JsonElement value)
        {
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double d))
            {
                throw Wrong(key, "a number", value);
            }
            if (!double.IsFinite(d))
            {
                throw new LoraFormatException(LoraErrorKind.NonFiniteValue, path, key, "a finite number", value.GetRawText());
            }
            return d;
        }

        public List<KeyValuePair<string, JsonElement>> Object(string key) => Element(key) switch
        {
            null => [],
            { ValueKind: JsonValueKind.Null } => [],
            { ValueKind: JsonValueKind.Object } v => v.EnumerateObject().Select(p => KeyValuePair.Create(p.Name, p.Value)).ToList(),
            _ => throw Wrong(key, "an object of module patterns"),
        };

        public int[]? IntOrIntList(string key)
        {
            switch (Element(key))
            {
                case null:
                case { ValueKind: JsonValueKind.Null }:
                    return null;
                case { ValueKind: JsonValueKind.Number } v:
                    return [IntValue(key, v)];
                case { ValueKind: JsonValueKind.Array } v:
                    var list = new List<int>();
                    foreach (JsonElement item in v.EnumerateArray())
                    {
                        list.Add(IntValue(key, item));
                    }
                    return [.. list];
                default:
                    throw Wrong(key, "a layer index or a list of them");
            }
        }

        public bool IsPresentAndNotEmpty(string key) => Element(key) switch
        {
            null => false,
            { ValueKind: JsonValueKind.Null } => false,
            { ValueKind: JsonValueKind.Array } v => v.GetArrayLength() > 0,
            { ValueKind: JsonValueKind.Object } v => v.EnumerateObject().Any(),
            { ValueKind: JsonValueKind.String } v => v.GetString()!.Length > 0,
            _ => true,
        };

        private LoraFormatException Wrong(string key, string expected, JsonElement? value = null)
        {
            string found = (value ?? Element(key))?.GetRawText() ?? "nothing";
            return new LoraFormatException(LoraErrorKind.MalformedFile, path, key, expected, found.Length > 80 ? found[..80] + "…" : found);
        }
    }
}
