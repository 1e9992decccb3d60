using System.Text;
using Sirocco.Engine.Formats;
using Sirocco.Engine.Formats.Gguf;
using Sirocco.Kernels.Quant;

namespace Sirocco.Engine.Tests.Formats.Gguf;

/// <summary>Truncated, garbled and hostile GGUF files must give one ModelFormatException (or UnsupportedModelException
/// for valid-but-unsupported features) naming the file and the field, never a crash, a hang or a huge allocation.</summary>
public class GgufHostileFileTests
{
    /// <summary>Writes GGUF bytes field by field, so tests can put any value anywhere.</summary>
#pragma warning disable CA1001 // MemoryStream owns no unmanaged resources; a test builder need not be disposed.
    private sealed class Raw
    {
        private readonly MemoryStream _ms = new();
        private readonly BinaryWriter _w;

        public Raw() => _w = new BinaryWriter(_ms);

        public Raw U32(uint v) { _w.Write(v); return this; }

        public Raw U64(ulong v) { _w.Write(v); return this; }

        public Raw U8(byte v) { _w.Write(v); return this; }

        public Raw Bytes(byte[] b) { _w.Write(b); return this; }

        public Raw Str(string s) => StrBytes(Encoding.UTF8.GetBytes(s));

        public Raw StrBytes(byte[] b) { _w.Write((ulong)b.Length); _w.Write(b); return this; }

        public Raw Header(uint version, ulong tensors, ulong kvs) => U32(GgufFile.Magic).U32(version).U64(tensors).U64(kvs);

        public Raw Tensor(string name, uint type, ulong offset, params ulong[] dims)
        {
            Str(name).U32((uint)dims.Length);
            foreach (var d in dims)
            {
                U64(d);
            }
            return U32(type).U64(offset);
        }

        public Raw PadTo(int alignment)
        {
            while (_ms.Length % alignment != 0)
            {
                _w.Write((byte)0);
            }
            return this;
        }

        public byte[] ToArray() { _w.Flush(); return _ms.ToArray(); }
    }

    private static T OpenFails<T>(byte[] bytes) where T : Exception
    {
        using var dir = new TempDir();
        string path = dir.File("bad.gguf");
        File.WriteAllBytes(path, bytes);
        var e = Assert.ThrowsAny<Exception>(() => GgufFile.Open(path).Dispose());
        Assert.IsType<T>(e);
        Assert.Contains("bad.gguf", e.Message);
        return (T)e;
    }

    private static byte[] ValidFile()
    {
        using var dir = new TempDir();
        var w = new GgufWriter();
        w.Add("general.architecture", "llama");
        w.Add("general.name", "hostile ✓");
        w.Add("tokenizer.ggml.tokens", GgufValue.Array(new[] { "<unk>", "<s>", "</s>", "▁a" }));
        w.Add("tokenizer.ggml.scores", GgufValue.Array(new[] { 0f, 0f, 0f, -1f }));
        w.Add("x.nested", GgufValue.ArrayOfArrays([GgufValue.Array(new[] { 1, 2 })]));
        w.Add("x.bool", true);
        w.AddTensor("token_embd.weight", GgmlType.Q8_0, 32, 2);
        w.AddTensor("output_norm.weight", GgmlType.F32, 8);
        w.WriteFile(dir.File("v.gguf"), new Dictionary<string, byte[]>
        {
            ["token_embd.weight"] = Enumerable.Repeat((byte)1, 68).ToArray(),
            ["output_norm.weight"] = new byte[32],
        });
        return File.ReadAllBytes(dir.File("v.gguf"));
    }

    [Fact]
    public void TruncationAtEveryOffset_IsAFormatError()
    {
        byte[] full = ValidFile();
        using var dir = new TempDir();
        string path = dir.File("cut.gguf");
        for (int length = 0; length < full.Length; length++)
        {
            File.WriteAllBytes(path, full.AsSpan(0, length).ToArray());
            var e = Assert.ThrowsAny<Exception>(() => GgufFile.Open(path).Dispose());
            Assert.True(e is ModelFormatException, $"truncated to {length} bytes: {e.GetType().Name}: {e.Message}");
            Assert.Contains("cut.gguf", e.Message);
        }
    }

    [Fact]
    public void RandomByteCorruption_NeverEscapesAsAnotherException()
    {
        byte[] full = ValidFile();
        var rng = new Random(1234);
        using var dir = new TempDir();
        string path = dir.File("garbled.gguf");
        for (int trial = 0; trial < 3000; trial++)
        {
            var copy = (byte[])full.Clone();
            int flips = 1 + rng.Next(4);
            for (int i = 0; i < flips; i++)
            {
                // Mostly the header, where the structure lives; sometimes anywhere.
                int at = rng.Next(4) == 0 ? rng.Next(copy.Length) : rng.Next(Math.Min(copy.Length, 400));
                copy[at] = rng.Next(3) == 0 ? (byte)0xFF : (byte)rng.Next(256);
            }
            File.WriteAllBytes(path, copy);
            try
            {
                using var f = GgufFile.Open(path);
                foreach (var t in f.Tensors)
                {
                    _ = f.TensorData(t).Length;
                }
            }
            catch (Exception e) when (e is ModelFormatException or UnsupportedModelException)
            {
                Assert.Contains("garbled.gguf", e.Message);
            }
        }
    }

    [Fact]
    public void WrongMagic_SaysWhatWasFound()
    {
        var e = OpenFails<ModelFormatException>(new Raw().U32(0x464C457F).U32(3).U64(0).U64(0).ToArray());
        Assert.Contains("magic", e.Message);
        Assert.Contains("7f 45 4c 46", e.Message);
    }

    [Fact]
    public void Version1_IsUnsupported() =>
        Assert.Contains("version 1", OpenFails<UnsupportedModelException>(new Raw().Header(1, 0, 0).ToArray()).Message);

    [Fact]
    public void BigEndianFile_IsUnsupported() =>
        Assert.Contains("big-endian", OpenFails<UnsupportedModelException>(new Raw().U32(GgufFile.Magic).U32(0x03000000).U64(0).U64(0).ToArray()).Message);

    [Fact]
    public void UnknownVersion_IsAFormatError() =>
        Assert.Contains("version", OpenFails<ModelFormatException>(new Raw().Header(77, 0, 0).ToArray()).Message);

    [Fact]
    public void AbsurdTensorCount_IsRejectedBeforeAllocating() =>
        Assert.Contains("tensor_count", OpenFails<ModelFormatException>(new Raw().Header(3, ulong.MaxValue / 2, 0).ToArray()).Message);

    [Fact]
    public void AbsurdMetadataCount_IsRejectedBeforeAllocating() =>
        Assert.Contains("metadata_kv_count", OpenFails<ModelFormatException>(new Raw().Header(3, 0, 1UL << 40).ToArray()).Message);

    [Fact]
    public void AbsurdStringLength_IsRejected()
    {
        var e = OpenFails<ModelFormatException>(new Raw().Header(3, 0, 1).U64(ulong.MaxValue - 3).Bytes(new byte[32]).ToArray());
        Assert.Contains("key length", e.Message);
        Assert.Equal(24, e.Offset);
    }

    [Fact]
    public void AbsurdArrayLength_IsRejected()
    {
        var bytes = new Raw().Header(3, 0, 1).Str("tokenizer.ggml.scores").U32((uint)GgufValueType.Array)
            .U32((uint)GgufValueType.Float32).U64(1UL << 60).ToArray();
        Assert.Contains("tokenizer.ggml.scores array length", OpenFails<ModelFormatException>(bytes).Message);
    }

    [Fact]
    public void InvalidUtf8Key_IsRejected()
    {
        var bytes = new Raw().Header(3, 0, 1).StrBytes([0x61, 0xC3, 0x28]).U32((uint)GgufValueType.UInt8).U8(1).ToArray();
        Assert.Contains("UTF-8", OpenFails<ModelFormatException>(bytes).Message);
    }

    [Fact]
    public void UnknownValueType_IsRejected()
    {
        var bytes = new Raw().Header(3, 0, 1).Str("k").U32(13).U8(1).ToArray();
        var e = OpenFails<ModelFormatException>(bytes);
        Assert.Contains("metadata key k value type", e.Message);
        Assert.Contains("13", e.Message);
    }

    [Fact]
    public void DeeplyNestedArrays_AreRejected()
    {
        var raw = new Raw().Header(3, 0, 1).Str("deep").U32((uint)GgufValueType.Array);
        for (int i = 0; i < 100; i++)
        {
            raw.U32((uint)GgufValueType.Array).U64(1);
        }
        raw.U32((uint)GgufValueType.UInt8).U64(0);
        Assert.Contains("nested", OpenFails<ModelFormatException>(raw.ToArray()).Message);
    }

    [Fact]
    public void BoolOtherThanZeroOrOne_IsRejected() =>
        Assert.Contains("bool", OpenFails<ModelFormatException>(new Raw().Header(3, 0, 1).Str("b").U32((uint)GgufValueType.Bool).U8(2).ToArray()).Message);

    [Fact]
    public void DuplicateKey_IsRejected() =>
        Assert.Contains("duplicate", OpenFails<ModelFormatException>(new Raw().Header(3, 0, 2)
            .Str("k").U32((uint)GgufValueType.UInt8).U8(1).Str("k").U32((uint)GgufValueType.UInt8).U8(2).ToArray()).Message);

    [Theory]
    [InlineData(0u)]
    [InlineData(3u)]
    [InlineData(48u)]
    public void BadAlignment_IsRejected(uint alignment) =>
        Assert.Contains("general.alignment", OpenFails<ModelFormatException>(new Raw().Header(3, 0, 1)
            .Str("general.alignment").U32((uint)GgufValueType.UInt32).U32(alignment).ToArray()).Message);

    [Fact]
    public void UnknownTensorType_IsUnsupportedAndNamed()
    {
        var bytes = new Raw().Header(3, 1, 0).Tensor("blk.0.attn_q.weight", 99, 0, 32).PadTo(32).Bytes(new byte[128]).ToArray();
        var e = OpenFails<UnsupportedModelException>(bytes);
        Assert.Contains("blk.0.attn_q.weight", e.Message);
        Assert.Contains("99", e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void DimensionCountOutOfRange_IsRejected(int dims)
    {
        var bytes = new Raw().Header(3, 1, 0).Tensor("t", 0, 0, Enumerable.Repeat(1UL, dims).ToArray()).PadTo(32).Bytes(new byte[64]).ToArray();
        Assert.Contains("n_dims", OpenFails<ModelFormatException>(bytes).Message);
    }

    [Fact]
    public void RowNotAWholeNumberOfBlocks_IsRejected()
    {
        var bytes = new Raw().Header(3, 1, 0).Tensor("t", (uint)GgmlType.Q4_K, 0, 100).PadTo(32).Bytes(new byte[256]).ToArray();
        var e = OpenFails<ModelFormatException>(bytes);
        Assert.Contains("block size 256", e.Message);
    }

    [Fact]
    public void ElementCountOverflow_IsRejected()
    {
        var bytes = new Raw().Header(3, 1, 0).Tensor("t", 0, 0, 1UL << 39, 1UL << 39).PadTo(32).ToArray();
        Assert.Contains("t dimensions", OpenFails<ModelFormatException>(bytes).Message);
    }

    [Fact]
    public void TensorDataPastTheEnd_IsRejected()
    {
        var bytes = new Raw().Header(3, 1, 0).Tensor("big", 0, 0, 1024).PadTo(32).Bytes(new byte[100]).ToArray();
        var e = OpenFails<ModelFormatException>(bytes);
        Assert.Contains("tensor big data", e.Message);
        Assert.Contains("4096 bytes", e.Message);
    }

    [Fact]
    public void MisalignedTensorOffset_IsRejected()
    {
        var bytes = new Raw().Header(3, 1, 0).Tensor("t", 0, 4, 8).PadTo(32).Bytes(new byte[64]).ToArray();
        Assert.Contains("alignment", OpenFails<ModelFormatException>(bytes).Message);
    }

    [Fact]
    public void OverlappingTensors_AreRejected()
    {
        var bytes = new Raw().Header(3, 2, 0).Tensor("a", 0, 0, 16).Tensor("b", 0, 32, 16).PadTo(32).Bytes(new byte[128]).ToArray();
        var e = OpenFails<ModelFormatException>(bytes);
        Assert.Contains("tensor b", e.Message);
        Assert.Contains("overlap", e.Message);
    }

    [Fact]
    public void DuplicateTensorName_IsRejected()
    {
        var bytes = new Raw().Header(3, 2, 0).Tensor("a", 0, 0, 8).Tensor("a", 0, 32, 8).PadTo(32).Bytes(new byte[64]).ToArray();
        Assert.Contains("duplicate", OpenFails<ModelFormatException>(bytes).Message);
    }

    [Fact]
    public void EmptyFile_IsAFormatError() => Assert.Contains("magic", OpenFails<ModelFormatException>([]).Message);
}
