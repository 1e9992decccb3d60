// FinetuneStore on disk: the two-level lock around changes, reading and writing metadata files, blob paths, and the
// recovery that runs when a store opens (abandoned temporary files and unreferenced blobs are removed).

using Microsoft.Extensions.Logging;

namespace Sirocco.Server.Finetunes;

public sealed partial class FinetuneStore
{
    /// <summary>Runs <paramref name="change"/> holding the in-process gate and the cross-process lock file.</summary>
    private T Locked<T>(Func<T> change)
    {
        lock (_gate)
        {
            using var fileLock = StoreLock.Acquire(_lockPath, s_lockTimeout);
            return change();
        }
    }

    private void Locked(Action change) => Locked(() =>
    {
        change();
        return 0;
    });

    private string MetadataPath(string id) => Path.Combine(_metadataDirectory, id + ".json");

    /// <summary>Where the blob with this SHA-256 (64 lower-case hex digits) lives.</summary>
    private string BlobPath(string sha256) => Path.Combine(_blobDirectory, sha256);

    private void WriteMetadata(Finetune finetune) => DurableFiles.WriteAtomic(MetadataPath(finetune.Id), FinetuneJson.Serialize(finetune));

    /// <summary>Every finetune on disk now. Unreadable metadata files are skipped with a warning, and then
    /// <paramref name="complete"/> is false (callers that delete blobs must not trust the reference count).</summary>
    private List<Finetune> ReadAll(out bool complete)
    {
        complete = true;
        var finetunes = new List<Finetune>();
        foreach (string path in Directory.EnumerateFiles(_metadataDirectory, "*.json"))
        {
            string stem = Path.GetFileNameWithoutExtension(path);
            if (stem.StartsWith('.') || !Guid.TryParseExact(stem, "D", out _))
            {
                continue;
            }
            byte[] bytes;
            try
            {
                // Share delete and write, so a writer may rename a new version over this one while it is read.
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                bytes = new byte[stream.Length];
                stream.ReadExactly(bytes);
            }
            catch (FileNotFoundException)
            {
                continue; // deleted since the directory was listed
            }
            try
            {
                Finetune finetune = FinetuneJson.Deserialize(bytes);
                if (finetune.Id != stem)
                {
                    throw new InvalidDataException($"\"id\" is {finetune.Id}, but the file is named {stem}.json");
                }
                finetunes.Add(finetune);
            }
            catch (InvalidDataException e)
            {
                complete = false;
                Log.UnreadableMetadata(_logger, path, e.Message);
            }
        }
        return finetunes;
    }

    /// <summary>Removes what interrupted writers left: metadata temp files (written only under the lock, so none is in
    /// progress now), blob temp files no live process holds open, and blobs no finetune references (blobs are published
    /// and referenced under the same lock, so an unreferenced one is left over from a crash between the two).</summary>
    private void Recover()
    {
        int removed = 0;
        foreach (string temp in Directory.EnumerateFiles(_metadataDirectory, DurableFiles.TempPrefix + "*"))
        {
            DurableFiles.TryDelete(temp);
            removed++;
        }
        foreach (string temp in Directory.EnumerateFiles(_blobDirectory, DurableFiles.TempPrefix + "*"))
        {
            try
            {
                // An upload in progress (in this or another process) holds its temp file with FileShare.None, so this
                // open fails for it; an abandoned one opens, and is deleted when closed.
                using var probe = new FileStream(temp, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
                removed++;
            }
            catch (IOException)
            {
                // In use, or already gone.
            }
        }
        List<Finetune> all = ReadAll(out bool complete);
        if (complete)
        {
            var referenced = all.SelectMany(f => f.Files.Values).Select(f => f.Sha256).ToHashSet(StringComparer.Ordinal);
            foreach (string blob in Directory.EnumerateFiles(_blobDirectory))
            {
                string name = Path.GetFileName(blob);
                if (FinetuneJson.IsSha256Hex(name) && !referenced.Contains(name))
                {
                    DurableFiles.TryDelete(blob);
                    removed++;
                }
            }
        }
        if (removed > 0)
        {
            DurableFiles.FlushDirectory(_metadataDirectory);
            DurableFiles.FlushDirectory(_blobDirectory);
            Log.Recovered(_logger, DataDirectory, removed);
        }
        int readyCount = all.Count(f => f.IsReady);
        Log.Opened(_logger, DataDirectory, all.Count, readyCount);
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Warning, Message = "Finetune metadata {Path} is unreadable and was skipped: {Problem}")]
        public static partial void UnreadableMetadata(ILogger logger, string path, string problem);

        [LoggerMessage(Level = LogLevel.Information, Message = "Adapter store {DataDirectory}: {FinetuneCount} finetunes, {ReadyCount} ready")]
        public static partial void Opened(ILogger logger, string dataDirectory, int finetuneCount, int readyCount);

        [LoggerMessage(Level = LogLevel.Information, Message = "Adapter store {DataDirectory}: removed {FileCount} files left by an interrupted upload")]
        public static partial void Recovered(ILogger logger, string dataDirectory, int fileCount);
    }
}
