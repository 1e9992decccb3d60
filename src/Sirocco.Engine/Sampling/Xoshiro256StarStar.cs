// The sampler's random numbers: xoshiro256** (Blackman and Vigna, "Scrambled linear pseudorandom number generators",
// 2021), seeded through SplitMix64. Pure 64-bit integer arithmetic, so a seed gives the same stream on every platform
// and runtime, which is what makes `seed` reproducible; System.Random promises no such thing across versions.

namespace Sirocco.Engine.Sampling;

/// <summary>xoshiro256** generator. A mutable struct: keep it in a field, never copy it by value.</summary>
internal struct Xoshiro256StarStar
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>Starts from the raw state (used by tests against the published reference outputs). The state must not
    /// be all zeros.</summary>
    internal Xoshiro256StarStar(ulong s0, ulong s1, ulong s2, ulong s3)
    {
        _s0 = s0;
        _s1 = s1;
        _s2 = s2;
        _s3 = s3;
    }

    /// <summary>Expands <paramref name="seed"/> into the 256-bit state with four SplitMix64 outputs, as the xoshiro
    /// authors recommend; SplitMix64 never yields four zeros, so every seed (0 included) gives a valid state.</summary>
    public static Xoshiro256StarStar FromSeed(ulong seed)
    {
        ulong x = seed;
        return new Xoshiro256StarStar(SplitMix64(ref x), SplitMix64(ref x), SplitMix64(ref x), SplitMix64(ref x));
    }

    /// <summary>One step of SplitMix64 (Steele, Lea and Flood 2014): advances <paramref name="state"/> by the golden
    /// gamma and returns the mixed value.</summary>
    internal static ulong SplitMix64(ref ulong state)
    {
        state += 0x9E3779B97F4A7C15UL;
        ulong z = state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
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

    /// <summary>A uniform double in [0, 1): the top 53 bits scaled by 2^-53, so every value is exact.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
}
