// `sirocco serve` as users run it: the real program on a free port with a tiny synthetic model answers /healthz and a
// Workers AI run, logs one line per request, and exits cleanly on SIGTERM; bad options give one line and exit 1.

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Sirocco.Cli.Tests.Commands;

public sealed class ServeCommandTests : IClassFixture<ModelCommandTests.TinyModel>
{
    private readonly string _model;

    public ServeCommandTests(ModelCommandTests.TinyModel model) => _model = model.Path;

    [Fact]
    public async Task Serve_AnswersRequests_AndStopsOnSigterm()
    {
        int port = FreePort();
        ProcessStartInfo start = SiroccoProcess.StartInfo(null, "serve", "--model", _model, "--port", port.ToString(), "--sse-padding", "0");
        start.RedirectStandardInput = false;
        using var process = Process.Start(start)!;
        var output = new StringBuilder();
        var listening = new TaskCompletionSource();
        void OnLine(object _, DataReceivedEventArgs e)
        {
            if (e.Data is null)
            {
                return;
            }
            lock (output)
            {
                output.AppendLine(e.Data);
            }
            if (e.Data.Contains("Now listening on", StringComparison.Ordinal))
            {
                listening.TrySetResult();
            }
        }
        process.OutputDataReceived += OnLine;
        process.ErrorDataReceived += OnLine;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await listening.Task.WaitAsync(TimeSpan.FromMinutes(1));
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };

            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("healthz")).StatusCode);
            // As in Cloudflare's curl example: JSON sent with curl's default form content type.
            using var body = new StringContent("""{"prompt":"Hello","max_tokens":4,"temperature":0}""", Encoding.UTF8, "application/x-www-form-urlencoded");
            HttpResponseMessage run = await client.PostAsync("client/v4/accounts/me/ai/run/@hf/mistral/mistral-7b-instruct-v0.2", body);
            using var json = JsonDocument.Parse(await run.Content.ReadAsStringAsync());
            Assert.True(json.RootElement.GetProperty("success").GetBoolean());
            Assert.Equal(JsonValueKind.String, json.RootElement.GetProperty("result").GetProperty("response").ValueKind);
        }
        finally
        {
            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString()]))
            {
                await kill.WaitForExitAsync();
            }
            if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                process.Kill(entireProcessTree: true);
            }
        }
        string log;
        lock (output)
        {
            log = output.ToString();
        }
        Assert.True(process.ExitCode == 0, log);
        Assert.Matches(@"request \w+ POST /client/v4/accounts/me/ai/run/@hf/mistral/mistral-7b-instruct-v0.2 200 model=@hf/mistral/mistral-7b-instruct-v0.2 prompt_tokens=\d+ completion_tokens=\d+", log);
    }

    [Theory]
    [InlineData("--host", "0.0.0.0", "without API tokens")]
    [InlineData("--host", "not-an-address", "--host not-an-address")]
    [InlineData("--max-active", "0", "max active requests 0")]
    [InlineData("--tokens-file", "/nonexistent/tokens.txt", "token file not found")]
    [InlineData("--data-dir", "/dev/null/sirocco", "data directory /dev/null/sirocco cannot be used")]
    public void Serve_BadOptions_OneLineAndExit1(string option, string value, string message)
    {
        var r = SiroccoProcess.Run("serve", "--model", _model, "--port", FreePort().ToString(), option, value);

        Assert.True(r.ExitCode == 1, r.StdErr + r.StdOut);
        Assert.Contains(message, r.StdErr, StringComparison.Ordinal);
        Assert.Single(r.StdErr.Trim().Split('\n'), l => l.StartsWith("sirocco serve:", StringComparison.Ordinal) && l.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public void Serve_MissingModel_OneLineAndExit1()
    {
        var r = SiroccoProcess.Run("serve", "--model", "/nonexistent/model.gguf");

        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("sirocco serve:", r.StdErr, StringComparison.Ordinal);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
