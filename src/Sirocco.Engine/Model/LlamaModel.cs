// The forward pass of a Llama/Mistral decoder over a batch of sequences. One call takes any mix of prompt chunks
// (prefill: many tokens of one sequence, multiplied as a matrix) and decode steps (one token of each of several
// sequences), each sequence at its own position with its own KV cache, and leaves logits for the positions asked.
//
// Per layer, for all T tokens of the batch at once:
//   xn = RMSNorm(x)            q, k, v = Wq·xn, Wk·xn, Wv·xn       RoPE(q, k) at each token's position
//   store k, v in each token's sequence cache                         a = attention(q, cache) per (token, head)
//   x += Wo·a                  xn = RMSNorm(x)                        x += Wdown·(SiLU(Wgate·xn) · Wup·xn)
// then logits = Woutput·RMSNorm(x) for the rows asked. Matrix products and attention run on the worker pool; the
// cheap per-token steps (norms, RoPE, cache stores) on the calling thread.

using Sirocco.Engine.Threading;
using Sirocco.Kernels;
using Sirocco.Kernels.Memory;
using Sirocco.Kernels.Quant;
using Dequantize = Sirocco.Kernels.Reference.Dequantize;
using Sirocco.Kernels.Simd;

namespace Sirocco.Engine.Model;

/// <summary>Which logits a sequence wants from a forward pass.</summary>
public enum LogitsWanted
{
    /// <summary>None (a prompt chunk that is not the last).</summary>
    None,

    /// <summary>The last position's (what generation samples from).</summary>
    Last,

    /// <summary>Every position's (for scoring, or checking a model against another implementation).</summary>
    All,
}

/// <summary>Adds a per-sequence correction to a projection's output: the seam for unmerged LoRA adapters, which add
/// s·B·(A·x) to the base product W·x of the targeted matrices.</summary>
/// <remarks>The forward pass calls <see cref="AddDelta"/> after the product and before RoPE, once per token row, from
/// any of its worker threads and concurrently for different rows and projections (one adapter may also serve several
/// sequences of a batch), so implementations must be thread-safe.</remarks>
public interface IProjectionAdapter
{
    /// <summary>Whether this adapter touches <paramref name="role"/> in <paramref name="layer"/>.</summary>
    bool Targets(int layer, LlamaTensorRole role);

    /// <summary>output += Δ(input) for one token row of <paramref name="role"/> in <paramref name="layer"/>.</summary>
    void AddDelta(int layer, LlamaTensorRole role, ReadOnlySpan<float> input, Span<float> output);
}

/// <summary>One sequence's part of a batch: tokens to append to its cache.</summary>
/// <param name="Cache">The sequence's KV cache; the tokens go at positions Cache.Length onwards.</param>
/// <param name="Tokens">Token ids to process (at least one).</param>
/// <param name="Logits">Which logits to keep.</param>
/// <param name="Adapter">A per-sequence adapter (LoRA), or null for the base model.</param>
public readonly record struct SequenceInput(KvSequence Cache, ReadOnlyMemory<int> Tokens, LogitsWanted Logits = LogitsWanted.Last, IProjectionAdapter? Adapter = null);

/// <summary>A loaded model ready to run: weights, a worker pool and the scratch memory of one forward pass.</summary>
/// <remarks>One <see cref="Forward"/> at a time (the scheduler is its single caller). KV caches come from pools made
/// by <see cref="CreateCache"/>; any number of sequences may be alive at once.</remarks>
public sealed class LlamaModel : IDisposable
{
    private readonly WorkerPool _pool;
    private readonly bool _ownsPool;
    private readonly MatMulJob _matMul = new();
    private readonly QuantizeJob _quantize = new();
    private readonly AttentionJob _attention;
    private readonly AdapterJob _adapterJob;
    private readonly int _ropeDim;

    // Scratch, T × width each (T = MaxBatchTokens).
    private readonly NativeBuffer<float> _x, _xn, _q, _k, _v, _att, _tmp, _gate, _up;
    private readonly NativeBuffer<byte> _actA, _actB; // activation rows in a weight type's format (two formats at once)
    private readonly NativeBuffer<float> _cos, _sin;
    private readonly KvSequence[] _tokenSequence;
    private readonly IProjectionAdapter?[] _tokenAdapter;
    private readonly int[] _tokenPosition, _tokenInput, _logitToken;
    private NativeBuffer<float> _logits;
    private int _logitRows;

    /// <summary>Wraps <paramref name="weights"/> (owned: disposed with the model).</summary>
    /// <param name="threads">Threads for the parallel steps (0: one per core), ignored when <paramref name="pool"/> is given.</param>
    /// <param name="maxBatchTokens">Most tokens one <see cref="Forward"/> takes (longer prompts go in chunks).</param>
    public LlamaModel(ModelWeights weights, int threads = 0, int maxBatchTokens = 512, WorkerPool? pool = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchTokens, 1);
        Weights = weights;
        Config = weights.Config;
        MaxBatchTokens = maxBatchTokens;
        _ownsPool = pool is null;
        _pool = pool ?? new WorkerPool(threads);
        _attention = new AttentionJob(Config, _pool.ThreadCount, maxBatchTokens);
        _ropeDim = Config.RopeDim == 0 ? Config.HeadDim : Config.RopeDim;

        int t = maxBatchTokens, d = Config.ModelDim, h = Config.HiddenDim;
        int qDim = Config.HeadCount * Config.HeadDim, kvDim = Config.KvHeadCount * Config.HeadDim;
        _x = new NativeBuffer<float>((long)t * d);
        _xn = new NativeBuffer<float>((long)t * Math.Max(d, qDim));
        _q = new NativeBuffer<float>((long)t * qDim);
        _k = new NativeBuffer<float>((long)t * kvDim);
        _v = new NativeBuffer<float>((long)t * kvDim);
        _att = new NativeBuffer<float>((long)t * qDim);
        _tmp = new NativeBuffer<float>((long)t * d);
        _gate = new NativeBuffer<float>((long)t * h);
        _up = new NativeBuffer<float>((long)t * h);
        int widest = Math.Max(Math.Max(d, h), qDim);
        long actRow = new[] { GgmlType.F32, GgmlType.Q8_0, GgmlType.Q4_K }
            .Max(type => (long)MatMul.ActivationRowBytes(type, widest)); // one weight type per activation format
        _actA = new NativeBuffer<byte>(t * actRow);
        _actB = new NativeBuffer<byte>(t * actRow);
        _cos = new NativeBuffer<float>((long)t * _ropeDim / 2);
        _sin = new NativeBuffer<float>((long)t * _ropeDim / 2);
        _tokenSequence = new KvSequence[t];
        _tokenAdapter = new IProjectionAdapter?[t];
        _adapterJob = new AdapterJob(t, _tokenAdapter);
        _tokenPosition = new int[t];
        _tokenInput = new int[t];
        _logitToken = new int[t];
        _logits = new NativeBuffer<float>(Config.VocabSize);
    }

    public ModelConfig Config { get; }

    public ModelWeights Weights { get; }

    public int MaxBatchTokens { get; }

    public int ThreadCount => _pool.ThreadCount;

    /// <summary>Bytes allocated so far by the worker threads (see <see cref="WorkerPool.WorkerAllocatedBytes"/>).</summary>
    public long WorkerAllocatedBytes => _pool.WorkerAllocatedBytes;

    /// <summary>A KV cache pool for this model's shape.</summary>
    public KvCachePool CreateCache(KvCacheOptions options) => new(Config, options);

    /// <summary>Rows of logits the last <see cref="Forward"/> produced.</summary>
    public int LogitRows => _logitRows;

    /// <summary>Logits row <paramref name="row"/> of the last <see cref="Forward"/>: rows go in input order, one per
    /// position asked (the last for <see cref="LogitsWanted.Last"/>, all for <see cref="LogitsWanted.All"/>). Valid
    /// until the next call.</summary>
    public ReadOnlySpan<float> Logits(int row)
    {
        if ((uint)row >= (uint)_logitRows)
        {
            throw new ArgumentOutOfRangeException(nameof(row), $"row {row} of {_logitRows}");
        }
        return _logits.Slice((long)row * Config.VocabSize, Config.VocabSize);
    }

    /// <summary>Runs the model over <paramref name="inputs"/>, appending each input's tokens to its cache.</summary>
    /// <exception cref="ArgumentException">Too many tokens, an empty input, a token id outside the vocabulary, a
    /// sequence given twice, or a sequence that would pass the model's context length.</exception>
    /// <exception cref="KvCacheFullException">The cache pool's budget cannot hold the new positions; no sequence's
    /// length changes.</exception>
    public void Forward(ReadOnlySpan<SequenceInput> inputs)
    {
        int tokens = Plan(inputs);
        Embed(inputs, tokens);
        bool adapters = false;
        foreach (SequenceInput input in inputs)
        {
            adapters |= input.Adapter is not null;
        }
        try
        {
            for (int layer = 0; layer < Config.LayerCount; layer++)
            {
                Layer(layer, tokens, adapters);
            }
        }
        finally
        {
            // Holds no adapter past the call: a cache of adapters must be able to let one go.
            Array.Clear(_tokenAdapter, 0, tokens);
        }
        OutputLogits(tokens);
        foreach (SequenceInput input in inputs)
        {
            input.Cache.SetLength(input.Cache.Length + input.Tokens.Length);
        }
    }

    /// <summary>Appends <paramref name="tokens"/> to one sequence in chunks of <see cref="MaxBatchTokens"/>.</summary>
    /// <param name="logits"><see cref="LogitsWanted.Last"/>: the last chunk leaves the final position's logits;
    /// <see cref="LogitsWanted.All"/>: every chunk leaves its rows, read them in <paramref name="afterChunk"/>.</param>
    /// <param name="afterChunk">Called after each chunk's forward pass, while its logits are valid.</param>
    /// <param name="adapter">The sequence's adapter (LoRA), or null for the base model.</param>
    public void Prefill(KvSequence sequence, ReadOnlyMemory<int> tokens, LogitsWanted logits = LogitsWanted.Last, Action? afterChunk = null, IProjectionAdapter? adapter = null)
    {
        for (int start = 0; start < tokens.Length; start += MaxBatchTokens)
        {
            int count = Math.Min(MaxBatchTokens, tokens.Length - start);
            bool last = start + count == tokens.Length;
            LogitsWanted wanted = logits == LogitsWanted.All ? LogitsWanted.All : last ? logits : LogitsWanted.None;
            Forward([new SequenceInput(sequence, tokens.Slice(start, count), wanted, adapter)]);
            afterChunk?.Invoke();
        }
    }

    private int Plan(ReadOnlySpan<SequenceInput> inputs)
    {
        int tokens = 0, logitRows = 0;
        for (int i = 0; i < inputs.Length; i++)
        {
            SequenceInput input = inputs[i];
            ArgumentNullException.ThrowIfNull(input.Cache, nameof(inputs));
            if (input.Tokens.IsEmpty)
            {
                throw new ArgumentException($"input {i} has no tokens", nameof(inputs));
            }
            for (int j = 0; j < i; j++)
            {
                if (ReferenceEquals(inputs[j].Cache, input.Cache))
                {
                    throw new ArgumentException($"inputs {j} and {i} are the same sequence", nameof(inputs));
                }
            }
            if (input.Cache.Pool.Config != Config)
            {
                throw new ArgumentException($"input {i}'s cache was made for another model shape", nameof(inputs));
            }
            int start = input.Cache.Length, count = input.Tokens.Length;
            if (tokens + count > MaxBatchTokens)
            {
                throw new ArgumentException($"the batch has more than {MaxBatchTokens} tokens; split prompts into chunks", nameof(inputs));
            }
            if (start + count > Config.ContextLength)
            {
                throw new ArgumentException($"input {i} would reach position {start + count}, past the model's context of {Config.ContextLength}", nameof(inputs));
            }
            ReadOnlySpan<int> ids = input.Tokens.Span;
            for (int j = 0; j < count; j++)
            {
                if ((uint)ids[j] >= (uint)Config.VocabSize)
                {
                    throw new ArgumentException($"input {i}: token id {ids[j]} at {j} is outside the vocabulary of {Config.VocabSize}", nameof(inputs));
                }
                _tokenSequence[tokens + j] = input.Cache;
                _tokenAdapter[tokens + j] = input.Adapter;
                _tokenPosition[tokens + j] = start + j;
                _tokenInput[tokens + j] = i;
                if (input.Logits == LogitsWanted.All || (input.Logits == LogitsWanted.Last && j == count - 1))
                {
                    _logitToken[logitRows++] = tokens + j;
                }
            }
            tokens += count;
        }
        // Reserve cache blocks for everyone before touching anything, so a full pool fails the call cleanly (blocks
        // already reserved for earlier inputs stay with their sequences and serve their next step).
        foreach (SequenceInput input in inputs)
        {
            input.Cache.Reserve(input.Cache.Length + input.Tokens.Length);
        }
        _logitRows = logitRows;
        if ((long)logitRows * Config.VocabSize > _logits.Length)
        {
            _logits.Dispose();
            _logits = new NativeBuffer<float>((long)logitRows * Config.VocabSize);
        }
        return tokens;
    }

    private void Embed(ReadOnlySpan<SequenceInput> inputs, int tokens)
    {
        int d = Config.ModelDim, half = _ropeDim / 2;
        int t = 0;
        foreach (SequenceInput input in inputs)
        {
            foreach (int id in input.Tokens.Span)
            {
                Dequantize.Row(Weights.TokenEmbedding.Type, Weights.TokenEmbedding.Row(id), _x.Slice((long)t * d, d));
                Rope.Angles(_tokenPosition[t], Config.RopeTheta, _ropeDim, _cos.Slice((long)t * half, half), _sin.Slice((long)t * half, half));
                t++;
            }
        }
    }

    private void Layer(int layer, int tokens, bool adapters)
    {
        LayerWeights w = Weights.Layers[layer];
        int d = Config.ModelDim, hd = Config.HeadDim, half = _ropeDim / 2;
        int qDim = Config.HeadCount * hd, kvDim = Config.KvHeadCount * hd, hidden = Config.HiddenDim;

        // Attention block.
        for (int t = 0; t < tokens; t++)
        {
            Ops.RmsNorm(_x.Slice((long)t * d, d), w.AttentionNorm, Config.RmsNormEps, _xn.Slice((long)t * d, d));
        }
        MultiplyMany(tokens, _xn, d, (w.Query, _q), (w.Key, _k), (w.Value, _v));
        if (adapters)
        {
            Adapt(tokens, layer, (LlamaTensorRole.Query, _xn, d, _q, qDim), (LlamaTensorRole.Key, _xn, d, _k, kvDim), (LlamaTensorRole.Value, _xn, d, _v, kvDim));
        }
        for (int t = 0; t < tokens; t++)
        {
            ReadOnlySpan<float> cos = _cos.Slice((long)t * half, half), sin = _sin.Slice((long)t * half, half);
            Rope.Apply(_q.Slice((long)t * qDim, qDim), Config.HeadCount, hd, _ropeDim, cos, sin, Weights.RopeStyle);
            Span<float> k = _k.Slice((long)t * kvDim, kvDim);
            Rope.Apply(k, Config.KvHeadCount, hd, _ropeDim, cos, sin, Weights.RopeStyle);
            _tokenSequence[t].Write(layer, _tokenPosition[t], k, _v.Slice((long)t * kvDim, kvDim));
        }
        _attention.Query = _q;
        _attention.Output = _att;
        _attention.Layer = layer;
        _attention.TokenSequence = _tokenSequence;
        _attention.TokenPosition = _tokenPosition;
        _pool.Run(_attention, _attention.Plan(tokens));
        MultiplyMany(tokens, _att, qDim, (w.AttentionOutput, _tmp));
        if (adapters)
        {
            Adapt(tokens, layer, (LlamaTensorRole.AttentionOutput, _att, qDim, _tmp, d));
        }
        AddRows(tokens, _x, _tmp, d);

        // Feed-forward block.
        for (int t = 0; t < tokens; t++)
        {
            Ops.RmsNorm(_x.Slice((long)t * d, d), w.FeedForwardNorm, Config.RmsNormEps, _xn.Slice((long)t * d, d));
        }
        MultiplyMany(tokens, _xn, d, (w.Gate, _gate), (w.Up, _up));
        if (adapters)
        {
            Adapt(tokens, layer, (LlamaTensorRole.Gate, _xn, d, _gate, hidden), (LlamaTensorRole.Up, _xn, d, _up, hidden));
        }
        for (int t = 0; t < tokens; t++)
        {
            Span<float> gate = _gate.Slice((long)t * hidden, hidden);
            Ops.SiluMul(gate, _up.Slice((long)t * hidden, hidden), gate);
        }
        MultiplyMany(tokens, _gate, hidden, (w.Down, _tmp));
        if (adapters)
        {
            Adapt(tokens, layer, (LlamaTensorRole.Down, _gate, hidden, _tmp, d));
        }
        AddRows(tokens, _x, _tmp, d);
    }

    private void OutputLogits(int tokens)
    {
        int d = Config.ModelDim;
        for (int row = 0; row < _logitRows; row++)
        {
            Ops.RmsNorm(_x.Slice((long)_logitToken[row] * d, d), Weights.OutputNorm, Config.RmsNormEps, _xn.Slice((long)row * d, d));
        }
        if (_logitRows > 0)
        {
            MultiplyMany(_logitRows, _xn, d, (Weights.Output, _logits));
        }
    }

    /// <summary>outputs[i] = matrices[i] · source for all token rows, converting the activations once per format and
    /// running the products in one parallel step (two formats at once; a rare third starts another step).</summary>
    private void MultiplyMany(int tokens, NativeBuffer<float> source, int width, params ReadOnlySpan<(WeightMatrix Matrix, NativeBuffer<float> Output)> products)
    {
        GgmlType? formatA = null, formatB = null;
        _matMul.Begin(tokens);
        foreach ((WeightMatrix matrix, NativeBuffer<float> output) in products)
        {
            GgmlType format = MatMul.ActivationType(matrix.Type);
            if (format != formatA && format != formatB && formatA is not null && formatB is not null)
            {
                _pool.Run(_matMul, _matMul.UnitCount);
                _matMul.Begin(tokens);
                formatA = formatB = null;
            }
            NativeBuffer<byte> activations;
            if (formatA is null || format == formatA)
            {
                if (formatA is null)
                {
                    Prepare(matrix.Type, source, width, tokens, _actA);
                    formatA = format;
                }
                activations = _actA;
            }
            else
            {
                if (formatB is null)
                {
                    Prepare(matrix.Type, source, width, tokens, _actB);
                    formatB = format;
                }
                activations = _actB;
            }
            _matMul.Add(matrix, activations, output, _pool.ThreadCount);
        }
        _pool.Run(_matMul, _matMul.UnitCount);
    }

    private void Prepare(GgmlType weightType, NativeBuffer<float> source, int width, int tokens, NativeBuffer<byte> destination)
    {
        _quantize.Set(source, width, weightType, destination);
        _pool.Run(_quantize, tokens);
    }

    /// <summary>Adds each token's adapter delta to the outputs of <paramref name="products"/> (one parallel step for
    /// all of them; a single unit runs on the calling thread).</summary>
    private void Adapt(int tokens, int layer, params ReadOnlySpan<(LlamaTensorRole Role, NativeBuffer<float> Input, int InputWidth, NativeBuffer<float> Output, int OutputWidth)> products)
    {
        _adapterJob.Begin(layer);
        foreach ((LlamaTensorRole role, NativeBuffer<float> input, int inputWidth, NativeBuffer<float> output, int outputWidth) in products)
        {
            _adapterJob.Add(role, input, inputWidth, output, outputWidth, tokens);
        }
        _pool.Run(_adapterJob, _adapterJob.UnitCount);
    }

    private static void AddRows(int tokens, NativeBuffer<float> x, NativeBuffer<float> delta, int width) =>
        Ops.Add(x.Slice(0, tokens * width), delta.Slice(0, tokens * width));

    public void Dispose()
    {
        if (_ownsPool)
        {
            _pool.Dispose();
        }
        foreach (IDisposable buffer in new IDisposable[] { _x, _xn, _q, _k, _v, _att, _tmp, _gate, _up, _actA, _actB, _cos, _sin, _logits })
        {
            buffer.Dispose();
        }
        Weights.Dispose();
    }
}
