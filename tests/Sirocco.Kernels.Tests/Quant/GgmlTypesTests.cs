// Checks the GgmlTypes table (ids, block sizes, block bytes) entry by entry against ggml: literal values read from
// ggml.h / ggml-common.h, and the table ggml itself printed (testdata/ggml-quant/type-traits.json).

using System.Text.Json;
using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels.Tests.Quant;

public class GgmlTypesTests
{
    // (id, elements per block, bytes per block), with the struct each byte count comes from.
    [Theory]
    [InlineData(GgmlType.F32, 0, 1, 4)]
    [InlineData(GgmlType.F16, 1, 1, 2)]
    [InlineData(GgmlType.Q4_0, 2, 32, 18)]      // d + 16 bytes of nibbles
    [InlineData(GgmlType.Q4_1, 3, 32, 20)]      // d, m + 16
    [InlineData(GgmlType.Q5_0, 6, 32, 22)]      // d + qh[4] + 16
    [InlineData(GgmlType.Q5_1, 7, 32, 24)]      // d, m + qh[4] + 16
    [InlineData(GgmlType.Q8_0, 8, 32, 34)]      // d + 32
    [InlineData(GgmlType.Q8_1, 9, 32, 36)]      // d, s + 32
    [InlineData(GgmlType.Q2_K, 10, 256, 84)]    // scales[16] + qs[64] + d, dmin
    [InlineData(GgmlType.Q3_K, 11, 256, 110)]   // hmask[32] + qs[64] + scales[12] + d
    [InlineData(GgmlType.Q4_K, 12, 256, 144)]   // d, dmin + scales[12] + qs[128]
    [InlineData(GgmlType.Q5_K, 13, 256, 176)]   // d, dmin + scales[12] + qh[32] + qs[128]
    [InlineData(GgmlType.Q6_K, 14, 256, 210)]   // ql[128] + qh[64] + scales[16] + d
    [InlineData(GgmlType.Q8_K, 15, 256, 292)]   // float d + qs[256] + int16 bsums[16]
    [InlineData(GgmlType.IQ2_XXS, 16, 256, 66)] // d + uint16 qs[32]
    [InlineData(GgmlType.IQ2_XS, 17, 256, 74)]  // d + uint16 qs[32] + scales[8]
    [InlineData(GgmlType.IQ3_XXS, 18, 256, 98)] // d + qs[96]
    [InlineData(GgmlType.IQ1_S, 19, 256, 50)]   // d + qs[32] + uint16 qh[8]
    [InlineData(GgmlType.IQ4_NL, 20, 32, 18)]   // d + 16
    [InlineData(GgmlType.IQ3_S, 21, 256, 110)]  // d + qs[64] + qh[8] + signs[32] + scales[4]
    [InlineData(GgmlType.IQ2_S, 22, 256, 82)]   // d + qs[64] + qh[8] + scales[8]
    [InlineData(GgmlType.IQ4_XS, 23, 256, 136)] // d + scales_h + scales_l[4] + qs[128]
    [InlineData(GgmlType.I8, 24, 1, 1)]
    [InlineData(GgmlType.I16, 25, 1, 2)]
    [InlineData(GgmlType.I32, 26, 1, 4)]
    [InlineData(GgmlType.I64, 27, 1, 8)]
    [InlineData(GgmlType.F64, 28, 1, 8)]
    [InlineData(GgmlType.IQ1_M, 29, 256, 56)]   // qs[32] + qh[16] + scales[8]
    [InlineData(GgmlType.BF16, 30, 1, 2)]
    [InlineData(GgmlType.TQ1_0, 34, 256, 54)]   // qs[48] + qh[4] + d
    [InlineData(GgmlType.TQ2_0, 35, 256, 66)]   // qs[64] + d
    [InlineData(GgmlType.MXFP4, 39, 32, 17)]    // e + 16
    [InlineData(GgmlType.NVFP4, 40, 64, 36)]    // d[4] + qs[32]
    [InlineData(GgmlType.Q1_0, 41, 128, 18)]    // d + qs[16]
    [InlineData(GgmlType.Q2_0, 42, 64, 18)]     // d + qs[16]
    public void BlockGeometry_MatchesGgml(GgmlType type, uint id, int blockSize, int blockBytes)
    {
        Assert.Equal(id, (uint)type);
        var info = GgmlTypes.Get(type);
        Assert.Equal(type, info.Type);
        Assert.Equal(blockSize, info.BlockSize);
        Assert.Equal(blockBytes, info.BlockBytes);
        Assert.True(GgmlTypes.TryGet(id, out var byId));
        Assert.Equal(info, byId);
    }

    [Fact]
    public void Table_EqualsTheTablePrintedByGgml()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestData.Path("ggml-quant/type-traits.json")));
        var ggml = doc.RootElement.GetProperty("types").EnumerateArray()
            .Select(t => (Id: t.GetProperty("id").GetUInt32(), Name: t.GetProperty("name").GetString()!,
                Block: t.GetProperty("blockSize").GetInt32(), Bytes: t.GetProperty("blockBytes").GetInt32()))
            .ToArray();

        foreach (var (id, name, block, bytes) in ggml)
        {
            Assert.True(GgmlTypes.TryGet(id, out var info), $"ggml type {id} ({name}) is missing");
            Assert.Equal(name, info.Name, ignoreCase: true);
            Assert.Equal((block, bytes), (info.BlockSize, info.BlockBytes));
        }
        Assert.Equal(ggml.Select(t => t.Id).Order(), GgmlTypes.All.Select(t => (uint)t.Type).Order());
    }

    [Theory]
    [InlineData(4u)]
    [InlineData(5u)]
    [InlineData(31u)]
    [InlineData(36u)]
    [InlineData(43u)]
    [InlineData(1000u)]
    public void RemovedOrUnknownIds_AreNotKnown(uint id) => Assert.False(GgmlTypes.TryGet(id, out _));

    [Fact]
    public void RowBytes_IsWholeBlocks() => Assert.Equal(14336 / 256 * 144, GgmlTypes.Get(GgmlType.Q4_K).RowBytes(14336));
}
