// Free-space checks for the model store: before a download starts (so a 4 GB pull fails in the first second, with
// numbers, rather than at 97 %), and recognising "disk full" when a write fails anyway. Tests inject a provider.

namespace Sirocco.Cli.Models;

/// <summary>Free bytes where files are written.</summary>
internal static class DiskSpace
{
    /// <summary>Space kept free beyond what a download needs: 64 MiB, for the manifest, logs and other writers.</summary>
    public const long MarginBytes = 64L << 20;

    /// <summary>Bytes available to this user on the file system that holds (or will hold) <paramref name="directory"/>:
    /// measured at its nearest existing ancestor, so nothing is created before the check.</summary>
    public static long Available(string directory)
    {
        string? existing = Path.GetFullPath(directory);
        while (existing is not null && !Directory.Exists(existing))
        {
            existing = Path.GetDirectoryName(existing);
        }
        return new DriveInfo(existing ?? Path.GetPathRoot(Path.GetFullPath(directory))!).AvailableFreeSpace;
    }

    /// <summary>True for the error a write gets on a full disk or an exhausted quota: ENOSPC (28) or EDQUOT (122) on
    /// Unix, ERROR_DISK_FULL (112) or ERROR_HANDLE_DISK_FULL (39) on Windows.</summary>
    public static bool IsDiskFull(IOException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        int code = e.HResult & 0xFFFF;
        return OperatingSystem.IsWindows() ? code is 112 or 39 : e.HResult is 28 or 122;
    }
}
