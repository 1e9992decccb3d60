// A read-only memory map of a whole model file. GGUF and safetensors readers hand out tensor data as spans into it,
// so weights are never copied onto the managed heap: the OS pages them in on first touch and may drop them again.

using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;

namespace Sirocco.Engine.Formats;

/// <summary>A file mapped read-only into the address space. Spans handed out stay valid until <see cref="Dispose"/>.</summary>
public sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _pointer;

    private MappedFile(string path, long length, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* pointer)
    {
        FilePath = path;
        Length = length;
        _map = map;
        _view = view;
        _pointer = pointer;
    }

    /// <summary>The path the file was opened from.</summary>
    public string FilePath { get; }

    /// <summary>File length in bytes.</summary>
    public long Length { get; }

    /// <summary>Maps <paramref name="path"/> read-only. An empty file maps to a zero-length view.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static MappedFile Open(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new FileNotFoundException($"{path}: no such file", path);
        }
        long length = info.Length;
        if (length == 0)
        {
            return new MappedFile(path, 0, null, null, null);
        }
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        pointer += view.PointerOffset;
        return new MappedFile(path, length, map, view, pointer);
    }

    /// <summary>A view of <paramref name="length"/> bytes at <paramref name="offset"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range does not lie inside the file.</exception>
    public ReadOnlySpan<byte> Span(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
        {
            ThrowOutOfRange(offset, length);
        }
        ObjectDisposedException.ThrowIf(_pointer == null && Length != 0, this);
        return length == 0 ? default : new ReadOnlySpan<byte>(_pointer + offset, length);
    }

    /// <summary>Raw address of byte <paramref name="offset"/>, for kernels that stream more than 2 GiB. Caller checks bounds.</summary>
    internal byte* PointerAt(long offset) => _pointer + offset;

    /// <summary>Address of the <paramref name="length"/> bytes at <paramref name="offset"/>, for views (such as a
    /// weight matrix) that must outlive a span; valid until <see cref="Dispose"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range does not lie inside the file.</exception>
    public nint Address(long offset, long length)
    {
        if (offset < 0 || length <= 0 || offset > Length - length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"{FilePath}: range [{offset}, {offset + length}) lies outside the file of {Length} bytes");
        }
        ObjectDisposedException.ThrowIf(_pointer == null, this);
        return (nint)(_pointer + offset);
    }

    public void Dispose()
    {
        if (_view is not null && _pointer != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
        _pointer = null;
        _view?.Dispose();
        _map?.Dispose();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowOutOfRange(long offset, int length) =>
        throw new ArgumentOutOfRangeException(nameof(offset), $"{FilePath}: range [{offset}, {offset + length}) lies outside the file of {Length} bytes");
}
