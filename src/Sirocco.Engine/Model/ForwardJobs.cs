// The parallel steps of the forward pass, as reusable ParallelJob objects (set fields, run, repeat: nothing is
// allocated per token). Each splits its work into units that write disjoint memory.

using Sirocco.Engine.Threading;
using Sirocco.Kernels;
using Sirocco.Kernels.Memory;
using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Simd;

namespace Sirocco.Engine.Model;

/// <summary>Up to three matrix products over the same token rows in one step (Q/K/V, or gate/up), split into units of
/// (block of tokens, chunk of weight rows). Within a segment the row chunk varies fastest, so consecutive units reuse
/// one block of activations from the core's cache while the weights stream past; a decode step has one token block.</summary>
internal sealed class MatMulJob : ParallelJob
{
    private const int MaxSegments = 3;

    /// <summary>Tokens per unit in prefill: 64 activation rows (≈ 320 KB at width 4096, ≈ 1.1 MB at 14336 in the
    /// 8-bit formats) stay in L2 while a chunk of weight rows is multiplied against them.</summary>
    public const int TokenBlock = 64;

    private readonly WeightMatrix[] _matrices = new WeightMatrix[MaxSegments];
    private readonly NativeBuffer<byte>?[] _activations = new NativeBuffer<byte>?[MaxSegments];
    private readonly NativeBuffer<float>?[] _outputs = new NativeBuffer<float>?[MaxSegments];
    private readonly int[] _chunkRows = new int[MaxSegments];
    private readonly int[] _rowChunks = new int[MaxSegments];
    private readonly int[] _firstUnit = new int[MaxSegments + 1];
    private int _segments;
    private int _tokens;
    private int _tokenBlock;

    /// <summary>Starts a new step over <paramref name="tokens"/> activation rows.</summary>
    public void Begin(int tokens)
    {
        _segments = 0;
        _tokens = tokens;
        _tokenBlock = Math.Min(tokens, TokenBlock);
        _firstUnit[0] = 0;
    }

    /// <summary>Adds output[t, r] = matrix row r · activation t; output rows are <c>matrix.Rows</c> wide.</summary>
    public void Add(in WeightMatrix matrix, NativeBuffer<byte> activations, NativeBuffer<float> output, int threads)
    {
        int s = _segments++;
        _matrices[s] = matrix;
        _activations[s] = activations;
        _outputs[s] = output;
        int tokenBlocks = (_tokens + _tokenBlock - 1) / _tokenBlock;
        // About eight units per thread (so a slow or busy core does not hold the step up), rows in multiples of 16.
        int chunk = Math.Max(16, (matrix.Rows * tokenBlocks / (threads * 8) + 15) / 16 * 16);
        if (tokenBlocks > 1)
        {
            chunk = Math.Min(chunk, 128); // keep a unit's weights (≤ 128 rows) and its token block in L2 together
        }
        _chunkRows[s] = chunk;
        _rowChunks[s] = (matrix.Rows + chunk - 1) / chunk;
        _firstUnit[s + 1] = _firstUnit[s] + _rowChunks[s] * tokenBlocks;
    }

    public int UnitCount => _firstUnit[_segments];

    public override void Execute(int unit, int worker)
    {
        int s = 0;
        while (unit >= _firstUnit[s + 1])
        {
            s++;
        }
        ref readonly WeightMatrix matrix = ref _matrices[s];
        int local = unit - _firstUnit[s];
        int tokenStart = local / _rowChunks[s] * _tokenBlock;
        int tokens = Math.Min(_tokenBlock, _tokens - tokenStart);
        int rowStart = local % _rowChunks[s] * _chunkRows[s];
        int rowEnd = Math.Min(matrix.Rows, rowStart + _chunkRows[s]);
        int actBytes = MatMul.ActivationRowBytes(matrix.Type, matrix.Columns);
        MatMul.Multiply(matrix, rowStart, rowEnd, _activations[s]!.Slice((long)tokenStart * actBytes, actBytes * tokens), tokens,
            _outputs[s]!.Slice((long)tokenStart * matrix.Rows, matrix.Rows * tokens), matrix.Rows);
    }
}

/// <summary>Converts token rows of a float buffer into a weight type's activation format, one unit per token.</summary>
internal sealed class QuantizeJob : ParallelJob
{
    private NativeBuffer<float>? _source;
    private NativeBuffer<byte>? _destination;
    private int _width;
    private GgmlType _weightType;

    public void Set(NativeBuffer<float> source, int width, GgmlType weightType, NativeBuffer<byte> destination)
    {
        _source = source;
        _width = width;
        _weightType = weightType;
        _destination = destination;
    }

    public override void Execute(int unit, int worker)
    {
        int bytes = MatMul.ActivationRowBytes(_weightType, _width);
        MatMul.QuantizeActivation(_weightType, _source!.Slice((long)unit * _width, _width), _destination!.Slice((long)unit * bytes, bytes));
    }
}

/// <summary>Causal grouped-query attention for one layer. A unit is one KV head for a block of up to
/// <see cref="QueryBlock"/> consecutive tokens of one sequence: each cached key and value row is widened to f32 once
/// and used by every query of the block and every query head sharing that KV head (prefill of 16 tokens with 4 heads
/// per group: 64 queries per row read), instead of once per query head and token.</summary>
internal sealed class AttentionJob : ParallelJob
{
    /// <summary>Most tokens of one sequence handled by one unit.</summary>
    public const int QueryBlock = 16;

    private readonly float[][] _scores;   // per worker: [query block token][head in group][position]
    private readonly float[][] _row;      // per worker: one key or value head row widened to f32
    private readonly ModelConfig _config;
    private readonly float _scale;
    private readonly int[] _blockStart, _blockCount;
    private int _blocks;

    public AttentionJob(ModelConfig config, int threads, int maxBatchTokens)
    {
        _config = config;
        _scale = 1f / MathF.Sqrt(config.HeadDim);
        _scores = new float[threads][];
        _row = new float[threads][];
        for (int i = 0; i < threads; i++)
        {
            _scores[i] = new float[(long)QueryBlock * config.GroupSize * config.ContextLength > int.MaxValue
                ? throw new ArgumentException("context too long for the attention scratch") : QueryBlock * config.GroupSize * config.ContextLength];
            _row[i] = new float[config.HeadDim];
        }
        _blockStart = new int[maxBatchTokens];
        _blockCount = new int[maxBatchTokens];
    }

    public NativeBuffer<float>? Query { get; set; }

    public NativeBuffer<float>? Output { get; set; }

    public int Layer { get; set; }

    /// <summary>Per token: the sequence it belongs to and its position. Tokens of one sequence are consecutive, at
    /// consecutive positions.</summary>
    public KvSequence[] TokenSequence { get; set; } = [];

    public int[] TokenPosition { get; set; } = [];

    /// <summary>Groups tokens 0 … <paramref name="tokens"/> − 1 into query blocks; returns the unit count.</summary>
    public int Plan(int tokens)
    {
        _blocks = 0;
        for (int t = 0; t < tokens;)
        {
            int count = 1;
            while (count < QueryBlock && t + count < tokens && ReferenceEquals(TokenSequence[t + count], TokenSequence[t])
                && TokenPosition[t + count] == TokenPosition[t] + count)
            {
                count++;
            }
            _blockStart[_blocks] = t;
            _blockCount[_blocks] = count;
            _blocks++;
            t += count;
        }
        return _blocks * _config.KvHeadCount;
    }

    public override void Execute(int unit, int worker)
    {
        int heads = _config.HeadCount, headDim = _config.HeadDim, group = _config.GroupSize;
        int block = unit / _config.KvHeadCount, kvHead = unit % _config.KvHeadCount;
        int first = _blockStart[block], count = _blockCount[block];
        KvSequence sequence = TokenSequence[first];
        KvCachePool pool = sequence.Pool;
        int blockSize = pool.BlockSize, kvDim = pool.KvDim, context = _config.ContextLength;
        int firstPosition = TokenPosition[first], length = firstPosition + count; // positions 0 … length − 1
        float[] scores = _scores[worker];
        Span<float> row = _row[worker];
        IReadOnlyList<KvBlock> blocks = sequence.Blocks;
        long keyBase = pool.Offset(Layer, value: false, 0) + kvHead * headDim;
        long valueBase = pool.Offset(Layer, value: true, 0) + kvHead * headDim;
        ReadOnlySpan<float> queries = Query!.Slice(0, (first + count) * heads * headDim);

        // Scores: score[t, g, p] = q(t, head kvHead·group + g) · k(p) / √d for p ≤ position of t.
        for (int p = 0; p < length; p++)
        {
            ReadOnlySpan<float> key = Widen(blocks[p / blockSize], keyBase + (long)(p % blockSize) * kvDim, headDim, row);
            for (int t = Math.Max(0, p - firstPosition); t < count; t++)
            {
                int queryBase = ((first + t) * heads + kvHead * group) * headDim;
                for (int g = 0; g < group; g++)
                {
                    scores[(t * group + g) * context + p] = Ops.Dot(queries.Slice(queryBase + g * headDim, headDim), key) * _scale;
                }
            }
        }
        for (int t = 0; t < count; t++)
        {
            for (int g = 0; g < group; g++)
            {
                Ops.Softmax(scores.AsSpan((t * group + g) * context, firstPosition + t + 1));
                Output!.Slice(((long)(first + t) * heads + kvHead * group + g) * headDim, headDim).Clear();
            }
        }
        // Outputs: out[t, g] = Σ_p score[t, g, p] · v(p).
        for (int p = 0; p < length; p++)
        {
            ReadOnlySpan<float> value = Widen(blocks[p / blockSize], valueBase + (long)(p % blockSize) * kvDim, headDim, row);
            for (int t = Math.Max(0, p - firstPosition); t < count; t++)
            {
                for (int g = 0; g < group; g++)
                {
                    Ops.MultiplyAdd(scores[(t * group + g) * context + p], value,
                        Output!.Slice(((long)(first + t) * heads + kvHead * group + g) * headDim, headDim));
                }
            }
        }
    }

    /// <summary>The head row at <paramref name="at"/> of a block as f32: the cache itself for an f32 pool, else
    /// widened into <paramref name="scratch"/>.</summary>
    private static ReadOnlySpan<float> Widen(KvBlock block, long at, int headDim, Span<float> scratch)
    {
        if (block.Half is { } half)
        {
            Ops.FromHalf(half.Slice(at, headDim), scratch);
            return scratch;
        }
        return block.Single!.Slice(at, headDim);
    }
}

/// <summary>The per-sequence adapter deltas (LoRA) after up to three products over the same token rows (Q/K/V, or
/// gate/up), one unit per (product, token) whose sequence's adapter targets that product. Units go product by product,
/// so consecutive units reuse one product's adapter matrices from cache; each unit writes only its own token's output
/// row, and each delta is computed exactly as a call on one thread would compute it, so the result does not depend on
/// the thread count or on how sequences were batched.</summary>
internal sealed class AdapterJob(int maxTokens, IProjectionAdapter?[] tokenAdapter) : ParallelJob
{
    private const int MaxSegments = 3;

    private readonly LlamaTensorRole[] _roles = new LlamaTensorRole[MaxSegments];
    private readonly NativeBuffer<float>?[] _inputs = new NativeBuffer<float>?[MaxSegments];
    private readonly NativeBuffer<float>?[] _outputs = new NativeBuffer<float>?[MaxSegments];
    private readonly int[] _inputWidths = new int[MaxSegments];
    private readonly int[] _outputWidths = new int[MaxSegments];
    private readonly byte[] _unitSegment = new byte[MaxSegments * maxTokens];
    private readonly int[] _unitToken = new int[MaxSegments * maxTokens];
    private int _segments;
    private int _layer;

    public int UnitCount { get; private set; }

    /// <summary>Starts planning the deltas of <paramref name="layer"/>.</summary>
    public void Begin(int layer)
    {
        _layer = layer;
        _segments = 0;
        UnitCount = 0;
    }

    /// <summary>Adds a unit for every token among the first <paramref name="tokens"/> whose adapter targets
    /// <paramref name="role"/>: output row t += Δ(input row t).</summary>
    public void Add(LlamaTensorRole role, NativeBuffer<float> input, int inputWidth, NativeBuffer<float> output, int outputWidth, int tokens)
    {
        int s = _segments++;
        _roles[s] = role;
        _inputs[s] = input;
        _inputWidths[s] = inputWidth;
        _outputs[s] = output;
        _outputWidths[s] = outputWidth;
        for (int t = 0; t < tokens; t++)
        {
            if (tokenAdapter[t] is { } adapter && adapter.Targets(_layer, role))
            {
                _unitSegment[UnitCount] = (byte)s;
                _unitToken[UnitCount++] = t;
            }
        }
    }

    public override void Execute(int unit, int worker)
    {
        int s = _unitSegment[unit], t = _unitToken[unit];
        int inputWidth = _inputWidths[s], outputWidth = _outputWidths[s];
        tokenAdapter[t]!.AddDelta(_layer, _roles[s], _inputs[s]!.Slice((long)t * inputWidth, inputWidth), _outputs[s]!.Slice((long)t * outputWidth, outputWidth));
    }
}
