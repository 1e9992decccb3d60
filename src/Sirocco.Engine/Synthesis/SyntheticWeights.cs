// Deterministic random weights for synthetic models. Every row of every tensor is generated from (seed, tensor name,
// row) alone, so any row can be produced on any thread in any order, and the GGUF and Hugging Face copies of one
// synthetic model hold exactly the same numbers (in their own q/k row orders).

using Sirocco.Engine.Model;

namespace Sirocco.Engine.Synthesis;

/// <summary>Seeded weight generator with initialisation scales that keep activations near unit size.</summary>
/// <remarks>Projections are drawn from an approximate N(0, 1/fan_in) (Irwin–Hall sum of four uniforms, scaled to unit
/// variance, bounded at ±2√3σ), so a projection of a unit-RMS input has unit-scale outputs. Token embeddings are
/// approximately N(0, 1); RMSNorm weights are 1 ± 0.25 uniform. Nothing is ever exactly zero in bulk.</remarks>
public sealed class SyntheticWeights
{
    private readonly ulong _seed;

    public SyntheticWeights(ulong seed) => _seed = seed;

    /// <summary>Fills <paramref name="destination"/> (length = <see cref="LlamaTensor.Columns"/>) with row
    /// <paramref name="hfRow"/> of <paramref name="tensor"/>, in Hugging Face row order.</summary>
    public void FillRow(LlamaTensor tensor, long hfRow, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (destination.Length != tensor.Columns)
        {
            throw new ArgumentException($"row of {tensor.HfName} has {tensor.Columns} elements, buffer has {destination.Length}", nameof(destination));
        }
        var rng = new Xoshiro256(Mix(_seed, NameHash(tensor.HfName), (ulong)hfRow));
        if (tensor.IsNorm)
        {
            for (int i = 0; i < destination.Length; i++)
            {
                destination[i] = 1f + 0.25f * (2f * rng.NextUnitFloat() - 1f);
            }
            return;
        }
        float sigma = tensor.Role == LlamaTensorRole.TokenEmbedding ? 1f : 1f / MathF.Sqrt(tensor.Columns);
        // Four 16-bit uniforms u_k in [0,1) per 64-bit draw: (Σu_k − 2)·√3 has mean 0 and variance 1.
        float scale = sigma * MathF.Sqrt(3f) / 65536f;
        for (int i = 0; i < destination.Length; i++)
        {
            ulong r = rng.Next();
            uint sum = (uint)(r & 0xFFFF) + (uint)((r >> 16) & 0xFFFF) + (uint)((r >> 32) & 0xFFFF) + (uint)(r >> 48);
            destination[i] = ((int)sum - 2 * 65536 + 2) * scale; // +2 centres the discrete sum (mean of each u is 32767.5)
        }
    }

    private static ulong NameHash(string name)
    {
        ulong h = 14695981039346656037UL; // FNV-1a 64
        foreach (char c in name)
        {
            h = (h ^ c) * 1099511628211UL;
        }
        return h;
    }

    private static ulong Mix(ulong a, ulong b, ulong c) => SplitMix(SplitMix(SplitMix(a) ^ b) ^ c);

    private static ulong SplitMix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    /// <summary>xoshiro256** (Blackman and Vigna), seeded through SplitMix64.</summary>
    private struct Xoshiro256
    {
        private ulong _s0, _s1, _s2, _s3;

        public Xoshiro256(ulong seed)
        {
            _s0 = SplitMix(seed);
            _s1 = SplitMix(_s0);
            _s2 = SplitMix(_s1);
            _s3 = SplitMix(_s2);
        }

        public ulong Next()
        {
            ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
            ulong t = _s1 << 17;
            _s2 ^= _s0;
            _s3 ^= _s1;
            _s1 ^= _s2;
            _s0 ^= _s3;
            _s2 ^= t;
            _s3 = ulong.RotateLeft(_s3, 45);
            return result;
        }

        public float NextUnitFloat() => (Next() >> 40) * (1f / (1 << 24));
    }
}
