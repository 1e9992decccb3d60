// The hash table at the heart of the BPE loop: (left key, right key) → merge rule. MergeTable builds it once per
// tokenizer; BpeEncoder probes it for every adjacent pair it considers.

namespace Sirocco.Engine.Tokenization;

/// <summary>Open-addressing hash table from a packed (left, right) key pair to a rule: the innermost lookup of the
/// BPE loop. Dictionary&lt;long, T&gt; hashes a long as low ^ high, which for pairs of small ids collides badly
/// ((a, b) and (b, a) always do); here keys are spread by a multiplicative (Fibonacci) hash and probed linearly.</summary>
internal sealed class PairTable
{
    private const long Empty = -1; // pair keys are never negative: both halves are non-negative ints

    private readonly long[] _keys;
    private readonly MergeRule[] _values;
    private readonly int _shift;

    public PairTable(Dictionary<long, MergeRule> source)
    {
        // Load factor at most 1/2 keeps linear probe runs short.
        int bits = Math.Max(4, 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)source.Count * 2));
        _shift = 64 - bits;
        _keys = new long[1 << bits];
        _values = new MergeRule[1 << bits];
        Array.Fill(_keys, Empty);
        int mask = _keys.Length - 1;
        foreach (var (key, value) in source)
        {
            int slot = Slot(key);
            while (_keys[slot] != Empty)
            {
                slot = (slot + 1) & mask;
            }
            _keys[slot] = key;
            _values[slot] = value;
        }
    }

    private int Slot(long key) => (int)(((ulong)key * 0x9E37_79B9_7F4A_7C15UL) >> _shift);

    public bool TryGet(long key, out MergeRule value)
    {
        int mask = _keys.Length - 1;
        for (int slot = Slot(key); ; slot = (slot + 1) & mask)
        {
            long k = _keys[slot];
            if (k == key)
            {
                value = _values[slot];
                return true;
            }
            if (k == Empty)
            {
                value = default;
                return false;
            }
        }
    }
}
