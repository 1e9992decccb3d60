// The key/value cache: what attention reads for every earlier position of a sequence. Memory is handed out in blocks
// of a fixed number of positions from one pool with a byte budget, so sequences of very different lengths can live
// side by side without reserving the whole context for each, and a finished sequence returns its blocks at once.
//
// A block holds BlockSize positions of every layer: [layer][K or V][position in block][KV head · head dim], in f32 or
// f16. Attention walks a sequence's block table in order.

using Sirocco.Kernels.Memory;
using Sirocco.Kernels.Simd;

namespace Sirocco.Engine.Model;

/// <summary>Element type of cached keys and values.</summary>
public enum KvCacheType
{
    /// <summary>IEEE half precision: half the memory; what llama.cpp uses by default.</summary>
    F16,

    /// <summary>Single precision: exact with respect to the activations.</summary>
    F32,
}

/// <summary>Settings of a <see cref="KvCachePool"/>.</summary>
/// <param name="BudgetBytes">Most bytes the pool may allocate for blocks.</param>
/// <param name="BlockSize">Positions per block.</param>
/// <param name="Type">Element type.</param>
public sealed record KvCacheOptions(long BudgetBytes, int BlockSize = 32, KvCacheType Type = KvCacheType.F16)
{
    /// <summary>Options whose budget holds exactly <paramref name="positions"/> positions (rounded up to whole blocks):
    /// for one-sequence tools such as `sirocco run`, `logits` and `bench`.</summary>
    public static KvCacheOptions ForPositions(ModelConfig config, int positions, KvCacheType type, int blockSize = 32) =>
        new(BytesPerPosition(config, type) * ((Math.Max(1, positions) + blockSize - 1) / blockSize * blockSize), blockSize, type);

    /// <summary>Bytes one position takes over all layers (keys and values).</summary>
    public static long BytesPerPosition(ModelConfig config, KvCacheType type) =>
        2L * config.LayerCount * config.KvHeadCount * config.HeadDim * (type == KvCacheType.F16 ? 2 : 4);
}

/// <summary>Thrown when a sequence needs a block and the pool's budget is spent.</summary>
public sealed class KvCacheFullException(string message) : InvalidOperationException(message);

/// <summary>A pool of KV blocks with a memory budget. Thread-safe for allocating and freeing sequences; one sequence
/// is used by one forward pass at a time.</summary>
public sealed class KvCachePool : IDisposable
{
    private readonly Lock _lock = new();
    private readonly List<KvBlock> _all = [];
    private readonly Stack<KvBlock> _free = new();
    private bool _disposed;

    public KvCachePool(ModelConfig config, KvCacheOptions options)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BlockSize, 1);
        Config = config;
        Options = options;
        KvDim = config.KvHeadCount * config.HeadDim;
        ElementsPerBlock = 2L * config.LayerCount * options.BlockSize * KvDim;
        BlockBytes = ElementsPerBlock * (options.Type == KvCacheType.F16 ? 2 : 4);
        MaxBlocks = (int)Math.Min(int.MaxValue, options.BudgetBytes / BlockBytes);
        if (MaxBlocks < 1)
        {
            throw new ArgumentException($"a KV cache budget of {options.BudgetBytes} bytes holds no block of {BlockBytes} bytes ({options.BlockSize} positions)", nameof(options));
        }
    }

    public ModelConfig Config { get; }

    public KvCacheOptions Options { get; }

    public int BlockSize => Options.BlockSize;

    public KvCacheType Type => Options.Type;

    /// <summary>KV heads × head dim: the width of one cached key or value.</summary>
    public int KvDim { get; }

    public long ElementsPerBlock { get; }

    public long BlockBytes { get; }

    /// <summary>Blocks the budget allows.</summary>
    public int MaxBlocks { get; }

    /// <summary>Positions the budget allows over all sequences.</summary>
    public long CapacityPositions => (long)MaxBlocks * BlockSize;

    /// <summary>Blocks held by sequences now.</summary>
    public int UsedBlocks
    {
        get
        {
            lock (_lock)
            {
                return _all.Count - _free.Count;
            }
        }
    }

    /// <summary>Blocks that can still be handed out: free blocks kept for reuse plus those the budget has yet to
    /// allocate (<see cref="MaxBlocks"/> − <see cref="UsedBlocks"/>). The scheduler admits a request only when its
    /// reservation fits here.</summary>
    public int AvailableBlocks
    {
        get
        {
            lock (_lock)
            {
                return MaxBlocks - (_all.Count - _free.Count);
            }
        }
    }

    /// <summary>Blocks that <paramref name="positions"/> positions take (rounded up to whole blocks).</summary>
    public int BlocksFor(long positions) => (int)Math.Min(int.MaxValue, (Math.Max(0, positions) + BlockSize - 1) / BlockSize);

    /// <summary>Bytes allocated from the system so far (blocks are kept for reuse once allocated).</summary>
    public long AllocatedBytes
    {
        get
        {
            lock (_lock)
            {
                return _all.Count * BlockBytes;
            }
        }
    }

    /// <summary>A new, empty sequence. Dispose it to return its blocks.</summary>
    public KvSequence CreateSequence() => new(this);

    /// <summary>Element offset of (layer, K or V, position in block) inside a block.</summary>
    internal long Offset(int layer, bool value, int positionInBlock) =>
        (((long)layer * 2 + (value ? 1 : 0)) * BlockSize + positionInBlock) * KvDim;

    internal KvBlock Rent(int neededForMessage)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_free.TryPop(out KvBlock? block))
            {
                block.Clear();
                return block;
            }
            if (_all.Count >= MaxBlocks)
            {
                throw new KvCacheFullException(
                    $"the KV cache is full: {MaxBlocks} blocks of {BlockSize} positions ({CapacityPositions} positions, {Options.BudgetBytes / (1 << 20)} MiB) are in use; a sequence needed {neededForMessage} positions");
            }
            var created = new KvBlock(this);
            _all.Add(created);
            return created;
        }
    }

    internal void Return(List<KvBlock> blocks)
    {
        lock (_lock)
        {
            foreach (KvBlock block in blocks)
            {
                _free.Push(block);
            }
        }
        blocks.Clear();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (KvBlock block in _all)
            {
                block.Dispose();
            }
            _all.Clear();
            _free.Clear();
        }
    }
}

/// <summary>One block: <see cref="KvCachePool.BlockSize"/> positions of keys and values for every layer.</summary>
internal sealed class KvBlock : IDisposable
{
    public KvBlock(KvCachePool pool)
    {
        if (pool.Type == KvCacheType.F16)
        {
            Half = new NativeBuffer<ushort>(pool.ElementsPerBlock);
        }
        else
        {
            Single = new NativeBuffer<float>(pool.ElementsPerBlock);
        }
    }

    public NativeBuffer<float>? Single { get; }

    public NativeBuffer<ushort>? Half { get; }

    public void Clear()
    {
        // Stale values are never read (attention stops at the sequence length), but zeroing keeps a bug visible.
        Single?.Span.Clear();
        Half?.Span.Clear();
    }

    public void Dispose()
    {
        Single?.Dispose();
        Half?.Dispose();
    }
}

/// <summary>The cached keys and values of one sequence: a table of blocks and a length in positions.</summary>
public sealed class KvSequence : IDisposable
{
    private readonly List<KvBlock> _blocks = [];

    internal KvSequence(KvCachePool pool) => Pool = pool;

    public KvCachePool Pool { get; }

    /// <summary>Positions whose keys and values are stored (the next token goes at this position).</summary>
    public int Length { get; private set; }

    /// <summary>Positions the blocks held now can store.</summary>
    public int Capacity => _blocks.Count * Pool.BlockSize;

    internal IReadOnlyList<KvBlock> Blocks => _blocks;

    /// <summary>Makes room for <paramref name="positions"/> positions in all, taking blocks from the pool.</summary>
    /// <exception cref="KvCacheFullException">The pool's budget cannot cover it; the sequence keeps what it had.</exception>
    public void Reserve(int positions)
    {
        int needed = (positions + Pool.BlockSize - 1) / Pool.BlockSize;
        int before = _blocks.Count;
        try
        {
            while (_blocks.Count < needed)
            {
                _blocks.Add(Pool.Rent(positions));
            }
        }
        catch (KvCacheFullException)
        {
            var taken = _blocks.GetRange(before, _blocks.Count - before);
            _blocks.RemoveRange(before, _blocks.Count - before);
            Pool.Return(taken);
            throw;
        }
    }

    /// <summary>Stores the key and value of <paramref name="position"/> in <paramref name="layer"/> (rounded to f16 for
    /// an f16 pool). The position must lie within <see cref="Capacity"/>.</summary>
    internal void Write(int layer, int position, ReadOnlySpan<float> key, ReadOnlySpan<float> value)
    {
        KvBlock block = _blocks[position / Pool.BlockSize];
        long keyAt = Pool.Offset(layer, value: false, position % Pool.BlockSize);
        long valueAt = Pool.Offset(layer, value: true, position % Pool.BlockSize);
        if (block.Half is { } half)
        {
            Ops.ToHalf(key, half.Slice(keyAt, key.Length));
            Ops.ToHalf(value, half.Slice(valueAt, value.Length));
        }
        else
        {
            key.CopyTo(block.Single!.Slice(keyAt, key.Length));
            value.CopyTo(block.Single!.Slice(valueAt, value.Length));
        }
    }

    /// <summary>Sets the stored length (after a forward pass wrote positions up to it, or to forget a suffix).</summary>
    internal void SetLength(int length)
    {
        if (length < 0 || length > Capacity)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"length {length} outside 0 … {Capacity}");
        }
        Length = length;
    }

    /// <summary>Forgets positions from <paramref name="length"/> on (e.g. to reuse a shared prompt prefix).</summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > Length)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"length {length} outside 0 … {Length}");
        }
        Length = length;
    }

    public void Dispose()
    {
        if (_blocks.Count > 0)
        {
            Pool.Return(_blocks);
        }
        Length = 0;
    }
}
