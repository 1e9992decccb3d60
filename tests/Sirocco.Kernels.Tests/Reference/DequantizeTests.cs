// Hand-made blocks for every reference dequantizer: bytes written from the layout in Reference/Dequantize.cs (packed
// the way ggml's quantizers pack them, not the way our reader reads them), expected floats exact, with literal spot
// values worked out by hand. Also length checks and unsupported types.

using System.Buffers.Binary;
using Sirocco.Kernels.Quant;
using Sirocco.Kernels.Reference;

namespace Sirocco.Kernels.Tests.Reference;

public class DequantizeTests
{
    private const ushort HalfOne = 0x3C00, HalfHalf = 0x3800, HalfTwo = 0x4000, HalfQuarter = 0x3400, HalfMinusOne = 0xBC00;

    [Fact]
    public void F32_ReadsLittleEndianSingles()
    {
        float[] values = [1.5f, -0f, float.Epsilon, float.MaxValue, float.NegativeInfinity];
        var bytes = new byte[4 * values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
        }
        Assert.Equal(values, Run(GgmlType.F32, bytes, values.Length));
    }

    [Fact]
    public void F16_WidensExactly()
    {
        var y = Run(GgmlType.F16, Halves(0x3C00, 0xC000, 0x0001, 0x7BFF, 0x8000, 0x7C00, 0x3555), 7);
        Assert.Equal([1f, -2f, MathF.Pow(2, -24), 65504f, -0f, float.PositiveInfinity, 0.333251953125f], y);
        Assert.True(float.IsNegative(y[4]));
    }

    [Fact]
    public void BF16_IsTheTopHalfOfAFloat()
    {
        var y = Run(GgmlType.BF16, Halves(0x3F80, 0xC0A0, 0x0001, 0x7F80, 0xFFC0), 5);
        Assert.Equal([1f, -5f, BitConverter.Int32BitsToSingle(0x0001_0000), float.PositiveInfinity], y[..4]);
        Assert.True(float.IsNaN(y[4]));
    }

    [Fact]
    public void Q8_0_IsSignedBytesTimesScale()
    {
        var block = new byte[34];
        Put(block, 0, HalfHalf);
        for (int j = 0; j < 30; j++)
        {
            block[2 + j] = (byte)(sbyte)(j - 16);
        }
        block[32] = 127;
        block[33] = 0x80; // −128
        var y = Run(GgmlType.Q8_0, block, 32);
        for (int j = 0; j < 30; j++)
        {
            Assert.Equal((j - 16) * 0.5f, y[j]);
        }
        Assert.Equal([-8f, 63.5f, -64f], [y[0], y[30], y[31]]);
    }

    [Fact]
    public void Q4_0_LowNibblesAreElements0To15_HighNibbles16To31()
    {
        var block = new byte[18];
        Put(block, 0, HalfTwo);
        for (int i = 0; i < 16; i++)
        {
            block[2 + i] = (byte)(i | (15 - i) << 4);
        }
        var y = Run(GgmlType.Q4_0, block, 32);
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal((i - 8) * 2f, y[i]);
            Assert.Equal((15 - i - 8) * 2f, y[16 + i]);
        }
        Assert.Equal([-16f, 14f, 14f, -16f], [y[0], y[15], y[16], y[31]]);
    }

    [Fact]
    public void Q4_0_EachBlockUsesItsOwnScale()
    {
        var row = new byte[36];
        Put(row, 0, HalfOne);
        Put(row, 18, HalfMinusOne);
        row.AsSpan(2, 16).Fill(0x9A);  // low 0xA = 10, high 9
        row.AsSpan(20, 16).Fill(0x9A);
        var y = Run(GgmlType.Q4_0, row, 64);
        Assert.Equal([2f, 1f, -2f, -1f], [y[0], y[16], y[32], y[48]]);
    }

    [Fact]
    public void Q4_1_IsCodeTimesScalePlusMin()
    {
        var block = new byte[20];
        Put(block, 0, HalfQuarter);
        Put(block, 2, HalfMinusOne);
        for (int i = 0; i < 16; i++)
        {
            block[4 + i] = (byte)(i | (15 - i) << 4);
        }
        var y = Run(GgmlType.Q4_1, block, 32);
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal(i * 0.25f - 1f, y[i]);
            Assert.Equal((15 - i) * 0.25f - 1f, y[16 + i]);
        }
        Assert.Equal([-1f, 2.75f, 2.75f, -1f], [y[0], y[15], y[16], y[31]]);
    }

    [Fact]
    public void Q5_0_HighBitOfElementJIsBitJOfQh()
    {
        var block = new byte[22];
        Put(block, 0, HalfOne);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(2), 0x8000_0001u); // elements 0 and 31 get +16
        for (int i = 0; i < 16; i++)
        {
            block[6 + i] = (byte)(i | (15 - i) << 4);
        }
        var y = Run(GgmlType.Q5_0, block, 32);
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal(i + (i == 0 ? 16 : 0) - 16f, y[i]);
            Assert.Equal(15 - i + (i == 15 ? 16 : 0) - 16f, y[16 + i]);
        }
        Assert.Equal([0f, -15f, -1f, 0f], [y[0], y[1], y[16], y[31]]);
    }

    [Fact]
    public void Q5_1_IsFiveBitCodeTimesScalePlusMin()
    {
        var block = new byte[24];
        Put(block, 0, HalfHalf);
        Put(block, 2, HalfTwo);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(4), 0xFFFF_0000u); // elements 16..31 get +16
        for (int i = 0; i < 16; i++)
        {
            block[8 + i] = (byte)(i | (15 - i) << 4);
        }
        var y = Run(GgmlType.Q5_1, block, 32);
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal(i * 0.5f + 2f, y[i]);
            Assert.Equal((15 - i + 16) * 0.5f + 2f, y[16 + i]);
        }
        Assert.Equal([2f, 17.5f, 10f], [y[0], y[16], y[31]]);
    }

    // Sub-block scales and mins for the K-quant blocks below, and their 12-byte packing worked out by hand:
    //   bytes 0–3  = sc[0..3] | (sc[4..7] >> 4) << 6  = 01|40, 02|80, 03|C0, 3F|C0
    //   bytes 4–7  = m[0..3]  | (m[4..7] >> 4) << 6   = 00|40, 05|40, 0A|80, 3F|C0
    //   bytes 8–11 = (sc[4..7] & 15) | (m[4..7] & 15) << 4 = 01, F1, F0, EC
    private static readonly int[] s_sc = [1, 2, 3, 63, 17, 33, 48, 60];
    private static readonly int[] s_m = [0, 5, 10, 63, 16, 31, 47, 62];
    private static readonly byte[] s_packedScales = [0x41, 0x82, 0xC3, 0xFF, 0x40, 0x45, 0x8A, 0xFF, 0x01, 0xF1, 0xF0, 0xEC];

    [Fact]
    public void ScaleMinK4_UnpacksTheSixBitFields()
    {
        for (int s = 0; s < 8; s++)
        {
            Assert.Equal((s_sc[s], s_m[s]), Dequantize.ScaleMinK4(s_packedScales, s));
        }
    }

    [Fact]
    public void Q4_K_SubBlockPairsShareBytes_LowNibbleFirst()
    {
        static int Code(int e) => (e * 7 + 3) % 16;
        var block = new byte[144];
        Put(block, 0, HalfOne);   // d
        Put(block, 2, HalfHalf);  // dmin
        s_packedScales.CopyTo(block, 4);
        for (int c = 0; c < 4; c++)
        {
            for (int l = 0; l < 32; l++)
            {
                block[16 + 32 * c + l] = (byte)(Code(64 * c + l) | Code(64 * c + 32 + l) << 4);
            }
        }
        var y = Run(GgmlType.Q4_K, block, 256);
        for (int e = 0; e < 256; e++)
        {
            Assert.Equal(1f * s_sc[e / 32] * Code(e) - 0.5f * s_m[e / 32], y[e]);
        }
        Assert.Equal([3f, 913.5f, 689f], [y[0], y[100], y[255]]);
    }

    [Fact]
    public void Q5_K_FifthBitOfSubBlockSIsBitSOfQh()
    {
        static int Code(int e) => (e * 11 + 5) % 32;
        var block = new byte[176];
        Put(block, 0, HalfOne);
        Put(block, 2, HalfHalf);
        s_packedScales.CopyTo(block, 4);
        for (int l = 0; l < 32; l++)
        {
            for (int s = 0; s < 8; s++)
            {
                block[16 + l] |= (byte)((Code(32 * s + l) >> 4) << s);
            }
        }
        for (int c = 0; c < 4; c++)
        {
            for (int l = 0; l < 32; l++)
            {
                block[48 + 32 * c + l] = (byte)((Code(64 * c + l) & 15) | (Code(64 * c + 32 + l) & 15) << 4);
            }
        }
        var y = Run(GgmlType.Q5_K, block, 256);
        for (int e = 0; e < 256; e++)
        {
            Assert.Equal(1f * s_sc[e / 32] * Code(e) - 0.5f * s_m[e / 32], y[e]);
        }
        Assert.Equal([5f, 1529f], [y[0], y[255]]);
    }

    [Fact]
    public void Q6_K_QlQhInterleaving_AndSignedScales()
    {
        static int Code(int e) => (e * 13 + 7) % 64;
        static int Scale(int s) => s * 17 - 128; // −128 .. 127
        var block = new byte[210];
        for (int h = 0; h < 2; h++)
        {
            for (int l = 0; l < 32; l++)
            {
                int e = 128 * h + l;
                block[64 * h + l] = (byte)((Code(e) & 15) | (Code(e + 64) & 15) << 4);
                block[64 * h + 32 + l] = (byte)((Code(e + 32) & 15) | (Code(e + 96) & 15) << 4);
                block[128 + 32 * h + l] = (byte)(Code(e) >> 4 | (Code(e + 32) >> 4) << 2
                    | (Code(e + 64) >> 4) << 4 | (Code(e + 96) >> 4) << 6);
            }
        }
        for (int s = 0; s < 16; s++)
        {
            block[192 + s] = (byte)(sbyte)Scale(s);
        }
        Put(block, 208, HalfHalf);
        var y = Run(GgmlType.Q6_K, block, 256);
        for (int e = 0; e < 256; e++)
        {
            Assert.Equal(0.5f * Scale(e / 16) * (Code(e) - 32), y[e]);
        }
        Assert.Equal([1600f, 1651f], [y[0], y[255]]);
    }

    public static TheoryData<GgmlType> SupportedTypes => new(
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0,
        GgmlType.Q5_1, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K);

    [Theory]
    [MemberData(nameof(SupportedTypes))]
    public void Row_RejectsWrongLengths(GgmlType type)
    {
        var info = GgmlTypes.Get(type);
        int n = 2 * Math.Max(info.BlockSize, 32);
        int bytes = (int)info.RowBytes(n);
        Assert.True(Dequantize.IsSupported(type));
        Dequantize.Row(type, new byte[bytes], new float[n]); // the right lengths are accepted
        Dequantize.Row(type, [], []);                         // as is an empty row
        Assert.Throws<ArgumentException>("src", () => Dequantize.Row(type, new byte[bytes - 1], new float[n]));
        Assert.Throws<ArgumentException>("src", () => Dequantize.Row(type, new byte[bytes + 1], new float[n]));
        if (info.BlockSize > 1)
        {
            Assert.Throws<ArgumentException>("dst", () => Dequantize.Row(type, new byte[bytes], new float[n - 1]));
        }
    }

    [Theory]
    [InlineData(GgmlType.Q2_K)]
    [InlineData(GgmlType.Q8_1)]
    [InlineData(GgmlType.IQ4_NL)]
    [InlineData(GgmlType.I32)]
    [InlineData((GgmlType)4)]
    public void Row_UnsupportedType_ThrowsNotSupportedNamingIt(GgmlType type)
    {
        Assert.False(Dequantize.IsSupported(type));
        var e = Assert.Throws<NotSupportedException>(() => Dequantize.Row(type, new byte[256], new float[256]));
        Assert.Contains(type.ToString(), e.Message);
    }

    private static float[] Run(GgmlType type, byte[] src, int count)
    {
        var y = new float[count];
        Dequantize.Row(type, src, y);
        return y;
    }

    private static void Put(byte[] block, int offset, ushort half) =>
        BinaryPrimitives.WriteUInt16LittleEndian(block.AsSpan(offset), half);

    private static byte[] Halves(params ushort[] halves)
    {
        var bytes = new byte[2 * halves.Length];
        for (int i = 0; i < halves.Length; i++)
        {
            Put(bytes, 2 * i, halves[i]);
        }
        return bytes;
    }
}
