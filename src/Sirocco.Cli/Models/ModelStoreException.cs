// The one exception the model store, the hub client and the downloader raise for problems users can cause or fix: a
// wrong name, a missing token, a dropped connection, a full disk, a file that fails verification. Its message is one
// line that says what happened and what to do; CliErrors prints it as is.

namespace Sirocco.Cli.Models;

/// <summary>A model could not be resolved, downloaded or verified; the message says why and what to do.</summary>
public sealed class ModelStoreException : Exception
{
    public ModelStoreException(string message) : base(message)
    {
    }

    /// <param name="isTransient">True when trying again may succeed (a dropped connection, a 5xx answer, a timeout);
    /// the downloader retries these with backoff before giving up.</param>
    public ModelStoreException(string message, bool isTransient, Exception? inner = null) : base(message, inner) => IsTransient = isTransient;

    public ModelStoreException() : this("the model store failed")
    {
    }

    public ModelStoreException(string message, Exception inner) : base(message, inner)
    {
    }

    /// <summary>True when the same request may succeed if tried again.</summary>
    public bool IsTransient { get; }
}
