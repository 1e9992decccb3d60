// `sirocco lora add|list|rm` as users run it, on a temporary --data-dir: adapters added public or for an account,
// listed as a table, removed; bad folders, invalid adapters and duplicate names give one line and exit code 1 and
// leave nothing behind; `sirocco serve --data-dir` sharing the directory with `sirocco lora` while it runs; and a
// server killed (SIGKILL) in the middle of an upload, after which the store opens clean.

using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Sirocco.Cli.Tests.Commands;

public sealed class LoraCommandTests : IDisposable, IClassFixture<ModelCommandTests.TinyModel>
{
    private readonly TempDir _dir = new();
    private readonly string _store;
    private readonly string _adapter;
    private readonly string _model;

    public LoraCommandTests(ModelCommandTests.TinyModel model)
    {
        _model = model.Path;
        _store = _dir.File("store");
        _adapter = WriteAdapter("adapter", "mistral");
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>A real adapter for the tiny model (`sirocco synth-lora`), so the server's engine validator accepts
    /// it; <paramref name="modelType"/> other than mistral is written into its config for the refusal tests.</summary>
    private string WriteAdapter(string name, string modelType)
    {
        string folder = _dir.File(name);
        ProcessResult written = SiroccoProcess.Run("synth-lora", "--model", _model, "--rank", "8", "--targets", "q,v", "--out", folder);
        Assert.True(written.ExitCode == 0, written.StdErr);
        if (modelType != "mistral")
        {
            string configPath = Path.Combine(folder, "adapter_config.json");
            var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
            config["model_type"] = modelType;
            File.WriteAllText(configPath, config.ToJsonString());
        }
        return folder;
    }

    private ProcessResult Lora(params string[] args) => SiroccoProcess.Run(["lora", .. args, "--data-dir", _store]);

    private static void AssertOneLineError(ProcessResult r, string command, string expected)
    {
        Assert.True(r.ExitCode == 1, r.StdOut + r.StdErr);
        string line = Assert.Single(r.StdErr.Trim().Split('\n'));
        Assert.StartsWith($"sirocco lora {command}: ", line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
    }

    [Fact]
    public void AddListRemove()
    {
        ProcessResult added = Lora("add", "shared-lora", _adapter, "--description", "for everyone");
        Assert.True(added.ExitCode == 0, added.StdErr);
        Assert.Contains("added shared-lora (", added.StdOut);
        Assert.Contains("public, no owning account", added.StdOut);
        Assert.Matches(@"adapter_model.safetensors [\d.]+ KiB", added.StdOut);
        Assert.Equal(0, Lora("add", "acc-lora", _adapter, "--account", "acc").ExitCode);

        ProcessResult list = Lora("list");
        Assert.Equal(0, list.ExitCode);
        string[] lines = list.StdOut.Trim().Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.Matches(@"^ID\s+NAME\s+ACCOUNT\s+READY\s+SIZE\s+CREATED$", lines[0]);
        Assert.Matches(@"^[0-9a-f-]{36}\s+shared-lora\s+public\s+yes\s+[\d.]+ KiB\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$", lines[1]);
        Assert.Matches(@"^[0-9a-f-]{36}\s+acc-lora\s+acc\s+yes\s", lines[2]);
        Assert.Equal(3, Lora("list", "--account", "acc").StdOut.Trim().Split('\n').Length);
        Assert.Equal(2, Lora("list", "--account", "other").StdOut.Trim().Split('\n').Length);

        AssertOneLineError(Lora("rm", "acc-lora"), "rm", "it exists for account acc: pass --account");
        Assert.Contains("removed acc-lora", Lora("rm", "acc-lora", "--account", "acc").StdOut);
        Assert.Contains("removed shared-lora", Lora("rm", "shared-lora").StdOut);
        Assert.StartsWith("no adapters in ", Lora("list").StdOut);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_store, "blobs", "sha256")));
    }

    [Fact]
    public void BadInput_OneLineExit1_AndNothingAdded()
    {
        AssertOneLineError(Lora("add", "x", _dir.File("missing")), "add", "missing: no such directory");
        string half = _dir.File("half");
        Directory.CreateDirectory(half);
        File.Copy(Path.Combine(_adapter, "adapter_config.json"), Path.Combine(half, "adapter_config.json"));
        AssertOneLineError(Lora("add", "x", half), "add", "has no adapter_model.safetensors");
        AssertOneLineError(Lora("add", "x", WriteAdapter("llama", "llama")), "add", "\"model_type\" is \"llama\"");
        AssertOneLineError(Lora("add", "../x", _adapter), "add", "contains a path separator '/'");
        AssertOneLineError(Lora("add", "x", _adapter, "--model", "@cf/meta/llama-3-8b"), "add", "No such model @cf/meta/llama-3-8b");
        AssertOneLineError(Lora("rm", "nothing"), "rm", "no adapter named nothing");
        Assert.StartsWith("no adapters in ", Lora("list").StdOut);

        Assert.Equal(0, Lora("add", "x", _adapter).ExitCode);
        AssertOneLineError(Lora("add", "x", _adapter), "add", "already has a finetune named \"x\"");
        Assert.Equal(2, Lora("list").StdOut.Trim().Split('\n').Length);
    }

    [Fact]
    public async Task ServeAndLora_ShareTheDataDirectory_WhileTheServerRuns()
    {
        await using var server = await ServerProcess.StartAsync(_model, _store);
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.Port}/client/v4/accounts/acc/ai/") };
        async Task<JsonElement> Get(string path) => JsonDocument.Parse(await client.GetStringAsync(path)).RootElement.GetProperty("result");

        // Added by the CLI while the server runs: the server lists it at once.
        Assert.Equal(0, Lora("add", "cli-added", _adapter).ExitCode);
        Assert.Equal("cli-added", Assert.Single((await Get("finetunes/public")).EnumerateArray()).GetProperty("name").GetString());

        // Created over HTTP: the CLI lists it under its account.
        string id = await CreateAsync(client, "http-added");
        foreach (string file in (string[])["adapter_config.json", "adapter_model.safetensors"])
        {
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync($"finetunes/{id}/finetune-assets", Form(file))).StatusCode);
        }
        Assert.Matches(@"http-added\s+acc\s+yes", Lora("list").StdOut);

        Assert.Equal(0, Lora("rm", "cli-added").ExitCode);
        Assert.Equal(0, (await Get("finetunes/public")).GetArrayLength());
        Assert.Single((await Get("finetunes")).EnumerateArray());
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact]
    public async Task AServerKilledMidUpload_LeavesAStoreThatOpensCleanWithTheFinetuneNotReady()
    {
        string blobs = Path.Combine(_store, "blobs", "sha256");
        await using (var server = await ServerProcess.StartAsync(_model, _store))
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.Port}/client/v4/accounts/acc/ai/") };
            string id = await CreateAsync(client, "killed");
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync($"finetunes/{id}/finetune-assets", Form("adapter_config.json"))).StatusCode);

            // Half a weights file, then nothing: the server is streaming it into a temporary blob when it is killed.
            const string Boundary = "kill-test";
            byte[] head = Encoding.ASCII.GetBytes(
                $"--{Boundary}\r\nContent-Disposition: form-data; name=\"file_name\"\r\n\r\nadapter_model.safetensors\r\n" +
                $"--{Boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"blob\"\r\n\r\n");
            var body = new HangingContent([.. head, .. new byte[200_000]]);
            body.Headers.ContentType = MediaTypeHeaderValue.Parse($"multipart/form-data; boundary={Boundary}");
            using var cancel = new CancellationTokenSource();
            Task<HttpResponseMessage> upload = client.PostAsync($"finetunes/{id}/finetune-assets", body, cancel.Token);
            for (int i = 0; i < 200 && !Directory.EnumerateFiles(blobs, ".tmp-*").Any(f => new FileInfo(f).Length > 0); i++)
            {
                await Task.Delay(50);
            }
            Assert.NotEmpty(Directory.EnumerateFiles(blobs, ".tmp-*"));
            server.Kill();
            cancel.Cancel();
            await Assert.ThrowsAnyAsync<Exception>(() => upload);
        }
        Assert.NotEmpty(Directory.EnumerateFiles(blobs, ".tmp-*")); // what the kill left

        ProcessResult list = Lora("list"); // opening the store recovers it
        Assert.Equal(0, list.ExitCode);
        Assert.Matches(@"killed\s+acc\s+no \(no adapter_model.safetensors\)", list.StdOut);
        Assert.Empty(Directory.EnumerateFiles(blobs, ".tmp-*"));
        Assert.Single(Directory.EnumerateFiles(blobs));
    }

    private static async Task<string> CreateAsync(HttpClient client, string name)
    {
        HttpResponseMessage created = await client.PostAsync("finetunes",
            new StringContent($$"""{"model":"@cf/mistral/mistral-7b-instruct-v0.2-lora","name":"{{name}}"}"""));
        return JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("result").GetProperty("id").GetString()!;
    }

    private MultipartFormDataContent Form(string file)
    {
        var form = new MultipartFormDataContent { { new StringContent(file), "file_name" } };
        var bytes = new ByteArrayContent(File.ReadAllBytes(Path.Combine(_adapter, file)));
        bytes.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(bytes, "file", file);
        return form;
    }

    /// <summary>Sends its bytes and then hangs until the request is cancelled.</summary>
    private sealed class HangingContent(byte[] bytes) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await stream.WriteAsync(bytes, cancellationToken);
            await stream.FlushAsync(cancellationToken);
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    /// <summary>`sirocco serve --data-dir` as a child process on a free port.</summary>
    private sealed class ServerProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _log = new();

        private ServerProcess(Process process, int port)
        {
            _process = process;
            Port = port;
        }

        public int Port { get; }

        public static async Task<ServerProcess> StartAsync(string model, string dataDir)
        {
            int port;
            using (var listener = new TcpListener(IPAddress.Loopback, 0))
            {
                listener.Start();
                port = ((IPEndPoint)listener.LocalEndpoint).Port;
            }
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string a in (string[])[Path.Combine(AppContext.BaseDirectory, "sirocco.dll"), "serve", "--model", model, "--port", port.ToString(), "--data-dir", dataDir])
            {
                start.ArgumentList.Add(a);
            }
            var server = new ServerProcess(Process.Start(start)!, port);
            var listening = new TaskCompletionSource();
            void OnLine(object _, DataReceivedEventArgs e)
            {
                lock (server._log)
                {
                    server._log.AppendLine(e.Data);
                }
                if (e.Data?.Contains("Now listening on", StringComparison.Ordinal) == true)
                {
                    listening.TrySetResult();
                }
            }
            server._process.OutputDataReceived += OnLine;
            server._process.ErrorDataReceived += OnLine;
            server._process.BeginOutputReadLine();
            server._process.BeginErrorReadLine();
            await listening.Task.WaitAsync(TimeSpan.FromMinutes(1));
            return server;
        }

        /// <summary>SIGKILL: no shutdown, no cleanup, as a crash.</summary>
        public void Kill()
        {
            _process.Kill();
            _process.WaitForExit();
        }

        /// <summary>SIGTERM, then the exit code.</summary>
        public async Task<int> StopAsync()
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
            return _process.ExitCode;
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            _process.Dispose();
        }
    }
}
