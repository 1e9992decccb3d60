// Downloads one repository file into the store: into FILE.partial beside its target (locked, so two pulls never write
// one file), resumed with an HTTP Range from the partial's length after a dropped connection (retried with backoff in
// the same run; a later pull resumes too), hashed as it arrives, checked against the size and sha256 the hub publishes
// (or the git blob id of a small non-LFS file), and renamed to its name only when it matches. ModelPuller calls it.

using System.Buffers;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Sirocco.Cli.Models;

/// <summary>Where download progress and notes go: a progress bar (or periodic lines) and one-line notes.</summary>
internal sealed class DownloadReporter(TextWriter output, bool isTerminal)
{
    private ConsoleProgress? _bar;

    /// <summary>Reports on stderr, as a bar when it is a terminal.</summary>
    public static DownloadReporter Console() => new(System.Console.Error, !System.Console.IsErrorRedirected);

    public void Note(string line)
    {
        _bar?.EndLine();
        output.WriteLine(line);
        output.Flush();
    }

    /// <summary>A new progress display for <paramref name="label"/>; <paramref name="startBytes"/> were already there.</summary>
    public ConsoleProgress Bar(string label, long startBytes)
    {
        _bar = new ConsoleProgress(label, output, isTerminal, startBytes);
        return _bar;
    }
}

/// <summary>Resumable, verified download of single files.</summary>
internal sealed class Downloader(HubClient hub, DownloadReporter reporter)
{
    private const int BufferBytes = 1 << 20;

    /// <summary>Downloads <paramref name="file"/> of <paramref name="reference"/> at <paramref name="commit"/> to
    /// <paramref name="target"/>, resuming <c>target.partial</c> if one is there.</summary>
    /// <param name="retryCommand">The command that resumes this download, for messages.</param>
    /// <returns>The sha256 of the file, lowercase hex.</returns>
    /// <exception cref="ModelStoreException">The hub refused or lacks the file; the connection kept failing (the
    /// partial file is kept for a later resume); the size or digest did not match (nothing is kept); the disk is full;
    /// another process is downloading the same file.</exception>
    public async Task<string> DownloadAsync(HubModelReference reference, string commit, HubFileEntry file, string target, string label,
        string retryCommand, CancellationToken cancellationToken)
    {
        string partial = target + ".partial";
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        if (file.Size == 0)
        {
            // Nothing to fetch or resume; an empty file's digests are fixed, so the listing is checked as for any other.
            using var empty = new ContentDigest(0, withGitId: !file.IsLfs && file.GitOid is not null);
            (string emptySha, string? emptyGit) = empty.Finish();
            if ((file.Sha256 is { } s && s != emptySha) || (!file.IsLfs && file.GitOid is { } g && emptyGit != g))
            {
                throw new ModelStoreException($"the hub lists {file.Path} of {reference.Repo} as empty but with the digest of other content; run this again later");
            }
            await File.WriteAllBytesAsync(target, [], cancellationToken);
            return emptySha;
        }
        for (int pass = 0; ; pass++)
        {
            bool resumed;
            Expected expected;
            using var digest = new ContentDigest(file.Size, withGitId: !file.IsLfs && file.GitOid is not null);
            FileStream stream = OpenPartial(partial, file.Path);
            try
            {
                long kept = stream.Length;
                if (kept > file.Size)
                {
                    reporter.Note($"{label}: the partial download ({kept:N0} bytes) is larger than the file ({file.Size:N0} bytes); starting again");
                    stream.SetLength(0);
                    kept = 0;
                }
                resumed = kept > 0;
                if (resumed)
                {
                    reporter.Note($"{label}: resuming at {ConsoleProgress.FormatBytes(kept)} of {ConsoleProgress.FormatBytes(file.Size)}");
                    await HashExistingAsync(stream, kept, digest, label, cancellationToken);
                }
                stream.Seek(0, SeekOrigin.End);
                expected = await FetchRestAsync(reference, commit, file, stream, digest, label, retryCommand, cancellationToken);
                await stream.FlushAsync(cancellationToken);
                stream.Flush(flushToDisk: true);
            }
            finally
            {
                bool empty = stream.Length == 0;
                await stream.DisposeAsync();
                if (empty)
                {
                    File.Delete(partial); // nothing worth resuming (or a mismatch truncated it)
                }
            }

            (string sha256, string? gitId) = digest.Finish();
            string? problem = expected.Sha256 is { } sha && sha != sha256 ? $"the sha256 the hub published (expected {sha}, got {sha256})"
                : expected.GitId is { } git && gitId is not null && git != gitId ? $"the git blob id the hub published (expected {git}, got {gitId})"
                : null;
            if (problem is null)
            {
                File.Move(partial, target, overwrite: true);
                return sha256;
            }
            File.Delete(partial);
            if (resumed && pass == 0)
            {
                reporter.Note($"{label}: the resumed download does not match {problem}; the partial file kept from an earlier run was damaged, so it was deleted — downloading {file.Path} again from the start");
                continue;
            }
            throw new ModelStoreException($"the download of {file.Path} from {reference.Repo} does not match {problem}; it was deleted — run `{retryCommand}` again");
        }
    }

    /// <summary>What the file must hash to: from the file list, else from the hub's X-Linked-Etag/ETag.</summary>
    private sealed record Expected(string? Sha256, string? GitId);

    /// <summary>Appends the rest of the file to <paramref name="stream"/>, retrying transient failures: a failure
    /// after new bytes arrived starts the count again, so only <see cref="HubOptions.MaxAttempts"/> failures in a row
    /// with no progress give up.</summary>
    private async Task<Expected> FetchRestAsync(HubModelReference reference, string commit, HubFileEntry file, FileStream stream,
        ContentDigest digest, string label, string retryCommand, CancellationToken cancellationToken)
    {
        var expected = new Expected(file.Sha256, file.IsLfs ? null : file.GitOid);
        ConsoleProgress bar = reporter.Bar(label, stream.Length);
        int failures = 0;
        while (true)
        {
            long before = stream.Length;
            try
            {
                if (before < file.Size)
                {
                    expected = await FetchOnceAsync(reference, commit, file, stream, digest, bar, expected, cancellationToken);
                }
                if (stream.Length == file.Size)
                {
                    bar.Report(file.Size, file.Size);
                    return expected;
                }
                throw new ModelStoreException(
                    $"the connection closed after {ConsoleProgress.FormatBytes(stream.Length)} of {ConsoleProgress.FormatBytes(file.Size)}", isTransient: true);
            }
            catch (ModelStoreException e) when (e.IsTransient)
            {
                failures = stream.Length > before ? 1 : failures + 1;
                if (failures >= hub.Options.MaxAttempts)
                {
                    bar.EndLine();
                    throw new ModelStoreException(
                        $"downloading {file.Path} from {reference.Repo} failed {failures} time(s) in a row: {e.Message}; " +
                        $"{ConsoleProgress.FormatBytes(stream.Length)} of {ConsoleProgress.FormatBytes(file.Size)} are kept — run `{retryCommand}` again to resume", e);
                }
                TimeSpan delay = HubClient.Backoff(hub.Options, failures);
                reporter.Note($"{label}: {e.Message}; retrying in {delay.TotalSeconds:0.#} s from byte {stream.Length:N0}");
                await Task.Delay(delay, cancellationToken);
            }
        }
    }

    /// <summary>One request for the bytes from the partial's length on, streamed into the partial.</summary>
    private async Task<Expected> FetchOnceAsync(HubModelReference reference, string commit, HubFileEntry file, FileStream stream,
        ContentDigest digest, ConsoleProgress bar, Expected expected, CancellationToken cancellationToken)
    {
        long offset = stream.Length;
        using HubFileResponse answer = await hub.OpenFileAsync(reference, commit, file.Path, offset, cancellationToken);
        expected = CheckMetadata(reference, commit, file, answer, expected, stream);
        HttpResponseMessage response = answer.Response;
        long? length = response.Content.Headers.ContentLength;
        switch (response.StatusCode)
        {
            case HttpStatusCode.RequestedRangeNotSatisfiable:
                Restart(stream, digest);
                throw new ModelStoreException($"the server refused to resume at byte {offset:N0} (416); starting again", isTransient: true);
            case HttpStatusCode.OK when offset > 0:
                reporter.Note($"{file.Path}: the server ignored the request to resume (200 instead of 206); downloading from the start");
                Restart(stream, digest);
                offset = 0;
                break;
            case HttpStatusCode.PartialContent:
                var range = response.Content.Headers.ContentRange;
                if (range?.From != offset || (range.Length is { } total && total != file.Size))
                {
                    Restart(stream, digest);
                    throw new ModelStoreException(
                        $"the server answered the request to resume at byte {offset:N0} with the range '{range}'; starting again", isTransient: true);
                }
                break;
            default:
                break;
        }
        if (length is { } declared && offset + declared != file.Size)
        {
            Restart(stream, digest);
            throw SizeMismatch(reference, file, offset + declared, "announced");
        }

        using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferBytes);
        try
        {
            await using Stream body = await response.Content.ReadAsStreamAsync(cancellationToken);
            while (true)
            {
                int read;
                idle.CancelAfter(hub.Options.ReadTimeout);
                try
                {
                    read = await body.ReadAsync(buffer.AsMemory(0, BufferBytes), idle.Token);
                }
                catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new ModelStoreException($"no data for {hub.Options.ReadTimeout.TotalSeconds:0} s", isTransient: true, e);
                }
                catch (IOException e)
                {
                    throw new ModelStoreException($"the connection dropped ({e.Message})", isTransient: true, e);
                }
                catch (HttpRequestException e)
                {
                    throw new ModelStoreException($"the connection dropped ({e.Message})", isTransient: true, e);
                }
                if (read == 0)
                {
                    return expected;
                }
                if (stream.Length + read > file.Size)
                {
                    Restart(stream, digest);
                    throw SizeMismatch(reference, file, null, "sent");
                }
                await WriteAsync(stream, buffer.AsMemory(0, read), file, cancellationToken);
                digest.Append(buffer.AsSpan(0, read));
                bar.Report(stream.Length, file.Size);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Checks what the hub said about the file (X-Linked-Size, X-Linked-Etag/ETag, X-Repo-Commit) against
    /// the file list, and adopts a published sha256 the list lacked.</summary>
    private static Expected CheckMetadata(HubModelReference reference, string commit, HubFileEntry file, HubFileResponse answer, Expected expected, FileStream stream)
    {
        if (answer.LinkedSize is { } linked && linked != file.Size)
        {
            stream.SetLength(0);
            throw new ModelStoreException(
                $"the hub gives {file.Path} of {reference.Repo} a size of {linked:N0} bytes (X-Linked-Size) but its file list says {file.Size:N0}; nothing was kept — run this again later (if it persists, the server at {HubOptions.EndpointVariable} is serving a different file)");
        }
        if (answer.RepoCommit is { } served && HubClient.IsGitId(served.ToLowerInvariant()) && !served.Equals(commit, StringComparison.OrdinalIgnoreCase))
        {
            throw new ModelStoreException($"the hub served {file.Path} of {reference.Repo} from commit {served}, not the commit {commit} it was asked for; run this again");
        }
        string? etag = answer.Etag;
        if (HubClient.IsSha256(etag))
        {
            if (expected.Sha256 is { } listed && listed != etag)
            {
                stream.SetLength(0);
                throw new ModelStoreException(
                    $"the hub publishes two sha256 digests for {file.Path} of {reference.Repo} ({listed} in its file list, {etag} in X-Linked-Etag); nothing was kept — run this again later");
            }
            return expected with { Sha256 = etag };
        }
        return expected;
    }

    private static ModelStoreException SizeMismatch(HubModelReference reference, HubFileEntry file, long? size, string verb) => new(
        $"the server {verb} {(size is { } s ? $"{s:N0} bytes" : "more bytes")} for {file.Path} of {reference.Repo}, but the hub published {file.Size:N0}; " +
        $"nothing was kept — run this again later (if it persists, the server at {HubOptions.EndpointVariable} is serving a different file)");

    private static void Restart(FileStream stream, ContentDigest digest)
    {
        stream.SetLength(0);
        stream.Seek(0, SeekOrigin.Begin);
        digest.Reset();
    }

    private static async Task WriteAsync(FileStream stream, ReadOnlyMemory<byte> data, HubFileEntry file, CancellationToken cancellationToken)
    {
        try
        {
            await stream.WriteAsync(data, cancellationToken);
        }
        catch (IOException e) when (DiskSpace.IsDiskFull(e))
        {
            throw new ModelStoreException(
                $"the disk holding {Path.GetDirectoryName(stream.Name)} is full after {ConsoleProgress.FormatBytes(stream.Length)} of {file.Path}; " +
                "the partial file is kept: free some space (or choose another --models-dir) and run this again to resume", e);
        }
    }

    /// <summary>Feeds the first <paramref name="length"/> bytes already in the partial file to the digest, so the
    /// whole file is verified once the rest arrives.</summary>
    private async Task HashExistingAsync(FileStream stream, long length, ContentDigest digest, string label, CancellationToken cancellationToken)
    {
        stream.Seek(0, SeekOrigin.Begin);
        await HashAsync(stream, length, digest, reporter.Bar($"checking {label}", 0), cancellationToken);
    }

    /// <summary>The sha256 (and, for a small non-LFS file with a listed blob id, the git blob id) of a whole file.</summary>
    public static async Task<(string Sha256, string? GitId)> HashFileAsync(string path, HubFileEntry file, ConsoleProgress bar, CancellationToken cancellationToken)
    {
        using var digest = new ContentDigest(file.Size, withGitId: !file.IsLfs && file.GitOid is not null);
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await HashAsync(stream, stream.Length, digest, bar, cancellationToken);
        return digest.Finish();
    }

    private static async Task HashAsync(Stream stream, long length, ContentDigest digest, ConsoleProgress bar, CancellationToken cancellationToken)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferBytes);
        try
        {
            long done = 0;
            while (done < length)
            {
                int read = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(BufferBytes, length - done)), cancellationToken);
                if (read == 0)
                {
                    break;
                }
                digest.Append(buffer.AsSpan(0, read));
                done += read;
                bar.Report(done, length);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static FileStream OpenPartial(string partial, string name)
    {
        try
        {
            // FileShare.None is an exclusive advisory lock on Unix too: a second pull of the same file fails here.
            return new FileStream(partial, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 4096, FileOptions.Asynchronous);
        }
        catch (IOException e) when (File.Exists(partial) && !DiskSpace.IsDiskFull(e))
        {
            throw new ModelStoreException($"{name} is being downloaded by another sirocco process ({partial} is in use: {e.Message}); wait for it to finish, then run this again", e);
        }
    }

    /// <summary>sha256 of the content, and optionally the git blob id (sha1 of "blob SIZE\0" + content).</summary>
    internal sealed class ContentDigest(long size, bool withGitId) : IDisposable
    {
        private IncrementalHash _sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private IncrementalHash? _git = withGitId ? NewGit(size) : null;

        public void Append(ReadOnlySpan<byte> data)
        {
            _sha256.AppendData(data);
            _git?.AppendData(data);
        }

        public void Reset()
        {
            _sha256.Dispose();
            _git?.Dispose();
            _sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            _git = withGitId ? NewGit(size) : null;
        }

        /// <summary>Lowercase hex digests; the object may not be used after.</summary>
        public (string Sha256, string? GitId) Finish()
        {
            string sha = Convert.ToHexStringLower(_sha256.GetHashAndReset());
            string? git = _git is null ? null : Convert.ToHexStringLower(_git.GetHashAndReset());
            Dispose();
            return (sha, git);
        }

        public void Dispose()
        {
            _sha256.Dispose();
            _git?.Dispose();
        }

#pragma warning disable CA5350 // SHA-1 is what git names blobs with; this checks identity against the hub's listing, not security.
        private static IncrementalHash NewGit(long size)
        {
            var git = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
            git.AppendData(Encoding.ASCII.GetBytes($"blob {size}\0"));
            return git;
        }
#pragma warning restore CA5350
    }
}
