// Runs the real `sirocco` program (the Cli project's build output, copied next to the tests) as a child process, the
// way users run it: arguments, standard input, standard output and error, exit code.

using System.Diagnostics;

namespace Sirocco.Cli.Tests;

internal sealed record ProcessResult(int ExitCode, string StdOut, string StdErr);

internal static class SiroccoProcess
{
    private static readonly Lazy<string> s_dataDirectory = new(() =>
    {
        string dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sirocco-cli-data-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // Best effort.
            }
        };
        return dir;
    });

    /// <summary>The adapter store's directory for child processes (SIROCCO_DATA_DIR), so that commands run without
    /// --data-dir (`serve`) never write to the user's ~/.local/share/sirocco.</summary>
    public static string DataDirectory => s_dataDirectory.Value;

    /// <summary>A start description for the real program: the adapter store and the model store in this run's
    /// temporary folder, no Hugging Face token or login, and HF_ENDPOINT at a closed local port so that nothing a test
    /// runs can reach the real hub; <paramref name="environment"/> overrides (null removes a variable).</summary>
    public static ProcessStartInfo StartInfo(IReadOnlyDictionary<string, string?>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["SIROCCO_DATA_DIR"] = DataDirectory;
        start.Environment["SIROCCO_MODELS"] = System.IO.Path.Combine(DataDirectory, "models");
        start.Environment["HF_HOME"] = System.IO.Path.Combine(DataDirectory, "hf-home");
        start.Environment["HF_ENDPOINT"] = "http://127.0.0.1:9";
        foreach (string name in (string[])["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "SIROCCO_MODEL_ALIASES"])
        {
            start.Environment.Remove(name);
        }
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }
        start.ArgumentList.Add(System.IO.Path.Combine(AppContext.BaseDirectory, "sirocco.dll"));
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        return start;
    }

    public static ProcessResult RunWithInput(string stdin, params string[] args) => RunWith(null, stdin, args);

    /// <summary>Runs the program with extra environment variables (see <see cref="StartInfo"/>).</summary>
    public static ProcessResult RunWithEnvironment(IReadOnlyDictionary<string, string?> environment, params string[] args) => RunWith(environment, "", args);

    private static ProcessResult RunWith(IReadOnlyDictionary<string, string?>? environment, string stdin, string[] args)
    {
        ProcessStartInfo start = StartInfo(environment, args);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardInput.Write(stdin);
        process.StandardInput.Close();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"sirocco {string.Join(' ', args)} did not finish in 2 minutes");
        }
        return new ProcessResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    public static ProcessResult Run(params string[] args) => RunWithInput("", args);
}
