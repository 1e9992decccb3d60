using Sirocco.Engine.Formats.Gguf;
using Sirocco.Kernels.Quant;

namespace Sirocco.Engine.Tests.Formats.Gguf;

public class GgufRoundTripTests
{
    private static GgufWriter EveryValueType(int version)
    {
        var w = new GgufWriter(version);
        w.Add("general.architecture", "llama");
        w.Add("t.u8", GgufValue.Of((byte)200));
        w.Add("t.i8", GgufValue.Of((sbyte)-100));
        w.Add("t.u16", GgufValue.Of((ushort)60000));
        w.Add("t.i16", GgufValue.Of((short)-30000));
        w.Add("t.u32", GgufValue.Of(4_000_000_000u));
        w.Add("t.i32", GgufValue.Of(-2_000_000_000));
        w.Add("t.f32", GgufValue.Of(3.25f));
        w.Add("t.bool", GgufValue.Of(true));
        w.Add("t.string", GgufValue.Of("héllo ▁ 🌍"));
        w.Add("t.u64", GgufValue.Of(ulong.MaxValue));
        w.Add("t.i64", GgufValue.Of(long.MinValue));
        w.Add("t.f64", GgufValue.Of(Math.PI));
        w.Add("t.empty_string", GgufValue.Of(""));
        w.Add("t.arr.u8", GgufValue.Array(new byte[] { 1, 2, 255 }));
        w.Add("t.arr.i8", GgufValue.Array(new sbyte[] { -1, 0, 1 }));
        w.Add("t.arr.u16", GgufValue.Array(new ushort[] { 1, 65535 }));
        w.Add("t.arr.i16", GgufValue.Array(new short[] { -1, 32767 }));
        w.Add("t.arr.u32", GgufValue.Array(new uint[] { 7, uint.MaxValue }));
        w.Add("t.arr.i32", GgufValue.Array(new[] { -7, int.MaxValue }));
        w.Add("t.arr.f32", GgufValue.Array(new[] { -0f, float.NaN, float.PositiveInfinity, 1e-38f }));
        w.Add("t.arr.bool", GgufValue.Array(new[] { true, false, true }));
        w.Add("t.arr.string", GgufValue.Array(new[] { "<s>", "", "▁the", "<0x0A>" }));
        w.Add("t.arr.u64", GgufValue.Array(new ulong[] { 0, ulong.MaxValue }));
        w.Add("t.arr.i64", GgufValue.Array(new long[] { long.MinValue, 5 }));
        w.Add("t.arr.f64", GgufValue.Array(new[] { double.Epsilon, -2.5 }));
        w.Add("t.arr.empty", GgufValue.Array(Array.Empty<int>()));
        w.Add("t.arr.nested", GgufValue.ArrayOfArrays([
            GgufValue.Array(new[] { 1, 2, 3 }),
            GgufValue.Array(new[] { "a", "bc" }),
            GgufValue.ArrayOfArrays([GgufValue.Array(new[] { 1.5f }), GgufValue.Array(Array.Empty<byte>())]),
        ]));
        return w;
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void EveryMetadataType_RoundTripsExactly(int version)
    {
        using var dir = new TempDir();
        var w = EveryValueType(version);
        w.WriteFile(dir.File("m.gguf"), new Dictionary<string, byte[]>());
        using var f = GgufFile.Open(dir.File("m.gguf"));
        Assert.Equal(version, f.Version);
        Assert.Equal(w.Metadata.Select(kv => kv.Key), f.MetadataInOrder.Select(kv => kv.Key));
        foreach (var (key, value) in w.Metadata)
        {
            Assert.True(value.ContentEquals(f.Metadata[key]), $"{key}: wrote {value}, read {f.Metadata[key]}");
        }
        Assert.Equal("héllo ▁ 🌍", f.GetString("t.string"));
        Assert.Equal(-2_000_000_000, f.GetInt("t.i32"));
        var nested = (GgufValue[])f.Metadata["t.arr.nested"].Value;
        Assert.Equal(new[] { "a", "bc" }, (string[])nested[1].Value);
        Assert.Equal(1.5f, ((float[])((GgufValue[])nested[2].Value)[0].Value)[0]);
    }

    public static TheoryData<GgmlType> TensorTypes() =>
        [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
         GgmlType.Q8_0, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q8_K];

    [Theory]
    [MemberData(nameof(TensorTypes))]
    public void TensorsOfEveryType_RoundTripByteForByte(GgmlType type)
    {
        using var dir = new TempDir();
        var info = GgmlTypes.Get(type);
        var w = new GgufWriter();
        w.Add("general.architecture", "llama");
        var rng = new Random(42);
        var data = new Dictionary<string, byte[]>();
        long[][] shapes = [[info.BlockSize * 3], [info.BlockSize, 5], [info.BlockSize * 2, 3, 2], [info.BlockSize, 1, 1, 3]];
        for (int i = 0; i < shapes.Length; i++)
        {
            var t = w.AddTensor($"t{i}", type, shapes[i]);
            var bytes = new byte[t.ByteCount];
            rng.NextBytes(bytes);
            data[t.Name] = bytes;
        }
        string path = dir.File("t.gguf");
        w.WriteFile(path, data);
        Assert.Equal(w.FileBytes, new FileInfo(path).Length);
        using var f = GgufFile.Open(path);
        Assert.Equal(shapes.Length, f.Tensors.Count);
        for (int i = 0; i < shapes.Length; i++)
        {
            var t = f.Tensors[i];
            Assert.Equal($"t{i}", t.Name);
            Assert.Equal(type, t.Type);
            Assert.Equal(shapes[i], t.Dimensions);
            Assert.Equal(0, (f.DataOffset + t.Offset) % 32);
            Assert.True(f.TensorData(t).SequenceEqual(data[t.Name]));
        }
    }

    [Fact]
    public void CustomAlignment_IsHonoured()
    {
        using var dir = new TempDir();
        var w = new GgufWriter();
        w.Add("general.alignment", GgufValue.Of(64u));
        w.AddTensor("a", GgmlType.F32, 3);
        w.AddTensor("b", GgmlType.F32, 5);
        w.WriteFile(dir.File("a.gguf"), new Dictionary<string, byte[]> { ["a"] = new byte[12], ["b"] = Enumerable.Range(0, 20).Select(i => (byte)i).ToArray() });
        using var f = GgufFile.Open(dir.File("a.gguf"));
        Assert.Equal(64, f.Alignment);
        Assert.Equal(0, f.DataOffset % 64);
        Assert.Equal(64, f.GetTensor("b").Offset);
        Assert.Equal(19, f.TensorData(f.GetTensor("b"))[19]);
    }

    [Fact]
    public void TensorData_IsAViewIntoTheMap_NotACopy()
    {
        using var dir = new TempDir();
        var w = new GgufWriter();
        w.AddTensor("x", GgmlType.F32, 1024);
        w.WriteFile(dir.File("x.gguf"), new Dictionary<string, byte[]> { ["x"] = new byte[4096] });
        using var f = GgufFile.Open(dir.File("x.gguf"));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var span = f.TensorData(f.GetTensor("x"));
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(4096, span.Length);
        Assert.True(after - before < 1024, $"TensorData allocated {after - before} bytes");
    }

    [Fact]
    public void DataWriter_RejectsIncompleteData_AndLeavesNoFile()
    {
        using var dir = new TempDir();
        var w = new GgufWriter();
        w.AddTensor("x", GgmlType.F32, 8);
        string path = dir.File("x.gguf");
        using (var data = w.Begin(path))
        {
            data.Write(new byte[16]);
            Assert.Throws<InvalidOperationException>(data.Complete);
        }
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(dir.FullPath));
    }

    [Fact]
    public void DataWriter_AcceptsChunksThatStraddleTensors()
    {
        using var dir = new TempDir();
        var w = new GgufWriter();
        w.AddTensor("a", GgmlType.F32, 3);
        w.AddTensor("b", GgmlType.Q8_0, 32);
        var all = Enumerable.Range(0, 12 + 34).Select(i => (byte)(i + 1)).ToArray();
        using (var data = w.Begin(dir.File("s.gguf")))
        {
            data.Write(all.AsSpan(0, 5));
            data.Write(all.AsSpan(5, 30));
            data.Write(all.AsSpan(35));
            data.Complete();
        }
        using var f = GgufFile.Open(dir.File("s.gguf"));
        Assert.True(f.TensorData(f.GetTensor("a")).SequenceEqual(all.AsSpan(0, 12)));
        Assert.True(f.TensorData(f.GetTensor("b")).SequenceEqual(all.AsSpan(12)));
    }

    [Fact]
    public void TypedAccessors_NameTheKeyWhenMissingOrMistyped()
    {
        using var dir = new TempDir();
        var w = new GgufWriter().Add("a.string", "x").Add("a.float", 1.5f);
        w.WriteFile(dir.File("k.gguf"), new Dictionary<string, byte[]>());
        using var f = GgufFile.Open(dir.File("k.gguf"));
        var missing = Assert.Throws<Sirocco.Engine.Formats.ModelFormatException>(() => f.GetString("nope"));
        Assert.Contains("nope", missing.Message);
        var wrong = Assert.Throws<Sirocco.Engine.Formats.ModelFormatException>(() => f.GetInt("a.string"));
        Assert.Contains("a.string", wrong.Message);
        Assert.Equal(1.5f, f.GetFloat("a.float"));
        Assert.Equal(7, f.GetInt("absent", 7));
    }
}
