// Error measures shared by the quantization tests, accumulated in double.

namespace Sirocco.Kernels.Tests;

internal static class ErrorStats
{
    /// <summary>Root mean square of <paramref name="x"/>.</summary>
    public static double Rms(ReadOnlySpan<float> x)
    {
        double sum = 0;
        foreach (float v in x)
        {
            sum += (double)v * v;
        }
        return x.Length == 0 ? 0 : Math.Sqrt(sum / x.Length);
    }

    /// <summary>Root mean square of <paramref name="x"/> − <paramref name="y"/>.</summary>
    public static double Rms(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double e = (double)x[i] - y[i];
            sum += e * e;
        }
        return x.Length == 0 ? 0 : Math.Sqrt(sum / x.Length);
    }

    /// <summary>Largest |v| over <paramref name="x"/>.</summary>
    public static double AbsMax(ReadOnlySpan<float> x)
    {
        double max = 0;
        foreach (float v in x)
        {
            max = Math.Max(max, Math.Abs((double)v));
        }
        return max;
    }
}
