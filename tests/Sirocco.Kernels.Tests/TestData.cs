// Locates the repository's testdata/ folder from the test binary's directory, and reads the ggml quantization
// fixtures in testdata/ggml-quant (see its README.md for how ggml produced them).

using System.Globalization;
using System.Text.Json;
using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels.Tests;

internal static class TestData
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    /// <summary>Absolute path of <paramref name="relative"/> under the repository's testdata/ folder.</summary>
    public static string Path(string relative) => System.IO.Path.Combine(s_root.Value, relative);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = System.IO.Path.Combine(dir.FullName, "testdata");
            if (Directory.Exists(System.IO.Path.Combine(candidate, "ggml-quant")))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException($"testdata/ggml-quant not found above {AppContext.BaseDirectory}");
    }
}

/// <summary>One input row with ggml's quantized bytes for it and ggml's dequantization of those bytes.</summary>
internal sealed record GgmlFixtureRow(string Name, float[] Input, byte[] Bytes, float[] Dequantized);

/// <summary>The fixtures of testdata/ggml-quant, parsed once per type.</summary>
internal static class GgmlFixtures
{
    /// <summary>Types with a fixture file.</summary>
    public static readonly GgmlType[] Types =
    [
        GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
        GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
    ];

    private static readonly Lazy<(string Name, float[] Values)[]> s_inputs = new(LoadInputs);
    private static readonly Dictionary<GgmlType, GgmlFixtureRow[]> s_byType = [];

    /// <summary>The rows of <paramref name="type"/>'s fixture, in file order.</summary>
    public static GgmlFixtureRow[] Rows(GgmlType type)
    {
        lock (s_byType)
        {
            if (!s_byType.TryGetValue(type, out var rows))
            {
                rows = Load(type);
                s_byType[type] = rows;
            }
            return rows;
        }
    }

    /// <summary>The fixture row called <paramref name="name"/> of <paramref name="type"/>.</summary>
    public static GgmlFixtureRow Row(GgmlType type, string name) => Rows(type).Single(r => r.Name == name);

    /// <summary>(type, row name) for every fixture row of the given types, for xunit theories.</summary>
    public static TheoryData<GgmlType, string> Cases(params GgmlType[] types)
    {
        var data = new TheoryData<GgmlType, string>();
        foreach (var type in types)
        {
            foreach (var row in Rows(type))
            {
                data.Add(type, row.Name);
            }
        }
        return data;
    }

    private static GgmlFixtureRow[] Load(GgmlType type)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestData.Path($"ggml-quant/{type}.json")));
        var inputs = s_inputs.Value;
        var rows = doc.RootElement.GetProperty("rows").EnumerateArray().ToArray();
        Assert.Equal(inputs.Length, rows.Length);
        var result = new GgmlFixtureRow[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            string name = rows[i].GetProperty("name").GetString()!;
            Assert.Equal(inputs[i].Name, name);
            byte[] bytes = Convert.FromHexString(rows[i].GetProperty("bytes").GetString()!);
            result[i] = new GgmlFixtureRow(name, inputs[i].Values, bytes, ParseFloats(rows[i].GetProperty("dequantized")));
        }
        return result;
    }

    private static (string Name, float[] Values)[] LoadInputs()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestData.Path("ggml-quant/inputs.json")));
        return doc.RootElement.GetProperty("rows").EnumerateArray()
            .Select(r => (r.GetProperty("name").GetString()!, ParseFloats(r.GetProperty("values"))))
            .ToArray();
    }

    // The files print floats with %.9g, which parses back to the exact float (9 significant digits round-trip).
    private static float[] ParseFloats(JsonElement array) =>
        array.EnumerateArray().Select(v => float.Parse(v.GetRawText(), CultureInfo.InvariantCulture)).ToArray();
}

/// <summary>A seeded splitmix64 generator, so test data does not depend on System.Random's algorithm.</summary>
internal sealed class TestRandom(ulong seed)
{
    private ulong _state = seed;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15ul;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ul;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBul;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1ul << 53));

    /// <summary>Standard normal (Box–Muller).</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    public float[] Gaussian(int count, double sigma)
    {
        var x = new float[count];
        for (int i = 0; i < count; i++)
        {
            x[i] = (float)(sigma * NextGaussian());
        }
        return x;
    }

    public float[] Uniform(int count, double halfWidth)
    {
        var x = new float[count];
        for (int i = 0; i < count; i++)
        {
            x[i] = (float)(halfWidth * (2 * NextDouble() - 1));
        }
        return x;
    }
}
