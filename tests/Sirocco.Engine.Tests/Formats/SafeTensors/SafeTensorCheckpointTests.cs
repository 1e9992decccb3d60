// Sharded checkpoints: the sharded writer's layout and index, the unified lookup across shards, how a directory is
// resolved, and hostile or inconsistent indexes (path traversal, missing shards or tensors, a tensor in two shards).

using System.Text.Json;
using Sirocco.Engine.Formats;
using Sirocco.Engine.Formats.SafeTensors;
using static Sirocco.Engine.Tests.Formats.SafeTensors.SafeTensorTestFiles;

namespace Sirocco.Engine.Tests.Formats.SafeTensors;

public sealed class SafeTensorCheckpointTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Four F32 tensors of 400, 400, 0 and 800 bytes plus a scalar, written with <paramref name="maxShardBytes"/>.</summary>
    private (SafeTensorDeclaration[] Declared, Dictionary<string, float[]> Values) WriteSharded(string directory, long maxShardBytes)
    {
        SafeTensorDeclaration[] declared =
        [
            new("embed", SafeTensorDtype.F32, [10, 10]),
            new("layers.0.w", SafeTensorDtype.BF16, [10, 20]),
            new("layers.0.empty", SafeTensorDtype.F32, [0]),
            new("layers.1.w", SafeTensorDtype.F32, [20, 10]),
            new("norm", SafeTensorDtype.F16, []),
        ];
        var values = declared.ToDictionary(d => d.Name, d => Values((int)d.ElementCount, d.Name.Length));
        using var writer = ShardedSafeTensorWriter.Create(directory, declared, maxShardBytes);
        foreach (var d in declared)
        {
            writer.WriteTensorFloats(d.Name, values[d.Name]);
        }
        writer.Complete();
        return (declared, values);
    }

    [Fact]
    public void ShardedRoundTrip_SplitsByBytes_WritesIndex_AndReadsBack()
    {
        var (declared, values) = WriteSharded(_dir.FullPath, maxShardBytes: 800);

        // 400 + 400 fits 800; the empty tensor joins; 800 starts shard 2; the 2-byte scalar starts shard 3.
        string[] expectedShards = ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"];
        foreach (string shard in expectedShards)
        {
            Assert.True(File.Exists(_dir.File(shard)), shard);
        }
        using (JsonDocument index = JsonDocument.Parse(File.ReadAllText(_dir.File(SafeTensorCheckpoint.IndexFileName))))
        {
            Assert.Equal(400 + 400 + 800 + 2, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
            JsonElement map = index.RootElement.GetProperty("weight_map");
            Assert.Equal(expectedShards[0], map.GetProperty("embed").GetString());
            Assert.Equal(expectedShards[0], map.GetProperty("layers.0.empty").GetString());
            Assert.Equal(expectedShards[1], map.GetProperty("layers.1.w").GetString());
            Assert.Equal(expectedShards[2], map.GetProperty("norm").GetString());
            Assert.Equal(declared.Select(d => d.Name).Order(StringComparer.Ordinal), map.EnumerateObject().Select(p => p.Name));
        }

        using var checkpoint = SafeTensorCheckpoint.Open(_dir.FullPath);
        Assert.True(checkpoint.IsSharded);
        Assert.Equal(3, checkpoint.Files.Count);
        Assert.Equal(1602, checkpoint.DeclaredTotalBytes);
        Assert.Equal(declared.Length, checkpoint.Tensors.Count);
        Assert.Equal(values["embed"], checkpoint.ReadFloats("embed"));
        Assert.Equal(values["layers.1.w"], checkpoint.ReadFloats("layers.1.w"));
        Assert.Equal(800, checkpoint.Data("layers.1.w").Length);
        Assert.Equal(expectedShards[1], Path.GetFileName(checkpoint.FileOf("layers.1.w").FilePath));
        Assert.Equal(SafeTensorDtype.BF16, checkpoint.GetWeight("layers.0.w").Dtype);
        Assert.Equal("pt", checkpoint.FileOf("norm").Metadata["format"]);
        var e = Assert.Throws<ModelFormatException>(() => checkpoint.GetTensor("missing"));
        AssertMentions(e, SafeTensorCheckpoint.IndexFileName, "missing");
    }

    [Fact]
    public void ShardedWriter_OneShard_WritesModelSafetensorsAndRemovesAStaleIndex()
    {
        WriteSharded(_dir.FullPath, maxShardBytes: 800);
        var (_, values) = WriteSharded(_dir.FullPath, maxShardBytes: 1L << 30);

        Assert.False(File.Exists(_dir.File(SafeTensorCheckpoint.IndexFileName)));
        using var checkpoint = SafeTensorCheckpoint.Open(_dir.FullPath);
        Assert.False(checkpoint.IsSharded);
        Assert.Equal(SafeTensorCheckpoint.SingleFileName, Path.GetFileName(checkpoint.SourcePath));
        Assert.Equal(values["layers.1.w"], checkpoint.ReadFloats("layers.1.w"));
    }

    [Fact]
    public void ShardedWriter_TensorLargerThanTheLimit_GetsItsOwnShard()
    {
        using var writer = ShardedSafeTensorWriter.Create(_dir.FullPath,
            [new("small", SafeTensorDtype.F32, [1]), new("huge", SafeTensorDtype.F32, [100]), new("tail", SafeTensorDtype.F32, [1])], maxShardBytes: 16);
        Assert.Equal(3, writer.ShardFileNames.Count);
        Assert.Equal("model-00002-of-00003.safetensors", writer.ShardFileNames[1]);
    }

    [Fact]
    public void ShardedWriter_Abandoned_LeavesNoShardsOrIndex()
    {
        using (var writer = ShardedSafeTensorWriter.Create(_dir.FullPath,
            [new("a", SafeTensorDtype.F32, [4]), new("b", SafeTensorDtype.F32, [4])], maxShardBytes: 16))
        {
            writer.WriteTensorFloats("a", [1, 2, 3, 4]);
            writer.WriteTensorFloats("b", [1, 2]);
            Assert.Throws<InvalidOperationException>(writer.Complete);
        }
        Assert.Empty(Directory.GetFiles(_dir.FullPath));
    }

    [Fact]
    public void ShardedWriter_RejectsGoingBackToACompletedShard()
    {
        using var writer = ShardedSafeTensorWriter.Create(_dir.FullPath,
            [new("a", SafeTensorDtype.F32, [4]), new("b", SafeTensorDtype.F32, [4])], maxShardBytes: 16);
        writer.WriteTensorFloats("a", [1, 2, 3, 4]);
        writer.WriteTensorFloats("b", [1, 2, 3, 4]);
        Assert.Throws<InvalidOperationException>(() => writer.WriteTensorFloats("a", [1]));
    }

    [Fact]
    public void Open_AcceptsTheIndexFileOrAShardFileDirectly()
    {
        WriteSharded(_dir.FullPath, maxShardBytes: 800);
        using (var viaIndex = SafeTensorCheckpoint.Open(_dir.File(SafeTensorCheckpoint.IndexFileName)))
        {
            Assert.Equal(5, viaIndex.Tensors.Count);
        }
        using var oneShard = SafeTensorCheckpoint.Open(_dir.File("model-00002-of-00003.safetensors"));
        Assert.Equal(["layers.1.w"], oneShard.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void Directory_WithOneOddlyNamedFile_OpensIt()
    {
        WriteFloats(_dir.File("consolidated.safetensors"), ("w", SafeTensorDtype.F32, [1], [5f]));
        using var checkpoint = SafeTensorCheckpoint.Open(_dir.FullPath);
        Assert.Equal([5f], checkpoint.ReadFloats("w"));
    }

    [Fact]
    public void Directory_PrefersModelSafetensorsOverOtherFiles()
    {
        WriteFloats(_dir.File("other.safetensors"), ("w", SafeTensorDtype.F32, [1], [1f]));
        WriteFloats(_dir.File("model.safetensors"), ("w", SafeTensorDtype.F32, [1], [2f]));
        using var checkpoint = SafeTensorCheckpoint.Open(_dir.FullPath);
        Assert.Equal([2f], checkpoint.ReadFloats("w"));
    }

    [Fact]
    public void Directory_WithSeveralFilesAndNoIndex_FailsListingThem()
    {
        WriteFloats(_dir.File("a.safetensors"), ("w", SafeTensorDtype.F32, [1], [1f]));
        WriteFloats(_dir.File("b.safetensors"), ("v", SafeTensorDtype.F32, [1], [1f]));
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorCheckpoint.Open(_dir.FullPath));
        AssertMentions(e, Path.GetFileName(_dir.FullPath), SafeTensorCheckpoint.IndexFileName, "a.safetensors", "b.safetensors");
    }

    [Fact]
    public void Directory_WithoutSafetensors_IsNotFound()
    {
        System.IO.File.WriteAllText(_dir.File("model-00001-of-00001.safetensors.tmp"), "partial");
        var e = Assert.Throws<FileNotFoundException>(() => SafeTensorCheckpoint.Open(_dir.FullPath));
        Assert.Contains(SafeTensorCheckpoint.SingleFileName, e.Message);
        Assert.Throws<FileNotFoundException>(() => SafeTensorCheckpoint.Open(_dir.File("nothing-here")));
    }

    private string WriteIndex(string json)
    {
        string path = _dir.File(SafeTensorCheckpoint.IndexFileName);
        System.IO.File.WriteAllText(path, json);
        return path;
    }

    private void WriteShard(string name, params string[] tensors) =>
        WriteFloats(_dir.File(name), [.. tensors.Select(t => (t, SafeTensorDtype.F32, new long[] { 1 }, new[] { 1f }))]);

    [Theory]
    [InlineData("../model.safetensors")]
    [InlineData("..")]
    [InlineData("sub/model.safetensors")]
    [InlineData("sub\\\\model.safetensors")]
    [InlineData("/etc/passwd")]
    [InlineData("C:model.safetensors")]
    [InlineData("")]
    [InlineData(".")]
    public void Index_WithTraversalOrPathNames_Fails(string shard)
    {
        WriteShard("model.safetensors", "w");
        string index = WriteIndex($$$"""{"metadata":{"total_size":4},"weight_map":{"w":"{{{shard}}}"}}""");
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorCheckpoint.Open(index));
        AssertMentions(e, SafeTensorCheckpoint.IndexFileName, "weight_map[w]", "file name");
    }

    [Fact]
    public void Index_WithAMissingShard_FailsNamingTensorAndShard()
    {
        WriteShard("model-00001-of-00002.safetensors", "a");
        string index = WriteIndex("""{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}""");
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorCheckpoint.Open(index));
        AssertMentions(e, SafeTensorCheckpoint.IndexFileName, "weight_map[b]", "model-00002-of-00002.safetensors", "no such file");
    }

    [Fact]
    public void Index_WithATensorItsShardLacks_Fails()
    {
        WriteShard("model-00001-of-00002.safetensors", "a");
        WriteShard("model-00002-of-00002.safetensors", "b");
        string index = WriteIndex("""{"weight_map":{"a":"model-00001-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}}""");
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorCheckpoint.Open(index));
        AssertMentions(e, SafeTensorCheckpoint.IndexFileName, "weight_map[c]", "tensor c in shard model-00002-of-00002.safetensors");
    }

    [Fact]
    public void Index_PointingAtTheWrongShard_Fails()
    {
        WriteShard("model-00001-of-00002.safetensors", "a");
        WriteShard("model-00002-of-00002.safetensors", "b");
        string index = WriteIndex("""{"weight_map":{"a":"model-00002-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}""");
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorCheckpoint.Open(index));
        AssertMentions(e, "weight_map[a]");
    }

    [Fact]
    public void TensorInTwoShards_Fails()
    {
        WriteShard("model-00001-of-00002.safetensors", "a", "dup");
        WriteShard("model-00002-of-00002.safetensors", "b", "dup");
        string index = WriteIndex("""{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors","dup":"model-00001-of-00002.safetensors"}}""");
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorCheckpoint.Open(index));
        AssertMentions(e, "model-00002-of-00002.safetensors", "tensor dup", "also in model-00001-of-00002.safetensors");
    }

    [Fact]
    public void CorruptShard_FailsNamingTheShard()
    {
        WriteShard("model-00001-of-00002.safetensors", "a");
        System.IO.File.WriteAllBytes(_dir.File("model-00002-of-00002.safetensors"), [1, 2, 3]);
        string index = WriteIndex("""{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}""");
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorCheckpoint.Open(index));
        AssertMentions(e, "model-00002-of-00002.safetensors", "header length");
    }

    [Theory]
    [InlineData("""{"metadata":{"total_size":4}}""", "weight_map")]
    [InlineData("""{"weight_map":["model.safetensors"]}""", "weight_map")]
    [InlineData("""{"weight_map":{"w":3}}""", "weight_map[w]")]
    [InlineData("""{"weight_map":{"w":"model.safetensors","w":"model.safetensors"}}""", "weight_map[w]")]
    [InlineData("""{"weight_map":{"w":"model.safetensors"},"metadata":{"total_size":"big"}}""", "metadata.total_size")]
    [InlineData("""{"weight_map":{"w":"model.safetensors"},"metadata":{"total_size":-1}}""", "metadata.total_size")]
    [InlineData("""{"weight_map":{"w":"model.safetensors"}""", "index JSON")]
    [InlineData("""[]""", "index")]
    [InlineData("""{"weight_map":{"w":"model.safetensors"}} trailing""", "index JSON")]
    public void MalformedIndex_Fails(string json, string field)
    {
        WriteShard("model.safetensors", "w");
        string index = WriteIndex(json);
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorCheckpoint.Open(index));
        AssertMentions(e, SafeTensorCheckpoint.IndexFileName, field);
    }

    [Fact]
    public void Index_WithFloatTotalSizeAndExtraKeys_IsAccepted()
    {
        WriteShard("model.safetensors", "w");
        string index = WriteIndex("""{"metadata":{"total_size":4.0,"format":"pt"},"weight_map":{"w":"model.safetensors"},"extra":[1,2]}""");
        using var checkpoint = SafeTensorCheckpoint.Open(index);
        Assert.Equal(4, checkpoint.DeclaredTotalBytes);
        Assert.Equal([1f], checkpoint.ReadFloats("w"));
    }
}
