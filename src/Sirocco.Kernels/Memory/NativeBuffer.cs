// Unmanaged, 64-byte-aligned, zeroed memory for activations, scratch rows and the KV cache: kernels read it through
// spans, worker threads share it without pinning, and the garbage collector never moves or scans it.

using System.Runtime.InteropServices;

namespace Sirocco.Kernels.Memory;

/// <summary>An aligned block of <typeparamref name="T"/> in native memory, zeroed on allocation.</summary>
/// <remarks>Spans handed out stay valid until <see cref="Dispose"/>; using one after that is a bug the buffer cannot
/// detect. The finalizer frees the memory if the owner forgets.</remarks>
public sealed unsafe class NativeBuffer<T> : IDisposable where T : unmanaged
{
    /// <summary>Alignment of the first element, in bytes (one cache line; enough for any vector width).</summary>
    public const int Alignment = 64;

    private T* _pointer;

    /// <summary>Allocates <paramref name="length"/> zeroed elements.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative.</exception>
    /// <exception cref="OutOfMemoryException">The allocation failed.</exception>
    public NativeBuffer(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
        nuint bytes = (nuint)Math.Max(1, length) * (nuint)sizeof(T);
        _pointer = (T*)NativeMemory.AlignedAlloc(bytes, Alignment);
        NativeMemory.Clear(_pointer, bytes);
        if (length > 0)
        {
            GC.AddMemoryPressure((long)bytes);
        }
    }

    ~NativeBuffer() => Free();

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    /// <summary>Size in bytes.</summary>
    public long ByteCount => Length * sizeof(T);

    /// <summary>Address of element 0, for <see cref="WeightMatrix"/> and other views that outlive a span.</summary>
    public nint Address
    {
        get
        {
            ObjectDisposedException.ThrowIf(_pointer == null, this);
            return (nint)_pointer;
        }
    }

    /// <summary>All elements (the buffer must hold fewer than 2³¹).</summary>
    public Span<T> Span => Slice(0, checked((int)Length));

    /// <summary><paramref name="length"/> elements from <paramref name="start"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range does not lie inside the buffer.</exception>
    public Span<T> Slice(long start, int length)
    {
        ObjectDisposedException.ThrowIf(_pointer == null, this);
        if (start < 0 || length < 0 || start > Length - length)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"range [{start}, {start + length}) lies outside the buffer of {Length} elements");
        }
        return new Span<T>(_pointer + start, length);
    }

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    private void Free()
    {
        if (_pointer != null)
        {
            NativeMemory.AlignedFree(_pointer);
            _pointer = null;
            if (Length > 0)
            {
                GC.RemoveMemoryPressure(Math.Max(1, Length) * sizeof(T));
            }
        }
    }
}
