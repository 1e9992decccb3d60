// `sirocco serve` as a child process for tests: started with SiroccoProcess's safe environment, its output collected,
// ready once Kestrel says "Now listening", stopped with SIGTERM (then killed if it lingers) on dispose.

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Sirocco.Cli.Tests;

internal sealed class ServeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ServeProcess(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port}/");

    /// <summary>Everything the server wrote to stdout and stderr so far.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    /// <summary>Starts `sirocco serve --port FREE ARGS` with <paramref name="environment"/> added.</summary>
    public static ServeProcess Start(IReadOnlyDictionary<string, string?>? environment, params string[] args)
    {
        int port = FreePort();
        ProcessStartInfo start = SiroccoProcess.StartInfo(environment, ["serve", "--port", port.ToString(), .. args]);
        start.RedirectStandardInput = false;
        var serve = new ServeProcess(Process.Start(start)!, port);
        serve._process.OutputDataReceived += serve.OnLine;
        serve._process.ErrorDataReceived += serve.OnLine;
        serve._process.BeginOutputReadLine();
        serve._process.BeginErrorReadLine();
        serve._process.EnableRaisingEvents = true;
        serve._process.Exited += (_, _) => serve._listening.TrySetException(new InvalidOperationException("sirocco serve exited: " + serve.Output));
        return serve;
    }

    /// <summary>Waits until the server listens (or fails the test with its output if it exits first).</summary>
    public Task WaitListeningAsync(TimeSpan timeout) => _listening.Task.WaitAsync(timeout);

    /// <summary>Waits for the process to exit on its own; its exit code.</summary>
    public async Task<int> WaitExitAsync(TimeSpan timeout)
    {
        await _process.WaitForExitAsync().WaitAsync(timeout);
        return _process.ExitCode;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString()]))
            {
                await kill.WaitForExitAsync();
            }
            if (!_process.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        _process.Dispose();
    }

    private void OnLine(object sender, DataReceivedEventArgs e)
    {
        if (e.Data is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(e.Data);
        }
        if (e.Data.Contains("Now listening on", StringComparison.Ordinal))
        {
            _listening.TrySetResult();
        }
    }
}
