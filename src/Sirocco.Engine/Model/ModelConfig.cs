// The hyperparameters of a Llama-family decoder (Mistral-7B is one), whatever file they came from: GGUF metadata
// (Formats/Gguf) and Hugging Face config.json (Formats/SafeTensors) both map onto this one type.

namespace Sirocco.Engine.Model;

/// <summary>Shape and constants of a Mistral/Llama decoder. Names follow the glossary in docs/ARCHITECTURE.md.</summary>
public sealed record ModelConfig
{
    /// <summary>Architecture name as GGUF spells it (<c>general.architecture</c>); "llama" for Mistral.</summary>
    public string Architecture { get; init; } = "llama";

    /// <summary>Residual stream width. GGUF <c>llama.embedding_length</c>, HF <c>hidden_size</c>.</summary>
    public required int ModelDim { get; init; }

    /// <summary>Feed-forward inner width. GGUF <c>llama.feed_forward_length</c>, HF <c>intermediate_size</c>.</summary>
    public required int HiddenDim { get; init; }

    /// <summary>Decoder layers. GGUF <c>llama.block_count</c>, HF <c>num_hidden_layers</c>.</summary>
    public required int LayerCount { get; init; }

    /// <summary>Query heads. GGUF <c>llama.attention.head_count</c>, HF <c>num_attention_heads</c>.</summary>
    public required int HeadCount { get; init; }

    /// <summary>Key/value heads (grouped-query attention). GGUF <c>llama.attention.head_count_kv</c>, HF <c>num_key_value_heads</c>.</summary>
    public required int KvHeadCount { get; init; }

    /// <summary>Width of one head. HF <c>head_dim</c> when present, else ModelDim / HeadCount.</summary>
    public required int HeadDim { get; init; }

    /// <summary>Dimensions rotated by RoPE (GGUF <c>llama.rope.dimension_count</c>); HeadDim for Mistral.</summary>
    public int RopeDim { get; init; }

    /// <summary>Vocabulary size (rows of the embedding and of the output head).</summary>
    public required int VocabSize { get; init; }

    /// <summary>Trained context window. GGUF <c>llama.context_length</c>, HF <c>max_position_embeddings</c>.</summary>
    public required int ContextLength { get; init; }

    /// <summary>RoPE base frequency. GGUF <c>llama.rope.freq_base</c>, HF <c>rope_theta</c>.</summary>
    public float RopeTheta { get; init; } = 10000f;

    /// <summary>RMSNorm epsilon. GGUF <c>llama.attention.layer_norm_rms_epsilon</c>, HF <c>rms_norm_eps</c>.</summary>
    public float RmsNormEps { get; init; } = 1e-5f;

    /// <summary>Sliding attention window, or null for full causal attention (Mistral v0.2 has none).</summary>
    public int? SlidingWindow { get; init; }

    /// <summary>True when the output head reuses the token embedding (not the case for Mistral).</summary>
    public bool TiedEmbeddings { get; init; }

    public int BosId { get; init; } = 1;

    public int EosId { get; init; } = 2;

    public int UnkId { get; init; }

    /// <summary>Query heads sharing one KV head.</summary>
    public int GroupSize => HeadCount / KvHeadCount;

    /// <summary>Mistral-7B-Instruct-v0.2, as published.</summary>
    public static ModelConfig Mistral7B { get; } = new()
    {
        ModelDim = 4096,
        HiddenDim = 14336,
        LayerCount = 32,
        HeadCount = 32,
        KvHeadCount = 8,
        HeadDim = 128,
        RopeDim = 128,
        VocabSize = 32000,
        ContextLength = 32768,
        RopeTheta = 1_000_000f,
        RmsNormEps = 1e-5f,
    };

    /// <summary>Checks that the numbers describe a model this engine can run; returns the problems found, empty if none.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        void Positive(string name, long value)
        {
            if (value <= 0)
            {
                problems.Add($"{name} must be positive, found {value}");
            }
        }
        Positive(nameof(ModelDim), ModelDim);
        Positive(nameof(HiddenDim), HiddenDim);
        Positive(nameof(LayerCount), LayerCount);
        Positive(nameof(HeadCount), HeadCount);
        Positive(nameof(KvHeadCount), KvHeadCount);
        Positive(nameof(HeadDim), HeadDim);
        Positive(nameof(VocabSize), VocabSize);
        Positive(nameof(ContextLength), ContextLength);
        if (HeadCount > 0 && KvHeadCount > 0 && HeadCount % KvHeadCount != 0)
        {
            problems.Add($"HeadCount {HeadCount} must be a multiple of KvHeadCount {KvHeadCount}");
        }
        if (HeadDim % 2 != 0)
        {
            problems.Add($"HeadDim must be even for RoPE, found {HeadDim}");
        }
        if (RopeDim != 0 && (RopeDim > HeadDim || RopeDim % 2 != 0))
        {
            problems.Add($"RopeDim must be even and at most HeadDim {HeadDim}, found {RopeDim}");
        }
        if (!(RopeTheta > 0) || float.IsInfinity(RopeTheta))
        {
            problems.Add($"RopeTheta must be a positive finite number, found {RopeTheta}");
        }
        if (!(RmsNormEps > 0) || RmsNormEps >= 1)
        {
            problems.Add($"RmsNormEps must be in (0, 1), found {RmsNormEps}");
        }
        return problems;
    }
}
