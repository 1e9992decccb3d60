using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels.Tests;

public class GgmlTypesTests
{
    [Theory]
    [InlineData(GgmlType.Q4_0, 32, 18)]
    [InlineData(GgmlType.Q8_0, 32, 34)]
    [InlineData(GgmlType.Q4_K, 256, 144)]
    [InlineData(GgmlType.Q5_K, 256, 176)]
    [InlineData(GgmlType.Q6_K, 256, 210)]
    [InlineData(GgmlType.Q8_K, 256, 292)]
    public void BlockGeometry_MatchesGgml(GgmlType type, int blockSize, int blockBytes)
    {
        var info = GgmlTypes.Get(type);
        Assert.Equal(blockSize, info.BlockSize);
        Assert.Equal(blockBytes, info.BlockBytes);
    }

    [Theory]
    [InlineData(4u)]
    [InlineData(31u)]
    [InlineData(1000u)]
    public void RemovedOrUnknownIds_AreNotKnown(uint id) => Assert.False(GgmlTypes.TryGet(id, out _));
}
