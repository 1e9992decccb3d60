// Write → read round trips through SafeTensorWriter and SafeTensorFile, the byte-exact layout against a hand-built
// file, the streaming and ordering rules of the writer, and proof that reads are spans into the mapping.

using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Sirocco.Engine.Formats;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Kernels.Quant;
using static Sirocco.Engine.Tests.Formats.SafeTensors.SafeTensorTestFiles;

namespace Sirocco.Engine.Tests.Formats.SafeTensors;

public sealed class SafeTensorRoundTripTests
{
    [Fact]
    public void RoundTrip_F32_F16_BF16_ReturnsValuesAtTheirPrecision()
    {
        using var dir = new TempDir();
        string path = dir.File("model.safetensors");
        float[] values = Values(3 * 5, seed: 1);
        WriteFloats(path,
            ("f32", SafeTensorDtype.F32, [3, 5], values),
            ("f16", SafeTensorDtype.F16, [3, 5], values),
            ("bf16", SafeTensorDtype.BF16, [15], values));

        using var file = SafeTensorFile.Open(path);
        Assert.Equal(["f32", "f16", "bf16"], file.Tensors.Select(t => t.Name));
        Assert.Equal("pt", file.Metadata["format"]);
        SafeTensorInfo f16 = file.GetTensor("f16");
        Assert.Equal(SafeTensorDtype.F16, f16.Dtype);
        Assert.Equal([3L, 5L], f16.Shape);
        Assert.Equal(15, f16.ElementCount);
        Assert.Equal(30, f16.ByteCount);

        Assert.Equal(values, file.ReadFloats("f32"));
        Assert.Equal(values.Select(v => (float)(Half)v), file.ReadFloats("f16"));
        float[] bf16 = file.ReadFloats("bf16");
        for (int i = 0; i < values.Length; i++)
        {
            // bfloat16 keeps 8 significant bits: round-to-nearest errs by at most half a unit, 2^-8 relative.
            Assert.InRange(bf16[i], values[i] - MathF.Abs(values[i]) / 256, values[i] + MathF.Abs(values[i]) / 256);
            Assert.Equal(BFloat16Bits.ToSingle(BFloat16Bits.FromSingle(values[i])), bf16[i]);
        }
    }

    [Fact]
    public void RoundTrip_ZeroSizeAndScalarTensors()
    {
        using var dir = new TempDir();
        string path = dir.File("edge.safetensors");
        WriteFloats(path,
            ("empty", SafeTensorDtype.F32, [0], []),
            ("empty2d", SafeTensorDtype.BF16, [4, 0], []),
            ("scalar", SafeTensorDtype.F32, [], [3.25f]),
            ("last_empty", SafeTensorDtype.F16, [0, 7], []));

        using var file = SafeTensorFile.Open(path);
        Assert.Equal(0, file.GetTensor("empty").ByteCount);
        Assert.Equal(0, file.GetTensor("empty2d").ElementCount);
        Assert.Empty(file.GetTensor("scalar").Shape);
        Assert.Equal(1, file.GetTensor("scalar").ElementCount);
        Assert.Equal([3.25f], file.ReadFloats("scalar"));
        Assert.Empty(file.ReadFloats("empty2d"));
        Assert.True(file.Data("last_empty").IsEmpty);
    }

    [Fact]
    public void RoundTrip_ManyTensors_KeepsOrderAndData()
    {
        using var dir = new TempDir();
        string path = dir.File("many.safetensors");
        const int count = 600;
        var declarations = Enumerable.Range(0, count)
            .Select(i => new SafeTensorDeclaration($"model.layers.{i}.weight", (i % 3) switch { 0 => SafeTensorDtype.F32, 1 => SafeTensorDtype.F16, _ => SafeTensorDtype.BF16 }, [i % 7, 3]))
            .ToArray();
        using (var writer = SafeTensorWriter.Create(path, declarations))
        {
            foreach (var d in declarations)
            {
                var bytes = new byte[d.ByteCount];
                for (int b = 0; b < bytes.Length; b++)
                {
                    bytes[b] = (byte)(d.Name.Length * 31 + b);
                }
                writer.WriteTensor(d.Name, bytes);
            }
            writer.Complete();
        }

        using var file = SafeTensorFile.Open(path);
        Assert.Equal(declarations.Select(d => d.Name), file.Tensors.Select(t => t.Name));
        foreach (var d in declarations)
        {
            ReadOnlySpan<byte> data = file.Data(d.Name);
            Assert.Equal(d.ByteCount, data.Length);
            for (int b = 0; b < data.Length; b++)
            {
                Assert.Equal((byte)(d.Name.Length * 31 + b), data[b]);
            }
        }
    }

    [Fact]
    public void Writer_MatchesHandBuiltFileByteForByte()
    {
        // The layout the reference writer produces: compact JSON, __metadata__ first, header padded with spaces so
        // that the data starts at a multiple of 8; 148 bytes of JSON + 4 spaces = 152.
        const string json = """{"__metadata__":{"format":"pt"},"weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"scale":{"dtype":"BF16","shape":[],"data_offsets":[8,10]}}""";
        Assert.Equal(148, json.Length);
        byte[] expected =
        [
            152, 0, 0, 0, 0, 0, 0, 0,
            .. Encoding.ASCII.GetBytes(json + "    "),
            0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0, // F32 1.5, -2.0
            0x00, 0x3F, // BF16 0.5
        ];

        using var dir = new TempDir();
        string path = dir.File("exact.safetensors");
        using (var writer = SafeTensorWriter.Create(path,
            [new("weight", SafeTensorDtype.F32, [2]), new("scale", SafeTensorDtype.BF16, [])]))
        {
            Assert.Equal(expected.Length, writer.FileBytes);
            writer.WriteTensorFloats("weight", [1.5f, -2f]);
            writer.WriteTensor("scale", [0x00, 0x3F]);
            writer.Complete();
        }
        Assert.Equal(expected, File.ReadAllBytes(path));

        // And the hand-built bytes read back as intended.
        string handBuilt = Write(dir, "hand.safetensors", expected);
        using var file = SafeTensorFile.Open(handBuilt);
        Assert.Equal(152, file.HeaderBytes);
        Assert.Equal(160, file.GetTensor("weight").DataOffset);
        Assert.Equal([1.5f, -2f], file.ReadFloats("weight"));
        Assert.Equal([0.5f], file.ReadFloats("scale"));
    }

    [Fact]
    public void Writer_EmptyMetadata_OmitsMetadataKey_AndHeaderIsPadded()
    {
        using var dir = new TempDir();
        string path = dir.File("bare.safetensors");
        using (var writer = SafeTensorWriter.Create(path, [new("x", SafeTensorDtype.F16, [3])], new Dictionary<string, string>()))
        {
            writer.WriteTensorFloats("x", [1, 2, 3]);
            writer.Complete();
        }
        byte[] bytes = File.ReadAllBytes(path);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, headerLength % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        Assert.DoesNotContain("__metadata__", header);
        Assert.StartsWith("""{"x":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}}""", header);
        using var file = SafeTensorFile.Open(path);
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void RoundTrip_NonAsciiAndEscapedNamesAndMetadata()
    {
        using var dir = new TempDir();
        string path = dir.File("names.safetensors");
        string odd = "poids.\"é\\ü\u4e2d\n";
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "naïve \"quoted\"" };
        using (var writer = SafeTensorWriter.Create(path, [new(odd, SafeTensorDtype.F32, [1])], metadata))
        {
            writer.WriteTensorFloats(odd, [7f]);
            writer.Complete();
        }
        using var file = SafeTensorFile.Open(path);
        Assert.Equal([7f], file.ReadFloats(odd));
        Assert.Equal("naïve \"quoted\"", file.Metadata["note"]);
    }

    [Fact]
    public void Data_IsASpanIntoTheMapping_AndAllocatesNothing()
    {
        using var dir = new TempDir();
        string path = dir.File("mapped.safetensors");
        const int count = 1 << 20; // 4 MiB of F32
        float[] values = Values(count, seed: 7);
        WriteFloats(path, ("small", SafeTensorDtype.BF16, [3], [1, 2, 3]), ("big", SafeTensorDtype.F32, [1024, 1024], values));

        using var file = SafeTensorFile.Open(path);
        SafeTensorInfo big = file.GetTensor("big");
        _ = file.Data("big"); // warm up the lookup path
        long before = GC.GetAllocatedBytesForCurrentThread();
        ReadOnlySpan<byte> data = file.Data("big");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(allocated < 1024, $"Data() allocated {allocated} bytes");
        ReadOnlySpan<byte> whole = file.Mapped.Span(0, checked((int)file.Mapped.Length));
        long offset = Unsafe.ByteOffset(ref MemoryMarshal.GetReference(whole), ref MemoryMarshal.GetReference(data));
        Assert.Equal(big.DataOffset, offset);
        Assert.True(MemoryMarshal.Cast<byte, float>(data).SequenceEqual(values));
    }

    [Fact]
    public void Writer_StreamsChunks_WithoutBufferingTheTensor()
    {
        using var dir = new TempDir();
        string path = dir.File("stream.safetensors");
        const int chunkBytes = 1 << 20;
        const int chunks = 48;
        var chunk = new byte[chunkBytes];
        long before = GC.GetAllocatedBytesForCurrentThread();
        using (var writer = SafeTensorWriter.Create(path, [new("w", SafeTensorDtype.BF16, [chunks, chunkBytes / 2])]))
        {
            for (int c = 0; c < chunks; c++)
            {
                chunk.AsSpan().Fill((byte)c);
                writer.WriteTensor("w", chunk);
            }
            writer.Complete();
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        // 48 MiB went through; only the FileStream buffer (1 MiB) and small objects may be allocated.
        Assert.True(allocated < 4 * chunkBytes, $"writer allocated {allocated} bytes for {chunks * chunkBytes} written");

        using var file = SafeTensorFile.Open(path);
        ReadOnlySpan<byte> data = file.Data("w");
        for (int c = 0; c < chunks; c++)
        {
            Assert.Equal((byte)c, data[c * chunkBytes]);
            Assert.Equal((byte)c, data[(c * chunkBytes) + chunkBytes - 1]);
        }
    }

    [Fact]
    public void Writer_FloatsInChunks_EqualOneWrite()
    {
        using var dir = new TempDir();
        float[] values = Values(200_001, seed: 3);
        string one = dir.File("one.safetensors");
        string many = dir.File("many.safetensors");
        WriteFloats(one, ("w", SafeTensorDtype.BF16, [values.Length], values));
        using (var writer = SafeTensorWriter.Create(many, [new("w", SafeTensorDtype.BF16, [values.Length])]))
        {
            for (int start = 0; start < values.Length; start += 70_000)
            {
                writer.WriteTensorFloats("w", values.AsSpan(start, Math.Min(70_000, values.Length - start)));
            }
            writer.Complete();
        }
        Assert.Equal(File.ReadAllBytes(one), File.ReadAllBytes(many));
    }

    [Fact]
    public void Writer_RejectsOutOfOrderOverrunAndUndeclaredWrites()
    {
        using var dir = new TempDir();
        string path = dir.File("order.safetensors");
        using var writer = SafeTensorWriter.Create(path, [new("a", SafeTensorDtype.F32, [2]), new("b", SafeTensorDtype.F32, [1])]);
        Assert.Equal("a", writer.NextTensor);
        var e = Assert.Throws<InvalidOperationException>(() => writer.WriteTensor("b", new byte[4]));
        Assert.Contains("tensor a is due next", e.Message);
        Assert.Throws<InvalidOperationException>(() => writer.WriteTensor("a", new byte[12]));
        Assert.Contains("never declared", Assert.Throws<InvalidOperationException>(() => writer.WriteTensor("zzz", new byte[1])).Message);
        writer.WriteTensor("a", new byte[4]);
        writer.WriteTensor("a", new byte[4]);
        Assert.Equal("b", writer.NextTensor);
        Assert.Throws<InvalidOperationException>(() => writer.WriteTensor("a", new byte[1]));
    }

    [Fact]
    public void Writer_IncompleteData_FailsAndLeavesNoFile()
    {
        using var dir = new TempDir();
        string path = dir.File("partial.safetensors");
        using (var writer = SafeTensorWriter.Create(path, [new("a", SafeTensorDtype.F32, [2]), new("b", SafeTensorDtype.F32, [1])]))
        {
            writer.WriteTensor("a", new byte[8]);
            var e = Assert.Throws<InvalidOperationException>(writer.Complete);
            Assert.Contains("tensor b has 0 of 4 bytes", e.Message);
        }
        Assert.Empty(Directory.GetFiles(dir.FullPath));
    }

    [Fact]
    public void Writer_AbandonedRewrite_KeepsTheOldFile()
    {
        using var dir = new TempDir();
        string path = dir.File("keep.safetensors");
        WriteFloats(path, ("a", SafeTensorDtype.F32, [1], [1f]));
        byte[] old = File.ReadAllBytes(path);
        using (var writer = SafeTensorWriter.Create(path, [new("a", SafeTensorDtype.F32, [1])]))
        {
            // Disposed without Complete.
        }
        Assert.Equal(old, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir.FullPath));
    }

    [Theory]
    [InlineData("")]
    [InlineData("__metadata__")]
    public void Writer_RejectsReservedOrEmptyNames(string name)
    {
        using var dir = new TempDir();
        Assert.Throws<ArgumentException>(() => SafeTensorWriter.Create(dir.File("x.safetensors"), [new(name, SafeTensorDtype.F32, [1])]));
        Assert.Empty(Directory.GetFiles(dir.FullPath));
    }

    [Fact]
    public void Writer_RejectsDuplicateNamesNegativeAndOverflowingShapes()
    {
        using var dir = new TempDir();
        string path = dir.File("x.safetensors");
        Assert.Throws<ArgumentException>(() => SafeTensorWriter.Create(path, [new("a", SafeTensorDtype.F32, [1]), new("a", SafeTensorDtype.F32, [1])]));
        Assert.Throws<ArgumentException>(() => SafeTensorWriter.Create(path, [new("a", SafeTensorDtype.F32, [-1])]));
        Assert.Throws<ArgumentException>(() => SafeTensorWriter.Create(path, [new("a", SafeTensorDtype.F32, [1L << 40, 1L << 30])]));
        Assert.Throws<ArgumentException>(() => SafeTensorWriter.Create(path, [new("a", SafeTensorDtype.F4, [3])]));
        Assert.Empty(Directory.GetFiles(dir.FullPath));
    }

    [Fact]
    public void UnsupportedDtype_ParsesButIsNotAWeight()
    {
        using var dir = new TempDir();
        string path = dir.File("ints.safetensors");
        using (var writer = SafeTensorWriter.Create(path,
            [new("ids", SafeTensorDtype.I64, [2]), new("fp8", SafeTensorDtype.F8_E4M3, [4]), new("w", SafeTensorDtype.F32, [1])]))
        {
            writer.WriteTensor("ids", new byte[16]);
            writer.WriteTensor("fp8", new byte[4]);
            writer.WriteTensorFloats("w", [1f]);
            Assert.Throws<UnsupportedModelException>(() => writer.WriteTensorFloats("ids", [1f]));
            writer.Complete();
        }
        using var file = SafeTensorFile.Open(path);
        Assert.Equal(16, file.Data("ids").Length);
        var e = Assert.Throws<UnsupportedModelException>(() => file.GetWeight("ids"));
        AssertMentions(e, "ints.safetensors", "tensor ids", "I64");
        e = Assert.Throws<UnsupportedModelException>(() => file.ReadFloats("fp8"));
        AssertMentions(e, "ints.safetensors", "tensor fp8", "F8_E4M3");
        Assert.Equal([1f], file.ReadFloats("w"));
    }

    [Fact]
    public void MissingTensor_IsAFormatErrorNamingIt()
    {
        using var dir = new TempDir();
        string path = dir.File("m.safetensors");
        WriteFloats(path, ("a", SafeTensorDtype.F32, [1], [1f]));
        using var file = SafeTensorFile.Open(path);
        var e = Assert.Throws<ModelFormatException>(() => file.GetTensor("lm_head.weight"));
        AssertMentions(e, "m.safetensors", "lm_head.weight");
        Assert.False(file.TryGetTensor("lm_head.weight", out _));
    }

    [Fact]
    public void Data_OfAnotherFilesTensor_IsRejected()
    {
        using var dir = new TempDir();
        WriteFloats(dir.File("a.safetensors"), ("t", SafeTensorDtype.F32, [1], [1f]));
        WriteFloats(dir.File("b.safetensors"), ("t", SafeTensorDtype.F32, [1], [2f]));
        using var a = SafeTensorFile.Open(dir.File("a.safetensors"));
        using var b = SafeTensorFile.Open(dir.File("b.safetensors"));
        SafeTensorInfo fromB = b.GetTensor("t");
        Assert.Throws<ArgumentException>(() => a.Data(fromB).Length);
    }
}
