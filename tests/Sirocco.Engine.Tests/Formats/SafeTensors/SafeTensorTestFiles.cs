// Helpers for the safetensors tests: raw files built byte by byte (for hand-built and hostile headers) and an
// assertion that a failure is the one format exception, naming the file and the field.

using System.Buffers.Binary;
using System.Text;
using Sirocco.Engine.Formats;
using Sirocco.Engine.Formats.SafeTensors;

namespace Sirocco.Engine.Tests.Formats.SafeTensors;

internal static class SafeTensorTestFiles
{
    /// <summary>8-byte little-endian <paramref name="declaredLength"/> (default: the header's length), the header, the data.</summary>
    public static byte[] Build(string header, byte[]? data = null, ulong? declaredLength = null) =>
        Build(Encoding.UTF8.GetBytes(header), data, declaredLength);

    public static byte[] Build(byte[] header, byte[]? data = null, ulong? declaredLength = null)
    {
        data ??= [];
        var file = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, declaredLength ?? (ulong)header.Length);
        header.CopyTo(file, 8);
        data.CopyTo(file, 8 + header.Length);
        return file;
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="name"/> in <paramref name="dir"/> and returns the path.</summary>
    public static string Write(TempDir dir, string name, byte[] bytes)
    {
        string path = dir.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Opening the file (and disposing it, if it opened) throws exactly <see cref="ModelFormatException"/>,
    /// whose message names the file and each of <paramref name="mentions"/>.</summary>
    public static ModelFormatException AssertOpenFails(string path, params string[] mentions)
    {
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorFile.Open(path).Dispose());
        AssertMentions(e, Path.GetFileName(path), mentions);
        return e;
    }

    public static void AssertMentions(Exception e, string fileName, params string[] mentions)
    {
        Assert.Contains(fileName, e.Message);
        foreach (string mention in mentions)
        {
            Assert.Contains(mention, e.Message);
        }
    }

    /// <summary>Deterministic pseudo-random floats in [-2, 2).</summary>
    public static float[] Values(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = (float)(random.NextDouble() * 4 - 2);
        }
        return values;
    }

    /// <summary>Writes one file with the given tensors, all data from floats.</summary>
    public static void WriteFloats(string path, params (string Name, SafeTensorDtype Dtype, long[] Shape, float[] Values)[] tensors)
    {
        using var writer = SafeTensorWriter.Create(path, tensors.Select(t => new SafeTensorDeclaration(t.Name, t.Dtype, t.Shape)));
        foreach (var t in tensors)
        {
            writer.WriteTensorFloats(t.Name, t.Values);
        }
        writer.Complete();
    }
}
