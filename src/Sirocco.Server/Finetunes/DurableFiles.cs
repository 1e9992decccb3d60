// Crash-safe file primitives for the FinetuneStore: a file is written under a temporary name in its final directory,
// flushed to the disk, renamed over its final name (atomic on POSIX and NTFS), and the directory entry is flushed too,
// so after a crash or a kill a reader finds the old file or the new one, never a mix.

using System.Runtime.InteropServices;

namespace Sirocco.Server.Finetunes;

internal static partial class DurableFiles
{
    /// <summary>Prefix of every temporary file the store writes; the store deletes abandoned ones when it opens.</summary>
    public const string TempPrefix = ".tmp-";

    /// <summary>A fresh temporary path in <paramref name="directory"/> (<c>.tmp-&lt;random&gt;&lt;suffix&gt;</c>).</summary>
    public static string TempPath(string directory, string suffix = "") =>
        Path.Combine(directory, TempPrefix + Guid.NewGuid().ToString("N") + suffix);

    /// <summary>Replaces <paramref name="path"/> with <paramref name="bytes"/> atomically and durably: temp file in the
    /// same directory, fsync, rename over the target, fsync of the directory.</summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> bytes)
    {
        string directory = Path.GetDirectoryName(path)!;
        string temp = TempPath(directory, ".json");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        FlushDirectory(directory);
    }

    /// <summary>Deletes <paramref name="path"/> if it exists, ignoring failures (cleanup on an error path).</summary>
    public static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left for the cleanup at the next open.
        }
    }

    /// <summary>Flushes <paramref name="directory"/>'s entries (new, renamed and deleted names) to the disk where the
    /// platform allows it: fsync on a directory descriptor on Linux and macOS. Windows has no such call (NTFS journals
    /// its metadata), and a failure here is ignored: the data itself was already flushed.</summary>
    public static void FlushDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        try
        {
            // O_RDONLY (0) is the same on every POSIX system; O_DIRECTORY is not, and is not needed.
            int fd = Posix.Open(directory, 0);
            if (fd >= 0)
            {
                _ = Posix.Fsync(fd);
                _ = Posix.Close(fd);
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // No libc to call (an unusual runtime): the rename is still atomic, only its durability is the OS's.
        }
    }

    private static class Posix
    {
        [DllImport("libc", EntryPoint = "open", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int Fsync(int fd);

        [DllImport("libc", EntryPoint = "close", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int Close(int fd);
    }
}
