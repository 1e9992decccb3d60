// A streaming read of a memory range as fast as the core can issue loads: what `sirocco bench` uses to measure the
// memory-bandwidth ceiling a decode step is held against. The checksum keeps the loads from being optimised away.

using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Sirocco.Kernels.Memory;

/// <summary>Reads memory sequentially.</summary>
public static class StreamRead
{
    /// <summary>Sum of the 64-bit words of <paramref name="data"/> (modulo 2⁶⁴), plus its trailing bytes.</summary>
    public static ulong Checksum(ReadOnlySpan<byte> data)
    {
        ReadOnlySpan<ulong> words = MemoryMarshal.Cast<byte, ulong>(data);
        ulong sum = 0;
        int i = 0;
        if (Vector256.IsHardwareAccelerated && words.Length >= 16)
        {
            // Four independent accumulators: enough loads in flight to saturate the memory system.
            Vector256<ulong> a = Vector256<ulong>.Zero, b = a, c = a, d = a;
            for (; i + 16 <= words.Length; i += 16)
            {
                a += Vector256.Create(words.Slice(i, 4));
                b += Vector256.Create(words.Slice(i + 4, 4));
                c += Vector256.Create(words.Slice(i + 8, 4));
                d += Vector256.Create(words.Slice(i + 12, 4));
            }
            sum = Vector256.Sum(a + b + c + d);
        }
        else if (Vector128.IsHardwareAccelerated && words.Length >= 8)
        {
            Vector128<ulong> a = Vector128<ulong>.Zero, b = a, c = a, d = a;
            for (; i + 8 <= words.Length; i += 8)
            {
                a += Vector128.Create(words.Slice(i, 2));
                b += Vector128.Create(words.Slice(i + 2, 2));
                c += Vector128.Create(words.Slice(i + 4, 2));
                d += Vector128.Create(words.Slice(i + 6, 2));
            }
            sum = Vector128.Sum(a + b + c + d);
        }
        for (; i < words.Length; i++)
        {
            sum += words[i];
        }
        foreach (byte tail in data[(words.Length * sizeof(ulong))..])
        {
            sum += tail;
        }
        return sum;
    }
}
