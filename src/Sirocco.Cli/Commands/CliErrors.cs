// Runs a command body and turns the errors users can cause (bad files, bad arguments, missing files) into one
// actionable line on stderr with exit code 1, instead of a stack trace. Programming errors still surface in full.

using Sirocco.Engine.Formats;

namespace Sirocco.Cli.Commands;

internal static class CliErrors
{
    /// <summary>Runs <paramref name="body"/>; prints "sirocco COMMAND: message" and returns 1 for user-caused errors.</summary>
    public static async Task<int> RunAsync(string command, Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (Exception e) when (e is ModelFormatException or UnsupportedModelException or FileNotFoundException
            or DirectoryNotFoundException or UnauthorizedAccessException or CliUsageException or IOException
            or Sirocco.Engine.Model.KvCacheFullException or Sirocco.Engine.Lora.LoraFormatException or Models.ModelStoreException)
        {
            Console.Error.WriteLine($"sirocco {command}: {e.Message}");
            return 1;
        }
    }

    /// <summary>Synchronous form of <see cref="RunAsync"/>.</summary>
    public static int Run(string command, Func<int> body) =>
        RunAsync(command, () => Task.FromResult(body())).GetAwaiter().GetResult();
}

/// <summary>A command-line argument has a value the command cannot use; the message says which and why.</summary>
public sealed class CliUsageException : Exception
{
    public CliUsageException(string message) : base(message)
    {
    }

    public CliUsageException() : this("bad command-line arguments")
    {
    }

    public CliUsageException(string message, Exception inner) : base(message, inner)
    {
    }
}
