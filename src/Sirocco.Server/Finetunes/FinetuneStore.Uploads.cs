// FinetuneStore uploads, in two steps so an HTTP handler can stream a multipart file before it knows everything about
// it: StageAsync streams the bytes into a temporary blob (hashing them, enforcing the size limit as they arrive, never
// holding the file in memory); Commit validates the finetune if this file completes it, publishes the blob under its
// hash and writes the new metadata. Until the metadata is written nothing references the new blob.

using System.Buffers;
using System.Security.Cryptography;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Finetunes;

/// <summary>An uploaded file in a temporary blob, not yet part of a finetune. Disposing it deletes the temporary file
/// unless <see cref="FinetuneStore.Commit"/> published it.</summary>
public sealed class StagedFile : IDisposable
{
    private FileStream? _holder;

    internal StagedFile(string path, FileStream holder, string sha256, long sizeBytes)
    {
        TempPath = path;
        _holder = holder;
        Sha256 = sha256;
        SizeBytes = sizeBytes;
    }

    /// <summary>SHA-256 of the bytes, lower-case hex.</summary>
    public string Sha256 { get; }

    /// <summary>Length in bytes.</summary>
    public long SizeBytes { get; }

    internal string TempPath { get; }

    internal bool IsPublished { get; set; }

    /// <summary>Closes the handle that marks the temporary file as in use (store recovery skips files held open), so
    /// the validator can read it. Called under the store lock, which also keeps recovery away.</summary>
    internal void CloseHolder()
    {
        _holder?.Dispose();
        _holder = null;
    }

    public void Dispose()
    {
        CloseHolder();
        if (!IsPublished)
        {
            DurableFiles.TryDelete(TempPath);
        }
    }
}

public sealed partial class FinetuneStore
{
    private const int CopyBufferBytes = 128 * 1024;

    /// <summary>Checks, before any bytes are read, that <paramref name="account"/> may upload
    /// <paramref name="fileName"/> to this finetune: a valid file name, a finetune it owns, and no such file yet.</summary>
    /// <returns>The finetune as it is now.</returns>
    /// <exception cref="ApiException">400/5006 bad file name or file already uploaded; 404/3042; 403/3041.</exception>
    public Finetune CheckUploadable(string? account, string idOrName, string fileName)
    {
        ValidateFileName(fileName);
        Finetune finetune = GetOwned(account, idOrName);
        if (finetune.Files.ContainsKey(fileName))
        {
            throw FinetuneErrors.FileExists(finetune, fileName);
        }
        return finetune;
    }

    /// <summary>Streams <paramref name="content"/> to a temporary blob, flushed to disk, with its hash and size.</summary>
    /// <exception cref="ApiException">413/3006 as soon as more than <see cref="FinetuneLimits.MaxFileBytes"/> bytes
    /// arrive; 400/5006 for an empty file. The temporary file is gone whenever this throws.</exception>
    public async Task<StagedFile> StageAsync(Stream content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        string temp = DurableFiles.TempPath(_blobDirectory);
        // FileShare.None holds an exclusive lock (flock on Unix) for as long as the file is being written, which tells
        // any store opening meanwhile, in any process, that it is not abandoned.
        var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0, FileOptions.Asynchronous);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(CopyBufferBytes);
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long size = 0;
            int read;
            while ((read = await content.ReadAsync(buffer.AsMemory(0, CopyBufferBytes), cancellationToken)) > 0)
            {
                size += read;
                if (size > Limits.MaxFileBytes)
                {
                    throw FinetuneErrors.FileTooLarge(Limits.MaxFileBytes);
                }
                hash.AppendData(buffer, 0, read);
                await stream.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }
            if (size == 0)
            {
                throw FinetuneErrors.EmptyFile();
            }
            stream.Flush(flushToDisk: true);
            return new StagedFile(temp, stream, Convert.ToHexStringLower(hash.GetHashAndReset()), size);
        }
        catch
        {
            await stream.DisposeAsync();
            DurableFiles.TryDelete(temp);
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Adds a staged file to a finetune. When it completes the finetune (both files present) the validator
    /// checks the pair first; if it refuses, nothing changes and the staged file is discarded by its owner.</summary>
    /// <returns>The finetune with the file.</returns>
    /// <exception cref="ApiException">As <see cref="CheckUploadable"/> (the state is checked again under the lock: a
    /// concurrent upload of the same file loses with 400), or the validator's error.</exception>
    public Finetune Commit(string? account, string idOrName, string fileName, StagedFile staged)
    {
        ArgumentNullException.ThrowIfNull(staged);
        ValidateFileName(fileName);
        if (staged.IsPublished)
        {
            throw new InvalidOperationException("this staged file was already committed");
        }
        return Locked(() =>
        {
            Finetune finetune = FindOwned(ReadAll(out _), account, idOrName);
            if (finetune.Files.ContainsKey(fileName))
            {
                throw FinetuneErrors.FileExists(finetune, fileName);
            }
            var files = new Dictionary<string, FinetuneFile>(finetune.Files, StringComparer.Ordinal)
            {
                [fileName] = new FinetuneFile(staged.Sha256, staged.SizeBytes),
            };
            staged.CloseHolder();
            if (Finetune.RequiredFileNames.All(files.ContainsKey))
            {
                string PathOf(string name) => name == fileName ? staged.TempPath : BlobPath(files[name].Sha256);
                _validator.Validate(PathOf(Finetune.ConfigFileName), PathOf(Finetune.WeightsFileName));
            }
            string blob = BlobPath(staged.Sha256);
            if (!File.Exists(blob))
            {
                File.Move(staged.TempPath, blob);
                staged.IsPublished = true;
                DurableFiles.FlushDirectory(_blobDirectory);
            }
            // Otherwise the same bytes are already stored (shared with another finetune); the temp file is dropped.
            Finetune updated = finetune with { Files = files, ModifiedAt = Now() };
            WriteMetadata(updated);
            return updated;
        });
    }

    /// <summary>Check, stage and commit in one call (the CLI, and tests).</summary>
    public async Task<Finetune> UploadAsync(string? account, string idOrName, string fileName, Stream content,
        CancellationToken cancellationToken = default)
    {
        CheckUploadable(account, idOrName, fileName);
        using StagedFile staged = await StageAsync(content, cancellationToken);
        return Commit(account, idOrName, fileName, staged);
    }

    /// <summary>400/5006 unless <paramref name="fileName"/> is adapter_config.json or adapter_model.safetensors.</summary>
    public static void ValidateFileName(string? fileName)
    {
        if (fileName is null || !Finetune.RequiredFileNames.Contains(fileName))
        {
            throw fileName is null
                ? ApiException.BadInput($"Bad input: /file_name is required: {Finetune.ConfigFileName} or {Finetune.WeightsFileName}", "/file_name")
                : FinetuneErrors.BadFileName(fileName);
        }
    }
}
