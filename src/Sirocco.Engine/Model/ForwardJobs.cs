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

/// <summary>Causal grouped-query attention for one layer: one unit per (token, query head). Scores against every
/// cached position up to the token's own, softmax, weighted sum of the cached values.</summary>
internal sealed class AttentionJob : ParallelJob
{
    private readonly float[][] _scores;
    private readonly ModelConfig _config;
    private readonly float _scale;

    public AttentionJob(ModelConfig config, int threads)
    {
        _config = config;
        _scale = 1f / MathF.Sqrt(config.HeadDim);
        _scores = new float[threads][];
        for (int i = 0; i < threads; i++)
        {
            _scores[i] = new float[config.ContextLength];
        }
    }

    public NativeBuffer<float>? Query { get; set; }

    public NativeBuffer<float>? Output { get; set; }

    public int Layer { get; set; }

    /// <summary>Per token: the sequence it belongs to and its position.</summary>
    public KvSequence[] TokenSequence { get; set; } = [];

    public int[] TokenPosition { get; set; } = [];

    public override void Execute(int unit, int worker)
    {
        int heads = _config.HeadCount, headDim = _config.HeadDim;
        int token = unit / heads, head = unit % heads;
        int kvHead = head / _config.GroupSize;
        KvSequence sequence = TokenSequence[token];
        KvCachePool pool = sequence.Pool;
        int blockSize = pool.BlockSize, kvDim = pool.KvDim;
        int length = TokenPosition[token] + 1;
        ReadOnlySpan<float> q = Query!.Slice((long)token * heads * headDim + head * headDim, headDim);
        Span<float> scores = _scores[worker].AsSpan(0, length);
        IReadOnlyList<KvBlock> blocks = sequence.Blocks;
        long keyBase = pool.Offset(Layer, value: false, 0) + kvHead * headDim;
        long valueBase = pool.Offset(Layer, value: true, 0) + kvHead * headDim;

        for (int p = 0; p < length; p++)
        {
            KvBlock block = blocks[p / blockSize];
            long at = keyBase + (long)(p % blockSize) * kvDim;
            scores[p] = (block.Half is { } half
                ? Ops.DotHalf(q, half.Slice(at, headDim))
                : Ops.Dot(q, block.Single!.Slice(at, headDim))) * _scale;
        }
        Ops.Softmax(scores);

        Span<float> output = Output!.Slice((long)token * heads * headDim + head * headDim, headDim);
        output.Clear();
        for (int p = 0; p < length; p++)
        {
            KvBlock block = blocks[p / blockSize];
            long at = valueBase + (long)(p % blockSize) * kvDim;
            if (block.Half is { } half)
            {
                Ops.MultiplyAddHalf(scores[p], half.Slice(at, headDim), output);
            }
            else
            {
                Ops.MultiplyAdd(scores[p], block.Single!.Slice(at, headDim), output);
            }
        }
    }
}
