// The one exception a bad or unusable LoRA adapter raises, with a kind the server maps to an error code, and the
// limits (rank, file size) that Workers AI puts on adapters. LoraAdapter's loaders throw it; the CLI and server print it.

namespace Sirocco.Engine.Lora;

/// <summary>Limits an adapter must respect. Workers AI allows rank ≤ 8 and adapter files under 100 MB; both can be
/// raised (later Workers AI versions allow rank 32 and 300 MB).</summary>
/// <param name="MaxRank">Largest rank r of any adapted module.</param>
/// <param name="MaxFileBytes">Largest weights file (adapter_model.safetensors, or the .gguf file).</param>
/// <param name="RequireModelType">Whether adapter_config.json must say <c>"model_type": "mistral"</c>, as Workers AI
/// requires; plain PEFT output has no model_type.</param>
public sealed record LoraLimits(int MaxRank = 8, long MaxFileBytes = 100_000_000, bool RequireModelType = true)
{
    /// <summary>The Workers AI limits.</summary>
    public static LoraLimits Default { get; } = new();
}

/// <summary>What is wrong with an adapter.</summary>
public enum LoraErrorKind
{
    /// <summary>adapter_config.json, adapter_model.safetensors or the .gguf file does not exist.</summary>
    MissingFile,

    /// <summary>model_type (PEFT) or general.architecture (GGUF) names another model family.</summary>
    WrongModelType,

    /// <summary>A module's rank exceeds <see cref="LoraLimits.MaxRank"/>.</summary>
    RankTooLarge,

    /// <summary>target_modules or a tensor names a module other than the seven layer projections, or a layer the
    /// model does not have, or the tensors and target_modules disagree.</summary>
    TargetMismatch,

    /// <summary>A tensor's shape does not fit the base model (or its partner tensor, or the configured rank).</summary>
    ShapeMismatch,

    /// <summary>A tensor name that is not a LoRA A/B matrix of a layer projection.</summary>
    UnknownTensor,

    /// <summary>lora_A without lora_B (or the reverse), or a targeted module without tensors.</summary>
    MissingTensor,

    /// <summary>A tensor type other than F32, F16 or BF16 (and Q8_0 in GGUF).</summary>
    UnsupportedDtype,

    /// <summary>The file is larger than <see cref="LoraLimits.MaxFileBytes"/>.</summary>
    FileTooLarge,

    /// <summary>Not valid JSON / safetensors / GGUF, or a key of the wrong type.</summary>
    MalformedFile,

    /// <summary>A NaN or infinity in a tensor (or in lora_alpha).</summary>
    NonFiniteValue,

    /// <summary>A well-formed adapter using a feature Sirocco does not implement (DoRA, biases, regex targets …).</summary>
    Unsupported,
}

/// <summary>A LoRA adapter cannot be loaded. The message names the file, the key or tensor, and what was expected
/// versus what was found.</summary>
public sealed class LoraFormatException : Exception
{
    public LoraFormatException(LoraErrorKind kind, string path, string field, string expected, string found, Exception? inner = null)
        : base($"{Path.GetFileName(path)}: {field}: expected {expected}, found {found}", inner)
    {
        Kind = kind;
        FilePath = path;
        Field = field;
    }

    public LoraFormatException(LoraErrorKind kind, string path, string message, Exception? inner = null)
        : base($"{Path.GetFileName(path)}: {message}", inner)
    {
        Kind = kind;
        FilePath = path;
        Field = "";
    }

    public LoraFormatException() : this(LoraErrorKind.MalformedFile, "adapter", "malformed LoRA adapter")
    {
    }

    public LoraFormatException(string message) : this(LoraErrorKind.MalformedFile, "adapter", message)
    {
    }

    public LoraFormatException(string message, Exception inner) : this(LoraErrorKind.MalformedFile, "adapter", message, inner)
    {
    }

    public LoraErrorKind Kind { get; }

    /// <summary>The file at fault (full path as given).</summary>
    public string FilePath { get; }

    /// <summary>The key or tensor at fault; empty when the message is free-form.</summary>
    public string Field { get; }
}
