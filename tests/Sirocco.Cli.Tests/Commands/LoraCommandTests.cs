// `sirocco lora add|list|rm` as users run it, on a temporary --data-dir: adapters added public or for an account,
// listed as a table, removed; bad folders, invalid adapters and duplicate names give one line and exit code 1 and
// leave nothing behind; and `sirocco serve --data-dir` sharing the directory with `sirocco lora` while it runs.

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

    private string WriteAdapter(string name, string modelType)
    {
        string folder = _dir.File(name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "adapter_config.json"),
            $$"""{"model_type":"{{modelType}}","r":8,"lora_alpha":16,"target_modules":["q_proj","v_proj"],"peft_type":"LORA"}""");
        byte[] header = Encoding.UTF8.GetBytes("""{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":{"dtype":"F32","shape":[8,32],"data_offsets":[0,1024]}}""");
        byte[] file = new byte[8 + header.Length + 1024];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        File.WriteAllBytes(Path.Combine(folder, "adapter_model.safetensors"), file);
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
        Assert.Contains("adapter_model.safetensors 1.1 KiB", added.StdOut);
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
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in (string[])[Path.Combine(AppContext.BaseDirectory, "sirocco.dll"), "serve", "--model", _model, "--port", port.ToString(), "--data-dir", _store])
        {
            start.ArgumentList.Add(a);
        }
        using var server = Process.Start(start)!;
        var listening = new TaskCompletionSource();
        var log = new StringBuilder();
        void OnLine(object _, DataReceivedEventArgs e)
        {
            lock (log)
            {
                log.AppendLine(e.Data);
            }
            if (e.Data?.Contains("Now listening on", StringComparison.Ordinal) == true)
            {
                listening.TrySetResult();
            }
        }
        server.OutputDataReceived += OnLine;
        server.ErrorDataReceived += OnLine;
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            await listening.Task.WaitAsync(TimeSpan.FromMinutes(1));
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/client/v4/accounts/acc/ai/") };
            async Task<JsonElement> Get(string path) => JsonDocument.Parse(await client.GetStringAsync(path)).RootElement.GetProperty("result");

            // Added by the CLI while the server runs: the server lists it at once.
            Assert.Equal(0, Lora("add", "cli-added", _adapter).ExitCode);
            Assert.Equal("cli-added", Assert.Single((await Get("finetunes/public")).EnumerateArray()).GetProperty("name").GetString());

            // Created over HTTP: the CLI lists it under its account.
            HttpResponseMessage created = await client.PostAsync("finetunes", new StringContent($$"""{"model":"@cf/mistral/mistral-7b-instruct-v0.2-lora","name":"http-added"}"""));
            string id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("result").GetProperty("id").GetString()!;
            foreach (string file in (string[])["adapter_config.json", "adapter_model.safetensors"])
            {
                using var form = new MultipartFormDataContent { { new StringContent(file), "file_name" } };
                var bytes = new ByteArrayContent(File.ReadAllBytes(Path.Combine(_adapter, file)));
                bytes.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                form.Add(bytes, "file", file);
                Assert.Equal(HttpStatusCode.OK, (await client.PostAsync($"finetunes/{id}/finetune-assets", form)).StatusCode);
            }
            Assert.Matches(@"http-added\s+acc\s+yes", Lora("list").StdOut);

            Assert.Equal(0, Lora("rm", "cli-added").ExitCode);
            Assert.Equal(0, (await Get("finetunes/public")).GetArrayLength());
            Assert.Single((await Get("finetunes")).EnumerateArray());
        }
        finally
        {
            using (var kill = Process.Start("kill", ["-TERM", server.Id.ToString()]))
            {
                await kill.WaitForExitAsync();
            }
            if (!server.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                server.Kill(entireProcessTree: true);
            }
        }
        lock (log)
        {
            Assert.True(server.ExitCode == 0, log.ToString());
        }
    }
}
