// Writes a checkpoint split into shards the way transformers' save_pretrained does: model-00001-of-0000N.safetensors
// plus model.safetensors.index.json, or a single model.safetensors when everything fits in one shard. Tensors stream
// through one SafeTensorWriter per shard, so memory use stays constant. Used by converters and the synthetic-model builder.

namespace Sirocco.Engine.Formats.SafeTensors;

/// <summary>
/// Streams declared tensors into size-bounded shards in a directory. Tensors are assigned in declaration order: a new
/// shard starts when the next tensor would push the current one past the limit (a tensor larger than the limit gets
/// a shard of its own). Write data with the same calls, in the same order, as <see cref="SafeTensorWriter"/>.
/// </summary>
public sealed class ShardedSafeTensorWriter : IDisposable
{
    private readonly string _directory;
    private readonly SafeTensorDeclaration[][] _shards;
    private readonly Dictionary<string, int> _shardOf;
    private readonly IReadOnlyDictionary<string, string>? _metadata;
    private readonly List<string> _written = []; // shards completed by this writer, deleted again if it is abandoned
    private SafeTensorWriter? _writer;
    private int _shard = -1;
    private bool _completed;

    private ShardedSafeTensorWriter(string directory, SafeTensorDeclaration[][] shards, IReadOnlyDictionary<string, string>? metadata, long totalBytes)
    {
        _directory = directory;
        _shards = shards;
        _metadata = metadata;
        TotalBytes = totalBytes;
        _shardOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int s = 0; s < shards.Length; s++)
        {
            foreach (SafeTensorDeclaration t in shards[s])
            {
                _shardOf.Add(t.Name, s);
            }
        }
        ShardFileNames = shards.Length == 1
            ? [SafeTensorCheckpoint.SingleFileName]
            : [.. Enumerable.Range(1, shards.Length).Select(i => ShardFileName(i, shards.Length))];
    }

    /// <summary>Shard file names, in order: <c>model-00001-of-00003.safetensors</c>…, or just <c>model.safetensors</c>.</summary>
    public IReadOnlyList<string> ShardFileNames { get; }

    /// <summary>Bytes of tensor data over all shards: the index's <c>metadata.total_size</c>.</summary>
    public long TotalBytes { get; }

    /// <summary>The index file written by <see cref="Complete"/>, or null when the checkpoint is a single file.</summary>
    public string? IndexPath => _shards.Length > 1 ? Path.Combine(_directory, SafeTensorCheckpoint.IndexFileName) : null;

    /// <summary>transformers' shard name: <c>model-{index:00000}-of-{count:00000}.safetensors</c>, index from 1.</summary>
    public static string ShardFileName(int index, int count) => $"model-{index:D5}-of-{count:D5}.safetensors";

    /// <summary>
    /// Plans the shards and creates <paramref name="directory"/> if needed. <paramref name="maxShardBytes"/> bounds the
    /// tensor data per shard (headers not counted, as in transformers). <paramref name="metadata"/> goes into every
    /// shard's header; null stands for <see cref="SafeTensorWriter.DefaultMetadata"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Bad declarations (see <see cref="SafeTensorWriter.Create"/>), or a
    /// non-positive <paramref name="maxShardBytes"/>.</exception>
    public static ShardedSafeTensorWriter Create(string directory, IEnumerable<SafeTensorDeclaration> tensors, long maxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        SafeTensorDeclaration[] declared = [.. tensors];
        long[] byteCounts = SafeTensorWriter.Validate(declared);

        var shards = new List<List<SafeTensorDeclaration>> { new() };
        long inShard = 0;
        long total = 0;
        for (int i = 0; i < declared.Length; i++)
        {
            if (shards[^1].Count > 0 && byteCounts[i] > 0 && inShard + byteCounts[i] > maxShardBytes)
            {
                shards.Add([]);
                inShard = 0;
            }
            shards[^1].Add(declared[i]);
            inShard += byteCounts[i];
            total = checked(total + byteCounts[i]);
        }
        Directory.CreateDirectory(directory);
        return new ShardedSafeTensorWriter(Path.GetFullPath(directory), [.. shards.Select(s => s.ToArray())], metadata, total);
    }

    /// <inheritdoc cref="SafeTensorWriter.WriteTensor(string, ReadOnlySpan{byte})"/>
    public void WriteTensor(string name, ReadOnlySpan<byte> data) => WriterFor(name).WriteTensor(name, data);

    /// <inheritdoc cref="SafeTensorWriter.WriteTensorFloats(string, ReadOnlySpan{float})"/>
    public void WriteTensorFloats(string name, ReadOnlySpan<float> values) => WriterFor(name).WriteTensorFloats(name, values);

    /// <summary>
    /// Finishes every shard (checking each tensor was written in full), then writes the index. A single-shard
    /// checkpoint gets no index, and a stale index left in the directory by an earlier sharded write is deleted so
    /// that readers do not prefer it.
    /// </summary>
    /// <exception cref="InvalidOperationException">A tensor is missing data.</exception>
    public void Complete()
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        MoveTo(_shards.Length - 1);
        _writer!.Complete();
        _writer.Dispose();
        _writer = null;
        string index = Path.Combine(_directory, SafeTensorCheckpoint.IndexFileName);
        if (_shards.Length > 1)
        {
            var weightMap = _shardOf.Select(p => new KeyValuePair<string, string>(p.Key, ShardFileNames[p.Value]));
            SafeTensorIndex.Write(index, TotalBytes, weightMap);
        }
        else if (File.Exists(index))
        {
            File.Delete(index);
        }
        _completed = true;
    }

    /// <summary>Abandons an unfinished checkpoint: deletes the shard being written and the shards this writer completed.</summary>
    public void Dispose()
    {
        _writer?.Dispose();
        _writer = null;
        if (!_completed)
        {
            _completed = true;
            foreach (string path in _written)
            {
                try
                {
                    File.Delete(path);
                }
                catch (IOException)
                {
                    // Best effort; without an index the orphaned shard is not mistaken for a checkpoint.
                }
            }
        }
    }

    private SafeTensorWriter WriterFor(string name)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (!_shardOf.TryGetValue(name, out int shard))
        {
            throw new InvalidOperationException($"cannot write tensor {name}: it was never declared");
        }
        if (shard < _shard)
        {
            throw new InvalidOperationException($"cannot write tensor {name}: its shard {ShardFileNames[shard]} is already complete");
        }
        MoveTo(shard);
        return _writer!;
    }

    /// <summary>Completes the shards before <paramref name="shard"/> (each must be full) and opens that one.</summary>
    private void MoveTo(int shard)
    {
        while (_shard < shard)
        {
            if (_writer is not null)
            {
                _writer.Complete();
                _written.Add(_writer.FilePath);
                _writer.Dispose();
                _writer = null;
            }
            _shard++;
            _writer = SafeTensorWriter.Create(Path.Combine(_directory, ShardFileNames[_shard]), _shards[_shard], _metadata);
        }
    }
}
