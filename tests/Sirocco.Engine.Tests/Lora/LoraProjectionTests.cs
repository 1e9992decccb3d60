// LoraProjection.AddDelta (SIMD dots and multiply-adds over A and Bᵀ) against the plainest loop: y += s·B·(A·x)
// in double. Ranks 1 to 300 (past the stack scratch), widths from 1 to real Mistral sizes, outputs spanning several
// chunks, spans offset by one element, concurrent callers.

using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;

namespace Sirocco.Engine.Tests.Lora;

public sealed class LoraProjectionTests
{
    /// <summary>Error allowed per output, relative to Σ|terms| (|y₀| + s·Σⱼ|Bⱼ|·Σᵢ|Aⱼᵢ·xᵢ|): the dots sum in float with
    /// several accumulators, so their error grows like √n·ε for random data (≈ 7e-6 at n = 14336); the bound keeps a
    /// margin of ~4.</summary>
    private const double Tolerance = 3e-5;

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 37, 4099)]
    [InlineData(8, 256, 512)]
    [InlineData(8, 4096, 1024)]
    [InlineData(8, 14336, 4096)]
    [InlineData(16, 4096, 14336)]
    [InlineData(300, 64, 65)]
    public void AddDelta_MatchesTheScalarReference(int rank, int inputs, int outputs)
    {
        var random = new Random(rank * 1000 + inputs);
        float[] a = Values(random, rank * inputs), bT = Values(random, rank * outputs);
        float scale = 1.75f;
        var projection = new LoraProjection(LoraModules.Of(LlamaTensorRole.Up), 0, rank, inputs, outputs, scale, a, bT);
        // Spans offset by one element, so no alignment is assumed.
        float[] xBuffer = Values(random, inputs + 1), yBuffer = Values(random, outputs + 2);
        ReadOnlySpan<float> x = xBuffer.AsSpan(1, inputs);
        float[] y0 = yBuffer.AsSpan(1, outputs).ToArray();
        (float first, float last) = (yBuffer[0], yBuffer[^1]);
        projection.AddDelta(x, yBuffer.AsSpan(1, outputs));
        Assert.Equal((first, last), (yBuffer[0], yBuffer[^1]));

        double[] t = new double[rank], tAbs = new double[rank];
        for (int j = 0; j < rank; j++)
        {
            for (int i = 0; i < inputs; i++)
            {
                t[j] += (double)a[j * inputs + i] * x[i];
                tAbs[j] += Math.Abs((double)a[j * inputs + i] * x[i]);
            }
        }
        for (int o = 0; o < outputs; o++)
        {
            double expected = y0[o], bound = Math.Abs(y0[o]);
            for (int j = 0; j < rank; j++)
            {
                expected += scale * bT[j * outputs + o] * t[j];
                bound += scale * Math.Abs(bT[j * outputs + o]) * tAbs[j];
            }
            double error = Math.Abs(yBuffer[1 + o] - expected);
            Assert.True(error <= Tolerance * bound, $"output {o}: {yBuffer[1 + o]} vs {expected} (error {error:G3}, bound {Tolerance * bound:G3})");
        }
    }

    [Fact]
    public void AddDelta_LeavesElementsOutsideTheSpanAlone_AndChecksLengths()
    {
        var projection = new LoraProjection(LoraModules.Of(LlamaTensorRole.Query), 3, 2, 4, 5, 1f, [1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
        float[] y = [-7, 0, 0, 0, 0, 0, -7];
        projection.AddDelta([1, 2, 3, 4], y.AsSpan(1, 5));
        Assert.Equal([-7f, 20, 20, 20, 20, 20, -7], y); // t = (10, 10), each output 10 + 10
        var e = Assert.Throws<ArgumentException>(() => projection.AddDelta([1, 2, 3], new float[5]));
        Assert.Contains("model.layers.3.self_attn.q_proj", e.Message);
        Assert.Throws<ArgumentException>(() => projection.AddDelta([1, 2, 3, 4], new float[6]));
    }

    [Fact]
    public void AddDelta_FromManyThreadsAtOnce_GivesTheSameResult()
    {
        var random = new Random(3);
        const int Rank = 8, Inputs = 1024, Outputs = 3000;
        var projection = new LoraProjection(LoraModules.Of(LlamaTensorRole.Gate), 0, Rank, Inputs, Outputs, 2f, Values(random, Rank * Inputs), Values(random, Rank * Outputs));
        float[] x = Values(random, Inputs);
        float[] expected = new float[Outputs];
        projection.AddDelta(x, expected);
        var results = new float[16][];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, k =>
        {
            var y = new float[Outputs];
            for (int repeat = 0; repeat < 20; repeat++)
            {
                Array.Clear(y);
                projection.AddDelta(x, y);
            }
            results[k] = y;
        });
        foreach (float[] y in results)
        {
            Assert.Equal(expected, y);
        }
    }

    private static float[] Values(Random random, int count)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = (float)(random.NextDouble() * 2 - 1);
        }
        return values;
    }
}
