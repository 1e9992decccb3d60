// The tensor element types of GGUF/ggml, by their on-disk id, and the block geometry of each.
// Formats (GGUF reader and writer) and kernels both look sizes up here; ids and sizes follow ggml's ggml.h/ggml-common.h.

namespace Sirocco.Kernels.Quant;

/// <summary>A ggml tensor type, with the numeric id that GGUF stores on disk.</summary>
/// <remarks>Ids 4, 5 and 31–33, 36–38 were used by types that ggml has since removed; they are not defined here.</remarks>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
    NVFP4 = 40,
    Q1_0 = 41,
    Q2_0 = 42,
}

/// <summary>Block geometry of one <see cref="GgmlType"/>: a row is stored as whole blocks of
/// <see cref="BlockSize"/> elements, each taking <see cref="BlockBytes"/> bytes.</summary>
public readonly record struct GgmlTypeInfo(GgmlType Type, string Name, int BlockSize, int BlockBytes)
{
    /// <summary>Bytes taken by <paramref name="elementCount"/> elements, which must be a whole number of blocks.</summary>
    public long RowBytes(long elementCount) => elementCount / BlockSize * BlockBytes;
}

/// <summary>Lookup of <see cref="GgmlTypeInfo"/> by type or by raw on-disk id.</summary>
public static class GgmlTypes
{
    private static readonly Dictionary<uint, GgmlTypeInfo> s_byId = Build();

    private static Dictionary<uint, GgmlTypeInfo> Build()
    {
        // (type, block size in elements, block size in bytes), from ggml-common.h's block structs.
        (GgmlType Type, int Block, int Bytes)[] table =
        [
            (GgmlType.F32, 1, 4),
            (GgmlType.F16, 1, 2),
            (GgmlType.BF16, 1, 2),
            (GgmlType.F64, 1, 8),
            (GgmlType.I8, 1, 1),
            (GgmlType.I16, 1, 2),
            (GgmlType.I32, 1, 4),
            (GgmlType.I64, 1, 8),
            (GgmlType.Q4_0, 32, 2 + 16),           // d (f16), 32 × 4-bit
            (GgmlType.Q4_1, 32, 2 + 2 + 16),       // d, m (f16), 32 × 4-bit
            (GgmlType.Q5_0, 32, 2 + 4 + 16),       // d, qh (32 high bits), 32 × 4-bit low
            (GgmlType.Q5_1, 32, 2 + 2 + 4 + 16),   // d, m, qh, qs
            (GgmlType.Q8_0, 32, 2 + 32),           // d, 32 × int8
            (GgmlType.Q8_1, 32, 2 + 2 + 32),       // d, s (f16), 32 × int8
            (GgmlType.Q2_K, 256, 16 + 64 + 2 + 2), // scales, qs, d, dmin
            (GgmlType.Q3_K, 256, 32 + 64 + 12 + 2),// hmask, qs, scales, d
            (GgmlType.Q4_K, 256, 2 + 2 + 12 + 128),// d, dmin, scales (6-bit packed), qs
            (GgmlType.Q5_K, 256, 2 + 2 + 12 + 32 + 128), // d, dmin, scales, qh, qs
            (GgmlType.Q6_K, 256, 128 + 64 + 16 + 2),     // ql, qh, scales (int8), d
            (GgmlType.Q8_K, 256, 4 + 256 + 16 * 2),      // d (f32), qs, bsums (int16 × 16)
            (GgmlType.IQ2_XXS, 256, 2 + 64),
            (GgmlType.IQ2_XS, 256, 2 + 64 + 8),
            (GgmlType.IQ3_XXS, 256, 2 + 96),
            (GgmlType.IQ1_S, 256, 2 + 32 + 16),
            (GgmlType.IQ4_NL, 32, 2 + 16),
            (GgmlType.IQ3_S, 256, 2 + 64 + 8 + 32 + 4),
            (GgmlType.IQ2_S, 256, 2 + 64 + 8 + 8),
            (GgmlType.IQ4_XS, 256, 2 + 2 + 4 + 128),
            (GgmlType.IQ1_M, 256, 32 + 16 + 8),
            (GgmlType.TQ1_0, 256, 48 + 4 + 2),
            (GgmlType.TQ2_0, 256, 64 + 2),
            (GgmlType.MXFP4, 32, 1 + 16),          // e (E8M0 shared exponent), 32 × 4-bit E2M1
            (GgmlType.NVFP4, 64, 4 + 32),          // 4 × UE4M3 sub-block scales, 64 × 4-bit E2M1
            (GgmlType.Q1_0, 128, 2 + 16),          // d (f16), 128 × 1-bit
            (GgmlType.Q2_0, 64, 2 + 16),           // d (f16), 64 × 2-bit
        ];
        var map = new Dictionary<uint, GgmlTypeInfo>();
        foreach (var (type, block, bytes) in table)
        {
            map[(uint)type] = new GgmlTypeInfo(type, type.ToString(), block, bytes);
        }
        return map;
    }

    /// <summary>The geometry of <paramref name="type"/>.</summary>
    public static GgmlTypeInfo Get(GgmlType type) => s_byId[(uint)type];

    /// <summary>Looks up a raw on-disk type id; false for ids ggml does not define (or no longer defines).</summary>
    public static bool TryGet(uint id, out GgmlTypeInfo info) => s_byId.TryGetValue(id, out info);

    /// <summary>Every known type.</summary>
    public static IEnumerable<GgmlTypeInfo> All => s_byId.Values;
}
