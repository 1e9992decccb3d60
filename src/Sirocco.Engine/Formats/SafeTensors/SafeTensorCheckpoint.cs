// A Hugging Face checkpoint in safetensors form: one file, or shards tied together by model.safetensors.index.json.
// The model loader opens a checkpoint (file, index or directory) here and looks tensors up by name across all shards.

using System.Diagnostics.CodeAnalysis;

namespace Sirocco.Engine.Formats.SafeTensors;

/// <summary>
/// All tensors of a checkpoint behind one lookup, whether it is a single .safetensors file or a sharded one. Every
/// shard is memory-mapped; spans stay valid until <see cref="Dispose"/>.
/// </summary>
public sealed class SafeTensorCheckpoint : IDisposable
{
    /// <summary>The index file name transformers writes next to the shards.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>The file name transformers gives an unsharded checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";

    private readonly Dictionary<string, (SafeTensorFile File, SafeTensorInfo Tensor)> _byName;

    private SafeTensorCheckpoint(string path, bool isSharded, List<SafeTensorFile> files,
        Dictionary<string, (SafeTensorFile, SafeTensorInfo)> byName, long? declaredTotalBytes)
    {
        SourcePath = path;
        IsSharded = isSharded;
        Files = files;
        _byName = byName;
        DeclaredTotalBytes = declaredTotalBytes;
        Tensors = [.. files.SelectMany(f => f.Tensors)];
    }

    /// <summary>What was opened in the end: the index file, or the single .safetensors file.</summary>
    public string SourcePath { get; }

    /// <summary>True when the checkpoint came from an index over several shards.</summary>
    public bool IsSharded { get; }

    /// <summary>The opened files: the shards in name order, or the one file.</summary>
    public IReadOnlyList<SafeTensorFile> Files { get; }

    /// <summary>Every tensor of every file (shard order, then header order); names are unique.</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>The index's <c>metadata.total_size</c> (informational, not enforced), or null.</summary>
    public long? DeclaredTotalBytes { get; }

    /// <summary>
    /// Opens <paramref name="path"/>: a .safetensors file, a <c>*.index.json</c> index, or a directory. In a directory
    /// the index is preferred, then <c>model.safetensors</c>, then the only <c>*.safetensors</c> file there.
    /// </summary>
    /// <exception cref="FileNotFoundException">Nothing exists at <paramref name="path"/>, or the directory holds no
    /// safetensors file.</exception>
    /// <exception cref="ModelFormatException">A file is malformed; an index names a shard outside its directory, a
    /// missing shard, or a tensor its shard lacks; a tensor appears in two shards; or a directory holds several
    /// .safetensors files and no index to say how they fit together.</exception>
    public static SafeTensorCheckpoint Open(string path)
    {
        if (Directory.Exists(path))
        {
            return Open(Resolve(path));
        }
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path}: no such file or directory", path);
        }
        return path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? OpenIndex(path) : OpenSingle(path);
    }

    /// <summary>True when some file holds a tensor named <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Looks up a tensor by name in all shards.</summary>
    public bool TryGetTensor(string name, [NotNullWhen(true)] out SafeTensorInfo? tensor)
    {
        bool found = _byName.TryGetValue(name, out var entry);
        tensor = entry.Tensor;
        return found;
    }

    /// <summary>The tensor named <paramref name="name"/>, of any dtype.</summary>
    /// <exception cref="ModelFormatException">No file holds such a tensor.</exception>
    public SafeTensorInfo GetTensor(string name) => Entry(name).Tensor;

    /// <summary>The tensor named <paramref name="name"/>, checked to be loadable as weights (F32, F16 or BF16).</summary>
    /// <exception cref="ModelFormatException">No file holds such a tensor.</exception>
    /// <exception cref="UnsupportedModelException">The tensor has another dtype.</exception>
    public SafeTensorInfo GetWeight(string name) => SafeTensorFile.RequireWeight(Entry(name).Tensor);

    /// <summary>The file holding tensor <paramref name="name"/>.</summary>
    /// <exception cref="ModelFormatException">No file holds such a tensor.</exception>
    public SafeTensorFile FileOf(string name) => Entry(name).File;

    /// <summary>The raw bytes of tensor <paramref name="name"/>, as a span into its mapped shard.</summary>
    /// <exception cref="ModelFormatException">No file holds such a tensor.</exception>
    /// <exception cref="UnsupportedModelException">The tensor is 2 GiB or more.</exception>
    public ReadOnlySpan<byte> Data(string name)
    {
        var (file, tensor) = Entry(name);
        return file.Data(tensor);
    }

    /// <inheritdoc cref="SafeTensorFile.ReadFloats(string)"/>
    public float[] ReadFloats(string name) => Entry(name).File.ReadFloats(name);

    /// <inheritdoc cref="SafeTensorFile.ReadFloats(string, Span{float})"/>
    public void ReadFloats(string name, Span<float> destination) => Entry(name).File.ReadFloats(name, destination);

    /// <summary>Unmaps every file.</summary>
    public void Dispose()
    {
        foreach (SafeTensorFile file in Files)
        {
            file.Dispose();
        }
    }

    private (SafeTensorFile File, SafeTensorInfo Tensor) Entry(string name) =>
        _byName.TryGetValue(name, out var entry)
            ? entry
            : throw new ModelFormatException(SourcePath, $"tensor {name}", -1, "a tensor of that name", "none");

    /// <summary>Picks the file to open in <paramref name="directory"/>.</summary>
    private static string Resolve(string directory)
    {
        string index = Path.Combine(directory, IndexFileName);
        if (File.Exists(index))
        {
            return index;
        }
        string single = Path.Combine(directory, SingleFileName);
        if (File.Exists(single))
        {
            return single;
        }
        string[] candidates = Directory.GetFiles(directory, "*.safetensors", SearchOption.TopDirectoryOnly);
        Array.Sort(candidates, StringComparer.Ordinal);
        return candidates.Length switch
        {
            1 => candidates[0],
            0 => throw new FileNotFoundException(
                $"{directory}: no {IndexFileName}, {SingleFileName} or other .safetensors file", Path.Combine(directory, SingleFileName)),
            _ => throw new ModelFormatException(directory, IndexFileName, -1,
                "an index saying how the .safetensors files fit together",
                $"no index and {candidates.Length} files: {string.Join(", ", candidates.Select(Path.GetFileName))}"),
        };
    }

    private static SafeTensorCheckpoint OpenSingle(string path)
    {
        SafeTensorFile file = SafeTensorFile.Open(path);
        var byName = file.Tensors.ToDictionary(t => t.Name, t => (file, t), StringComparer.Ordinal);
        return new SafeTensorCheckpoint(path, isSharded: false, [file], byName, declaredTotalBytes: null);
    }

    private static SafeTensorCheckpoint OpenIndex(string indexPath)
    {
        SafeTensorIndex index = SafeTensorIndex.Load(indexPath);
        string directory = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var shards = new SortedDictionary<string, SafeTensorFile>(StringComparer.Ordinal);
        try
        {
            foreach (var (tensor, shard) in index.WeightMap)
            {
                if (shards.ContainsKey(shard))
                {
                    continue;
                }
                string shardPath = Path.Combine(directory, shard);
                if (!File.Exists(shardPath))
                {
                    throw new ModelFormatException(indexPath, $"weight_map[{tensor}]", -1, $"shard {shard} next to the index", "no such file");
                }
                shards.Add(shard, SafeTensorFile.Open(shardPath));
            }
            foreach (var (tensor, shard) in index.WeightMap)
            {
                if (!shards[shard].Contains(tensor))
                {
                    throw new ModelFormatException(indexPath, $"weight_map[{tensor}]", -1, $"tensor {tensor} in shard {shard}", "no such tensor there");
                }
            }
            // Tensors a shard holds beyond the weight map are kept (transformers would ignore them); a name in two
            // shards is rejected, as the lookup would otherwise depend on which shard happened to be read first.
            var byName = new Dictionary<string, (SafeTensorFile, SafeTensorInfo)>(StringComparer.Ordinal);
            foreach (SafeTensorFile file in shards.Values)
            {
                foreach (SafeTensorInfo t in file.Tensors)
                {
                    if (!byName.TryAdd(t.Name, (file, t)))
                    {
                        throw new ModelFormatException(file.FilePath, $"tensor {t.Name}", t.DataOffset,
                            "each tensor in one shard only", $"it is also in {Path.GetFileName(byName[t.Name].Item1.FilePath)}");
                    }
                }
            }
            return new SafeTensorCheckpoint(indexPath, isSharded: true, [.. shards.Values], byName, index.TotalBytes);
        }
        catch
        {
            foreach (SafeTensorFile file in shards.Values)
            {
                file.Dispose();
            }
            throw;
        }
    }
}
