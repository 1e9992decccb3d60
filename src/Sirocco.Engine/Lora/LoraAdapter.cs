// A loaded LoRA adapter applied unmerged: for each adapted projection W of each layer, the forward pass computes
// W·x as usual and then adds s·B·(A·x) for the sequences that use this adapter (LlamaModel's IProjectionAdapter
// seam). One adapter object may serve many sequences at once. Loading lives in the partial files
// LoraAdapter.Peft.cs (Hugging Face PEFT directories) and LoraAdapter.Gguf.cs (llama.cpp adapter files); the
// checks and the conversion to the base model's layout they share are below.

using Sirocco.Engine.Model;

namespace Sirocco.Engine.Lora;

/// <summary>A LoRA adapter for one base model, held in f32 and applied without merging.</summary>
/// <remarks>
/// Scaling follows the format: PEFT uses s = α/r per module (α/√r with <c>use_rslora</c>), ranks and alphas taken
/// from rank_pattern/alpha_pattern where they match; llama.cpp GGUF adapters use s = α/r with the file's
/// <c>adapter.lora.alpha</c>, or s = 1 when it is absent or zero. B's rows of q_proj and k_proj are stored in the base
/// model's q/k order (see <see cref="RopeRowOrder"/>): a PEFT adapter on a GGUF model, or a GGUF adapter on a Hugging
/// Face model, is permuted at load, so an adapter object belongs to the layout of the model it was loaded for.
/// Immutable after loading; <see cref="AddDelta"/> is thread-safe.
/// </remarks>
public sealed partial class LoraAdapter : IProjectionAdapter
{
    private readonly LoraProjection?[] _projections; // [layer * 7 + LoraModules.IndexOf(role)]
    private readonly int _layerCount;

    private LoraAdapter(LoraProjection?[] projections, int layerCount, string sourcePath, string format, string scaling)
    {
        _projections = projections;
        _layerCount = layerCount;
        SourcePath = sourcePath;
        LoraProjection[] present = [.. projections.OfType<LoraProjection>()];
        Rank = present.Max(p => p.Rank);
        SizeBytes = present.Sum(p => p.Bytes) + (long)projections.Length * IntPtr.Size;
        TargetRoles = [.. LoraModules.All.Select(m => m.Role).Where(role => present.Any(p => p.Module.Role == role))];
        ModuleCount = present.Length;
        int layers = present.Select(p => p.Layer).Distinct().Count();
        string ranks = present.Select(p => p.Rank).Distinct().Count() == 1 ? $"r={Rank}" : $"r≤{Rank}";
        string modules = string.Join(", ", LoraModules.All.Where(m => TargetRoles.Contains(m.Role)).Select(m => m.PeftName));
        Description = $"{format} LoRA {ranks}, {scaling}, on {modules} in {layers} of {layerCount} layers ({SizeBytes / 1e6:0.0} MB in memory)";
    }

    /// <summary>The largest rank of any adapted module.</summary>
    public int Rank { get; }

    /// <summary>Bytes held in memory (the f32 A and B matrices and the lookup table), for caches that evict by size.</summary>
    public long SizeBytes { get; }

    /// <summary>The projections adapted in at least one layer, in forward order.</summary>
    public IReadOnlyCollection<LlamaTensorRole> TargetRoles { get; }

    /// <summary>How many (layer, projection) pairs are adapted.</summary>
    public int ModuleCount { get; }

    /// <summary>One line for logs: format, rank, scaling, modules, layers and memory.</summary>
    public string Description { get; }

    /// <summary>The directory or file the adapter came from.</summary>
    public string SourcePath { get; }

    /// <inheritdoc/>
    public bool Targets(int layer, LlamaTensorRole role) => Find(layer, role) is not null;

    /// <summary>output += s·B·(A·input) for one token row of <paramref name="role"/> in <paramref name="layer"/>.</summary>
    /// <exception cref="ArgumentException">The adapter does not target that projection (check <see cref="Targets"/>),
    /// or the spans do not have the projection's input and output widths.</exception>
    public void AddDelta(int layer, LlamaTensorRole role, ReadOnlySpan<float> input, Span<float> output)
    {
        LoraProjection projection = Find(layer, role) ?? throw new ArgumentException($"the adapter does not target {role} in layer {layer}", nameof(role));
        projection.AddDelta(input, output);
    }

    public override string ToString() => Description;

    /// <summary>The projection of (layer, role), or null (tests read the stored factors through it).</summary>
    internal LoraProjection? Find(int layer, LlamaTensorRole role)
    {
        int index = LoraModules.IndexOf(role);
        return (uint)layer < (uint)_layerCount && index >= 0 ? _projections[layer * LoraModules.All.Count + index] : null;
    }

    /// <summary>Loads <paramref name="path"/>: a directory holding adapter_config.json and adapter_model.safetensors
    /// (either file's path also names its directory), or a llama.cpp .gguf adapter.</summary>
    /// <exception cref="LoraFormatException">The adapter is missing, malformed, over the limits, or does not fit
    /// <paramref name="baseModel"/>; <see cref="LoraFormatException.Kind"/> says which.</exception>
    public static LoraAdapter Load(string path, ModelWeights baseModel, LoraLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(baseModel);
        string directory = path;
        if (File.Exists(path))
        {
            string name = Path.GetFileName(path);
            if (name is PeftAdapterConfig.FileName or PeftWeightsFileName)
            {
                directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
            }
            else
            {
                return LoadGguf(path, baseModel, limits);
            }
        }
        if (!Directory.Exists(directory))
        {
            throw new LoraFormatException(LoraErrorKind.MissingFile, path,
                $"no such file or directory (a LoRA adapter is a directory with {PeftAdapterConfig.FileName} and {PeftWeightsFileName}, or a .gguf file)");
        }
        return LoadPeft(Path.Combine(directory, PeftAdapterConfig.FileName), Path.Combine(directory, PeftWeightsFileName), baseModel, limits);
    }

    /// <summary>Collects the projections of an adapter being loaded: checks each pair of tensors against the base
    /// model and the limits, reads them, rejects non-finite values, and converts B to the base model's q/k order.</summary>
    private sealed class Builder(ModelWeights baseModel, LoraLimits limits, string path, bool isHuggingFaceOrder)
    {
        private readonly LoraProjection?[] _projections = new LoraProjection?[baseModel.Config.LayerCount * LoraModules.All.Count];

        public int LayerCount => baseModel.Config.LayerCount;

        public bool Has(int layer, LoraModule module) => _projections[layer * LoraModules.All.Count + LoraModules.IndexOf(module.Role)] is not null;

        /// <summary>Checks the shapes of one A/B pair, in PyTorch order (A [r, in], B [out, r]).</summary>
        /// <param name="configuredRank">The rank the adapter's config gives this module, or null (GGUF has none).</param>
        /// <returns>The rank.</returns>
        public int CheckShapes(int layer, LoraModule module, string nameA, long[] shapeA, string nameB, long[] shapeB, int? configuredRank)
        {
            (int outputs, int inputs) = BaseShape(layer, module);
            if (shapeA.Length != 2 || shapeA[1] != inputs || shapeA[0] < 1)
            {
                throw new LoraFormatException(LoraErrorKind.ShapeMismatch, path, $"tensor {nameA}",
                    $"shape [r, {inputs}] (rank × {module.PeftName}'s {inputs} inputs in this model)", Shape(shapeA));
            }
            long rank = shapeA[0];
            if (shapeB.Length != 2 || shapeB[0] != outputs || shapeB[1] != rank)
            {
                throw new LoraFormatException(LoraErrorKind.ShapeMismatch, path, $"tensor {nameB}",
                    $"shape [{outputs}, {rank}] ({module.PeftName}'s {outputs} outputs in this model × the rank of {nameA})", Shape(shapeB));
            }
            if (rank > limits.MaxRank)
            {
                throw new LoraFormatException(LoraErrorKind.RankTooLarge, path, $"tensor {nameA}", $"a rank of at most {limits.MaxRank}", $"rank {rank}");
            }
            if (configuredRank is int r && r != rank)
            {
                throw new LoraFormatException(LoraErrorKind.ShapeMismatch, path, $"tensor {nameA}",
                    $"rank {r} as {PeftAdapterConfig.FileName} gives {module.PeftName} (r or rank_pattern)", $"shape {Shape(shapeA)}");
            }
            return (int)rank;
        }

        /// <summary>Adds a checked pair. <paramref name="a"/> is A [rank × in], <paramref name="b"/> is B [out × rank],
        /// both row-major in the adapter's own q/k order.</summary>
        public void Add(int layer, LoraModule module, int rank, double scale, string nameA, float[] a, string nameB, float[] b)
        {
            (int outputs, int inputs) = BaseShape(layer, module);
            CheckFinite(nameA, a);
            CheckFinite(nameB, b);
            if (!double.IsFinite(scale) || !float.IsFinite((float)scale))
            {
                throw new LoraFormatException(LoraErrorKind.NonFiniteValue, path, $"scale of {module.ModulePath(layer)}", "a finite α/r", scale.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            // Bᵀ[j][row] = B[sourceRow(row)][j]. q/k rows move between the Hugging Face (rotate-half) and GGUF
            // (interleaved) orders exactly as the base model's own rows did (RopeRowOrder), so B·(A·x) lands on the
            // same output dimension as W·x.
            int headDim = baseModel.Config.HeadDim;
            bool rotary = module.Role is LlamaTensorRole.Query or LlamaTensorRole.Key;
            bool baseIsGguf = baseModel.RopeStyle == Sirocco.Kernels.Simd.RopeStyle.Interleaved;
            Func<int, int> sourceRow = !rotary || isHuggingFaceOrder != baseIsGguf ? row => row
                : isHuggingFaceOrder ? row => (int)RopeRowOrder.HfRowOfGgufRow(row, headDim)
                : row => (int)RopeRowOrder.GgufRowOfHfRow(row, headDim);
            var bT = new float[b.Length];
            for (int row = 0; row < outputs; row++)
            {
                int from = sourceRow(row) * rank;
                for (int j = 0; j < rank; j++)
                {
                    bT[j * outputs + row] = b[from + j];
                }
            }
            _projections[layer * LoraModules.All.Count + LoraModules.IndexOf(module.Role)] =
                new LoraProjection(module, layer, rank, inputs, outputs, (float)scale, a, bT);
        }

        public LoraAdapter Build(string format, string scaling)
        {
            if (!_projections.Any(p => p is not null))
            {
                throw new LoraFormatException(LoraErrorKind.MissingTensor, path, "tensors", "at least one lora_A/lora_B pair", "none");
            }
            return new LoraAdapter(_projections, LayerCount, path, format, scaling);
        }

        /// <summary>(rows, columns) of the base matrix: PyTorch [out, in].</summary>
        private (int Outputs, int Inputs) BaseShape(int layer, LoraModule module)
        {
            LayerWeights weights = baseModel.Layers[layer];
            Sirocco.Kernels.WeightMatrix matrix = module.Role switch
            {
                LlamaTensorRole.Query => weights.Query,
                LlamaTensorRole.Key => weights.Key,
                LlamaTensorRole.Value => weights.Value,
                LlamaTensorRole.AttentionOutput => weights.AttentionOutput,
                LlamaTensorRole.Gate => weights.Gate,
                LlamaTensorRole.Up => weights.Up,
                _ => weights.Down,
            };
            return (matrix.Rows, matrix.Columns);
        }

        private void CheckFinite(string name, float[] values)
        {
            for (int i = 0; i < values.Length; i++)
            {
                if (!float.IsFinite(values[i]))
                {
                    throw new LoraFormatException(LoraErrorKind.NonFiniteValue, path, $"tensor {name}", "finite values", $"{values[i]} at element {i}");
                }
            }
        }

        private static string Shape(long[] shape) => $"[{string.Join(", ", shape)}]";
    }

    /// <summary>"α=16, s=α/r" style text for the description.</summary>
    private static string FormatScaling(string rule, double alpha) =>
        $"alpha {alpha.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)} ({rule})";
}
