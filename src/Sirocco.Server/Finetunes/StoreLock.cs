// Mutual exclusion between processes that share a data directory (`sirocco serve` and `sirocco lora`): an exclusive
// open of a lock file (FileShare.None: flock(LOCK_EX) on Unix, a sharing lock on Windows), retried for a short while.
// The OS drops the lock when its holder exits, even when killed, so a crash never leaves the store locked.

namespace Sirocco.Server.Finetunes;

internal sealed class StoreLock : IDisposable
{
    private readonly FileStream _stream;

    private StoreLock(FileStream stream) => _stream = stream;

    /// <summary>Takes the lock on <paramref name="path"/>, waiting up to <paramref name="timeout"/>.</summary>
    /// <exception cref="IOException">Another process held it for the whole timeout.</exception>
    public static StoreLock Acquire(string path, TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        int delayMs = 1;
        while (true)
        {
            try
            {
                return new StoreLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 1));
            }
            catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
            {
                if (Environment.TickCount64 >= deadline)
                {
                    throw new IOException(
                        $"{path}: the finetune store stayed locked by another process (sirocco serve or sirocco lora) for {timeout.TotalSeconds:0.#} s: {e.Message}", e);
                }
                Thread.Sleep(delayMs);
                delayMs = Math.Min(delayMs * 2, 50);
            }
        }
    }

    public void Dispose() => _stream.Dispose();
}
