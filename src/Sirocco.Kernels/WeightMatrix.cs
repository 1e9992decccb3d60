// A weight matrix as ggml stores it: Rows rows of Columns elements, each row a whole number of blocks of one type,
// rows back to back. The data lives outside the managed heap (a memory-mapped model file or a NativeBuffer), so a
// view is just an address; whoever owns that memory keeps it alive for as long as the view is used.

using Sirocco.Kernels.Quant;

namespace Sirocco.Kernels;

/// <summary>A read-only view of a row-major weight matrix in one <see cref="GgmlType"/>.</summary>
public readonly unsafe struct WeightMatrix
{
    private readonly byte* _data;

    /// <summary>A view of <paramref name="rows"/> × <paramref name="columns"/> elements of <paramref name="type"/> at
    /// <paramref name="address"/>.</summary>
    /// <exception cref="ArgumentException">The shape is not positive, or a row is not a whole number of blocks.</exception>
    public WeightMatrix(GgmlType type, nint address, int rows, int columns)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        if (address == 0)
        {
            throw new ArgumentException("address is null", nameof(address));
        }
        GgmlTypeInfo info = GgmlTypes.Get(type);
        if (columns % info.BlockSize != 0)
        {
            throw new ArgumentException($"{columns} columns is not a whole number of {type} blocks of {info.BlockSize}", nameof(columns));
        }
        Type = type;
        _data = (byte*)address;
        Rows = rows;
        Columns = columns;
        RowBytes = info.RowBytes(columns);
    }

    public GgmlType Type { get; }

    public int Rows { get; }

    public int Columns { get; }

    /// <summary>Bytes per row.</summary>
    public long RowBytes { get; }

    /// <summary>Bytes in the whole matrix.</summary>
    public long ByteCount => RowBytes * Rows;

    /// <summary>The packed bytes of row <paramref name="row"/>.</summary>
    public ReadOnlySpan<byte> Row(int row)
    {
        if ((uint)row >= (uint)Rows)
        {
            throw new ArgumentOutOfRangeException(nameof(row), $"row {row} of a matrix of {Rows} rows");
        }
        return new ReadOnlySpan<byte>(_data + row * RowBytes, checked((int)RowBytes));
    }

    /// <summary>Address of row <paramref name="row"/>, unchecked, for kernels.</summary>
    internal byte* RowPointer(int row) => _data + row * RowBytes;
}
