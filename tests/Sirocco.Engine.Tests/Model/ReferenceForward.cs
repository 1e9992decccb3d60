// The specification of the forward pass: a Llama/Mistral decoder in plain float64 loops, no KV cache, every position
// recomputed from the embeddings. Engine tests compare the fast forward pass (and KV-cached decoding) against it;
// ReferenceForwardTests checks it against itself across file formats. Readable against the Llama paper, not fast.

using Sirocco.Engine.Formats;
using Sirocco.Engine.Formats.Gguf;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Model;
using Sirocco.Kernels.Reference;

namespace Sirocco.Engine.Tests.Model;

/// <summary>Which RoPE pairing a checkpoint's q/k rows expect (see <see cref="RopeRowOrder"/>).</summary>
public enum RopePairing
{
    /// <summary>GGUF (llama.cpp's converter permuted q/k rows back to Meta's order): dimension 2i pairs with 2i+1.</summary>
    Adjacent,

    /// <summary>Hugging Face "rotate half": dimension i pairs with i + HeadDim/2.</summary>
    HalfSplit,
}

/// <summary>A whole model held as float64 arrays, and a forward pass over it that recomputes everything.</summary>
/// <remarks>Load with <see cref="Load"/> (a GGUF file of any supported tensor type, or a Hugging Face safetensors
/// directory), then call <see cref="Logits"/>. Matrices are [out][in] (PyTorch order) in both layouts; only the q/k
/// row order differs, and with it the RoPE pairing. Memory: about 2 · VocabSize · ModelDim doubles plus the layers
/// (130 MB for <c>SyntheticPresets.Tiny</c>), so keep to tiny models.</remarks>
public sealed class ReferenceForward
{
    private readonly double[][] _embedding; // [VocabSize][ModelDim]
    private readonly LayerWeights[] _layers; // [LayerCount]
    private readonly double[] _outputNorm; // [ModelDim]
    private readonly double[][] _output; // [VocabSize][ModelDim]; the embedding itself when tied

    /// <summary>One decoder layer's weights. Matrices are [out][in].</summary>
    private sealed record LayerWeights(
        double[] AttentionNorm, // [ModelDim]
        double[][] Query, // [HeadCount·HeadDim][ModelDim]
        double[][] Key, // [KvHeadCount·HeadDim][ModelDim]
        double[][] Value, // [KvHeadCount·HeadDim][ModelDim]
        double[][] AttentionOutput, // [ModelDim][HeadCount·HeadDim]
        double[] FeedForwardNorm, // [ModelDim]
        double[][] Gate, // [HiddenDim][ModelDim]
        double[][] Up, // [HiddenDim][ModelDim]
        double[][] Down); // [ModelDim][HiddenDim]

    private ReferenceForward(ModelConfig config, RopePairing pairing, Func<LlamaTensor, double[][]> read)
    {
        if (config.RopeDim != 0 && config.RopeDim != config.HeadDim)
        {
            throw new NotSupportedException($"the reference rotates whole heads; RopeDim {config.RopeDim} differs from HeadDim {config.HeadDim}");
        }
        Config = config;
        Pairing = pairing;
        var tensors = LlamaTensors.For(config).ToDictionary(t => (t.Role, t.Layer));
        double[][] Matrix(LlamaTensorRole role, int layer = -1) => read(tensors[(role, layer)]);
        double[] Vector(LlamaTensorRole role, int layer = -1) => read(tensors[(role, layer)])[0];

        _embedding = Matrix(LlamaTensorRole.TokenEmbedding);
        _layers = new LayerWeights[config.LayerCount];
        for (int l = 0; l < config.LayerCount; l++)
        {
            _layers[l] = new LayerWeights(
                Vector(LlamaTensorRole.AttentionNorm, l),
                Matrix(LlamaTensorRole.Query, l),
                Matrix(LlamaTensorRole.Key, l),
                Matrix(LlamaTensorRole.Value, l),
                Matrix(LlamaTensorRole.AttentionOutput, l),
                Vector(LlamaTensorRole.FeedForwardNorm, l),
                Matrix(LlamaTensorRole.Gate, l),
                Matrix(LlamaTensorRole.Up, l),
                Matrix(LlamaTensorRole.Down, l));
        }
        _outputNorm = Vector(LlamaTensorRole.OutputNorm);
        _output = config.TiedEmbeddings ? _embedding : Matrix(LlamaTensorRole.Output);
    }

    /// <summary>The model's hyperparameters, as read from the file.</summary>
    public ModelConfig Config { get; }

    /// <summary>The RoPE pairing the loaded layout needs: <see cref="RopePairing.Adjacent"/> for GGUF,
    /// <see cref="RopePairing.HalfSplit"/> for Hugging Face.</summary>
    public RopePairing Pairing { get; }

    /// <summary>Loads every weight of <paramref name="path"/>: a directory is a Hugging Face checkpoint (config.json plus
    /// safetensors, F32/F16/BF16), anything else a GGUF file (any type <see cref="Dequantize.Row"/> accepts).</summary>
    /// <exception cref="ModelFormatException">A tensor is missing or has the wrong shape.</exception>
    /// <exception cref="NotSupportedException">A tensor type without a reference dequantizer, or partial RoPE.</exception>
    public static ReferenceForward Load(string path) =>
        Directory.Exists(path) ? LoadHuggingFace(path) : LoadGguf(path);

    private static ReferenceForward LoadGguf(string path)
    {
        using var file = GgufFile.Open(path);
        var config = LlamaGgufMetadata.ReadConfig(file);
        return new ReferenceForward(config, RopePairing.Adjacent, spec =>
        {
            var info = file.GetTensor(spec.GgufName);
            if (!info.Dimensions.SequenceEqual(spec.GgufDimensions))
            {
                throw new ModelFormatException(path, $"tensor {spec.GgufName}", info.Offset,
                    $"dimensions [{string.Join(", ", spec.GgufDimensions)}]", $"[{string.Join(", ", info.Dimensions)}]");
            }
            var rows = new double[spec.Rows][];
            var row = new float[spec.Columns];
            for (int r = 0; r < rows.Length; r++)
            {
                Dequantize.Row(info.Type, file.TensorRows(info, r, 1), row);
                rows[r] = Array.ConvertAll(row, v => (double)v);
            }
            return rows;
        });
    }

    private static ReferenceForward LoadHuggingFace(string directory)
    {
        var config = HfConfig.Load(directory);
        using var checkpoint = SafeTensorCheckpoint.Open(directory);
        return new ReferenceForward(config, RopePairing.HalfSplit, spec =>
        {
            var info = checkpoint.GetWeight(spec.HfName);
            if (!info.Shape.SequenceEqual(spec.HfShape))
            {
                throw new ModelFormatException(directory, $"tensor {spec.HfName}", info.DataOffset,
                    $"shape [{string.Join(", ", spec.HfShape)}]", $"[{string.Join(", ", info.Shape)}]");
            }
            float[] all = checkpoint.ReadFloats(spec.HfName); // row-major [Rows][Columns]
            var rows = new double[spec.Rows][];
            for (int r = 0; r < rows.Length; r++)
            {
                rows[r] = new double[spec.Columns];
                for (int c = 0; c < spec.Columns; c++)
                {
                    rows[r][c] = all[r * spec.Columns + c];
                }
            }
            return rows;
        });
    }

    /// <summary>The logits at every position of <paramref name="tokens"/> (position p sees tokens 0..p): result
    /// [position][VocabSize]. Positions start at 0 with the first token.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A token id outside the vocabulary.</exception>
    /// <exception cref="NotSupportedException">The model has a sliding window shorter than the sequence.</exception>
    public double[][] Logits(IReadOnlyList<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var c = Config;
        if (c.SlidingWindow is int window && tokens.Count > window)
        {
            throw new NotSupportedException($"the reference has no sliding window; {tokens.Count} tokens exceed the model's {window}");
        }
        int n = tokens.Count;
        int headDim = c.HeadDim;
        int group = c.HeadCount / c.KvHeadCount; // query heads per KV head

        // 1. Token embeddings: the residual stream x, [position][ModelDim].
        var x = new double[n][];
        for (int t = 0; t < n; t++)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(tokens[t], nameof(tokens));
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(tokens[t], c.VocabSize, nameof(tokens));
            x[t] = (double[])_embedding[tokens[t]].Clone();
        }

        foreach (var layer in _layers)
        {
            // 2. Attention block. q, k, v for every position from the normalised stream, RoPE on q and k.
            var q = new double[n][]; // [position][HeadCount·HeadDim]
            var k = new double[n][]; // [position][KvHeadCount·HeadDim]
            var v = new double[n][]; // [position][KvHeadCount·HeadDim]
            for (int t = 0; t < n; t++)
            {
                double[] xn = RmsNorm(x[t], layer.AttentionNorm, c.RmsNormEps);
                q[t] = MatVec(layer.Query, xn);
                k[t] = MatVec(layer.Key, xn);
                v[t] = MatVec(layer.Value, xn);
                for (int h = 0; h < c.HeadCount; h++)
                {
                    Rope(q[t], h * headDim, headDim, t, c.RopeTheta, Pairing);
                }
                for (int h = 0; h < c.KvHeadCount; h++)
                {
                    Rope(k[t], h * headDim, headDim, t, c.RopeTheta, Pairing);
                }
            }

            // Causal scaled dot-product attention: position t attends to positions 0..t. Query head h reads KV head
            // h / group (grouped-query attention, Ainslie et al. 2023).
            double scale = 1.0 / Math.Sqrt(headDim);
            for (int t = 0; t < n; t++)
            {
                var attended = new double[c.HeadCount * headDim]; // heads concatenated, the input of Wo
                for (int h = 0; h < c.HeadCount; h++)
                {
                    int qBase = h * headDim;
                    int kvBase = h / group * headDim;
                    var scores = new double[t + 1];
                    for (int s = 0; s <= t; s++)
                    {
                        double dot = 0;
                        for (int d = 0; d < headDim; d++)
                        {
                            dot += q[t][qBase + d] * k[s][kvBase + d];
                        }
                        scores[s] = dot * scale;
                    }
                    Softmax(scores);
                    for (int s = 0; s <= t; s++)
                    {
                        for (int d = 0; d < headDim; d++)
                        {
                            attended[qBase + d] += scores[s] * v[s][kvBase + d];
                        }
                    }
                }
                // Output projection, then the residual connection.
                AddInPlace(x[t], MatVec(layer.AttentionOutput, attended));
            }

            // 3. Feed-forward block (SwiGLU, Shazeer 2020): down(silu(gate(xn)) · up(xn)), then the residual.
            for (int t = 0; t < n; t++)
            {
                double[] xn = RmsNorm(x[t], layer.FeedForwardNorm, c.RmsNormEps);
                double[] gate = MatVec(layer.Gate, xn);
                double[] up = MatVec(layer.Up, xn);
                var hidden = new double[c.HiddenDim];
                for (int i = 0; i < hidden.Length; i++)
                {
                    hidden[i] = Silu(gate[i]) * up[i];
                }
                AddInPlace(x[t], MatVec(layer.Down, hidden));
            }
        }

        // 4. Final RMSNorm and the output head: logits[t] = Woutput · norm(x[t]).
        var logits = new double[n][];
        for (int t = 0; t < n; t++)
        {
            logits[t] = MatVec(_output, RmsNorm(x[t], _outputNorm, c.RmsNormEps));
        }
        return logits;
    }

    /// <summary>RMSNorm (Zhang and Sennrich 2019): x / sqrt(mean(x²) + eps) · w, into a new array.</summary>
    private static double[] RmsNorm(double[] x, double[] weight, double eps)
    {
        double sumSquares = 0;
        foreach (double value in x)
        {
            sumSquares += value * value;
        }
        double inverseRms = 1.0 / Math.Sqrt(sumSquares / x.Length + eps);
        var result = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            result[i] = x[i] * inverseRms * weight[i];
        }
        return result;
    }

    /// <summary>y = W·x for W stored [out][in].</summary>
    private static double[] MatVec(double[][] w, double[] x)
    {
        var y = new double[w.Length];
        for (int r = 0; r < w.Length; r++)
        {
            double[] row = w[r];
            double sum = 0;
            for (int i = 0; i < x.Length; i++)
            {
                sum += row[i] * x[i];
            }
            y[r] = sum;
        }
        return y;
    }

    /// <summary>Rotary position embedding (Su et al. 2021, RoFormer eq. 34) of one head
    /// <c>vector[offset .. offset + headDim)</c> at <paramref name="position"/>: pair i (0 ≤ i &lt; headDim/2) turns by
    /// the angle position · θ_i with θ_i = theta^(−2i/headDim). Which two dimensions form pair i depends on the layout:
    /// (2i, 2i+1) in GGUF, (i, i + headDim/2) in Hugging Face.</summary>
    private static void Rope(double[] vector, int offset, int headDim, int position, double theta, RopePairing pairing)
    {
        int half = headDim / 2;
        for (int i = 0; i < half; i++)
        {
            double frequency = Math.Pow(theta, -2.0 * i / headDim);
            double angle = position * frequency;
            double cos = Math.Cos(angle), sin = Math.Sin(angle);
            (int a, int b) = pairing == RopePairing.Adjacent ? (2 * i, 2 * i + 1) : (i, i + half);
            double x0 = vector[offset + a];
            double x1 = vector[offset + b];
            vector[offset + a] = x0 * cos - x1 * sin;
            vector[offset + b] = x0 * sin + x1 * cos;
        }
    }

    /// <summary>In-place softmax, shifted by the maximum so exp never overflows.</summary>
    private static void Softmax(double[] values)
    {
        double max = values.Max();
        double sum = 0;
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = Math.Exp(values[i] - max);
            sum += values[i];
        }
        for (int i = 0; i < values.Length; i++)
        {
            values[i] /= sum;
        }
    }

    /// <summary>SiLU (swish): x · sigmoid(x).</summary>
    private static double Silu(double x) => x / (1.0 + Math.Exp(-x));

    private static void AddInPlace(double[] target, double[] addend)
    {
        for (int i = 0; i < target.Length; i++)
        {
            target[i] += addend[i];
        }
    }
}
