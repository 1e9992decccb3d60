// Float weights (F32, F16, BF16) against f32 activations.

using System.Runtime.InteropServices;
using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels.Simd;

public static partial class MatMul
{
    private static void MultiplyFloat(in WeightMatrix w, int rowStart, int rowEnd, ReadOnlySpan<byte> act, int actBytes, int tokenCount, Span<float> output, int stride)
    {
        int n = w.Columns;
        float[] row = new float[n];
        for (int r = rowStart; r < rowEnd; r++)
        {
            Reference.Dequantize.Row(w.Type, w.Row(r), row);
            for (int t = 0; t < tokenCount; t++)
            {
                ReadOnlySpan<float> x = MemoryMarshal.Cast<byte, float>(act.Slice(t * actBytes, actBytes));
                double sum = 0;
                for (int i = 0; i < n; i++)
                {
                    sum += (double)row[i] * x[i];
                }
                output[t * stride + r] = (float)sum;
            }
        }
    }
}
