// The model commands as users run them, against a fake hub on 127.0.0.1 (HF_ENDPOINT): `pull` with progress lines,
// `models`, `rm`; `serve` with no --model pulling the default alias (pointed at a tiny model by SIROCCO_MODEL_ALIASES)
// and answering /healthz; `--offline` with and without the model; 404 and 401 as one line and exit code 1.

using System.Net;
using System.Text.Json;
using Sirocco.Cli.Tests.Models;

namespace Sirocco.Cli.Tests.Commands;

public sealed class PullCommandTests : IAsyncLifetime
{
    private FakeHub _hub = null!;
    private readonly string _store = Path.Combine(Path.GetTempPath(), "sirocco-cli-store-" + Guid.NewGuid().ToString("N")[..10]);

    public async Task InitializeAsync()
    {
        _hub = await FakeHub.StartAsync();
        TinyHubModels.AddGgufRepo(_hub);
        TinyHubModels.AddGgufRepo(_hub, "test-org/Gated-GGUF", FakeAccess.Gated);
    }

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        if (Directory.Exists(_store))
        {
            Directory.Delete(_store, recursive: true);
        }
    }

    private Dictionary<string, string?> Environment(params (string Name, string? Value)[] extra)
    {
        var environment = new Dictionary<string, string?>
        {
            ["HF_ENDPOINT"] = _hub.Endpoint.AbsoluteUri.TrimEnd('/'),
            ["SIROCCO_MODELS"] = _store,
            ["SIROCCO_MODEL_ALIASES"] = "mistral-7b-instruct-v0.2=test-org/Tiny-GGUF:Q4_K_M",
        };
        foreach (var (name, value) in extra)
        {
            environment[name] = value;
        }
        return environment;
    }

    [Fact]
    public void Pull_Models_Rm()
    {
        var pull = SiroccoProcess.RunWithEnvironment(Environment(), "pull", "test-org/Tiny-GGUF:Q4_K_M");

        Assert.True(pull.ExitCode == 0, pull.StdErr);
        Assert.Matches(@"^pulled: test-org/Tiny-GGUF:Q4_K_M → .*/test-org/tiny-gguf/[0-9a-f]{40}/tiny\.Q4_K_M\.gguf \([\d.]+ MiB, Q4_K_M, commit [0-9a-f]{12}, sha256 verified\)", pull.StdOut);
        Assert.Contains("pulling test-org/Tiny-GGUF:Q4_K_M from http://127.0.0.1:", pull.StdErr);
        // Redirected stderr: plain progress lines (no bar), ending at 100 %.
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(pull.StdErr, @"tiny\.Q4_K_M\.gguf 100\.0%  [\d.]+ MiB / [\d.]+ MiB  [\d.]+ [KMG]?i?B/s  took \d+:\d\d"), pull.StdErr);
        Assert.DoesNotContain("\r", pull.StdErr);

        var list = SiroccoProcess.RunWithEnvironment(Environment(), "models");
        Assert.True(list.ExitCode == 0, list.StdErr);
        Assert.Contains($"models in {_store}:", list.StdOut);
        Assert.Matches(@"NAME\s+QUANTIZATION\s+SIZE\s+FILE", list.StdOut);
        Assert.Matches(@"test-org/Tiny-GGUF:Q4_K_M \(mistral-7b-instruct-v0.2\)\s+Q4_K_M\s+[\d.]+ MiB\s+/.*tiny\.Q4_K_M\.gguf", list.StdOut);

        int requests = _hub.RequestCount;
        var again = SiroccoProcess.RunWithEnvironment(Environment(), "pull", "mistral-7b-instruct-v0.2");
        Assert.True(again.ExitCode == 0, again.StdErr);
        Assert.StartsWith("already in the store: mistral-7b-instruct-v0.2 (test-org/Tiny-GGUF:Q4_K_M)", again.StdOut);
        Assert.Equal(requests, _hub.RequestCount);

        var verify = SiroccoProcess.RunWithEnvironment(Environment(), "models", "--verify");
        Assert.True(verify.ExitCode == 0, verify.StdErr + verify.StdOut);
        Assert.Contains("verified: every file matches its sha256", verify.StdOut);

        var rm = SiroccoProcess.RunWithEnvironment(Environment(), "rm", "mistral-7b-instruct-v0.2");
        Assert.True(rm.ExitCode == 0, rm.StdErr);
        Assert.Matches(@"^removed mistral-7b-instruct-v0.2 \(test-org/Tiny-GGUF:Q4_K_M\) from .* \([\d.]+ MiB freed\)", rm.StdOut);
        Assert.StartsWith("no models in", SiroccoProcess.RunWithEnvironment(Environment(), "models").StdOut);

        var rmAgain = SiroccoProcess.RunWithEnvironment(Environment(), "rm", "mistral-7b-instruct-v0.2");
        Assert.Equal(1, rmAgain.ExitCode);
        Assert.StartsWith("sirocco rm: mistral-7b-instruct-v0.2 (test-org/Tiny-GGUF:Q4_K_M) is not in the model store", rmAgain.StdErr);
    }

    [Fact]
    public async Task Serve_WithoutModel_PullsTheDefaultAlias_Serves_AndThenRunsOffline()
    {
        await using (var serve = ServeProcess.Start(Environment()))
        {
            await serve.WaitListeningAsync(TimeSpan.FromMinutes(1));
            using var client = new HttpClient { BaseAddress = serve.BaseAddress };
            HttpResponseMessage health = await client.GetAsync("healthz");
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            using var json = JsonDocument.Parse(await health.Content.ReadAsStringAsync());
            Assert.Equal("test-org/Tiny-GGUF:Q4_K_M", json.RootElement.GetProperty("model").GetString());
            string log = serve.Output;
            Assert.Contains("mistral-7b-instruct-v0.2 is test-org/Tiny-GGUF:Q4_K_M on http://127.0.0.1:", log);
            Assert.Contains("not yet in the model store", log);
            Assert.Matches(@"sirocco serve: loaded .*/tiny\.Q4_K_M\.gguf", log);
        }
        Assert.Contains(_hub.Requests, r => r.ToCdn);

        int requests = _hub.RequestCount;
        var run = SiroccoProcess.RunWithEnvironment(Environment(), "run", "--model", "mistral-7b-instruct-v0.2", "--offline", "Hello", "-n", "3", "--temperature", "0");
        Assert.True(run.ExitCode == 0, run.StdErr);
        Assert.Contains("generated", run.StdErr);
        Assert.Equal(requests, _hub.RequestCount);
    }

    [Fact]
    public async Task Serve_Offline_WithoutTheModel_OneLineAndExit1()
    {
        await using var serve = ServeProcess.Start(Environment(("HF_HUB_OFFLINE", "1")));

        Assert.Equal(1, await serve.WaitExitAsync(TimeSpan.FromMinutes(1)));
        string line = Assert.Single(serve.Output.Trim().Split('\n'));
        Assert.StartsWith("sirocco serve: mistral-7b-instruct-v0.2 (test-org/Tiny-GGUF:Q4_K_M) is not in the model store", line);
        Assert.Contains("run `sirocco pull mistral-7b-instruct-v0.2` first", line);
        Assert.Equal(0, _hub.RequestCount);
    }

    [Fact]
    public async Task Serve_BadOptions_FailBeforeAnyDownload()
    {
        await using var serve = ServeProcess.Start(Environment(), "--threads", "-3");

        Assert.Equal(1, await serve.WaitExitAsync(TimeSpan.FromMinutes(1)));
        Assert.StartsWith("sirocco serve: --threads -3", serve.Output);
        Assert.Equal(0, _hub.RequestCount);
    }

    [Theory]
    [InlineData("test-org/No-Such-Repo:Q4_K_M", null, "sirocco pull: no repository test-org/No-Such-Repo on http://127.0.0.1:")]
    [InlineData("test-org/Gated-GGUF:Q4_K_M", null, "sirocco pull: test-org/Gated-GGUF is a gated repository: it needs a Hugging Face token: set HF_TOKEN")]
    [InlineData("test-org/Gated-GGUF:Q4_K_M", FakeHub.NoAccessToken, "sirocco pull: test-org/Gated-GGUF is a gated repository and your token has no access to it (403 Forbidden)")]
    [InlineData("test-org/Tiny-GGUF:Q9_K", null, "sirocco pull: test-org/Tiny-GGUF has no GGUF file for Q9_K; it has IQ4_K_M, Q4_K_M, Q4_K_M_L, Q8_0")]
    public void Pull_HubErrors_AreOneLine(string reference, string? token, string message)
    {
        var r = SiroccoProcess.RunWithEnvironment(Environment(("HF_TOKEN", token)), "pull", reference);

        Assert.Equal(1, r.ExitCode);
        // At most a "pulling …" note before it, then the error: one line, the last.
        string[] lines = r.StdErr.Trim().Split('\n');
        Assert.StartsWith(message, lines[^1]);
        Assert.Single(lines, l => l.StartsWith("sirocco pull:", StringComparison.Ordinal));
        Assert.DoesNotContain("   at ", r.StdErr);
        Assert.False(Directory.Exists(_store) && Directory.EnumerateFiles(_store, "*.manifest.json", SearchOption.AllDirectories).Any());
    }

    [Fact]
    public void Pull_GatedWithAToken_FromHfToken()
    {
        var r = SiroccoProcess.RunWithEnvironment(Environment(("HF_TOKEN", FakeHub.ValidToken)), "pull", "test-org/Gated-GGUF:Q4_K_M", "--models-dir", Path.Combine(_store, "explicit"));

        Assert.True(r.ExitCode == 0, r.StdErr);
        Assert.Contains(Path.Combine(_store, "explicit", "test-org", "gated-gguf"), r.StdOut);
        Assert.All(_hub.Requests.Where(q => q.ToCdn), q => Assert.Null(q.Authorization));
        Assert.Contains(_hub.Requests, q => !q.ToCdn && q.Authorization == $"Bearer {FakeHub.ValidToken}");
    }

    [Fact]
    public void Inspect_TakesAStoredModel_ButNeverDownloads()
    {
        var missing = SiroccoProcess.RunWithEnvironment(Environment(), "inspect", "mistral-7b-instruct-v0.2");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("this command does not download: run `sirocco pull mistral-7b-instruct-v0.2` first", missing.StdErr);
        Assert.Equal(0, _hub.RequestCount);

        Assert.Equal(0, SiroccoProcess.RunWithEnvironment(Environment(), "pull").ExitCode);
        var inspect = SiroccoProcess.RunWithEnvironment(Environment(), "inspect", "mistral-7b-instruct-v0.2");
        Assert.True(inspect.ExitCode == 0, inspect.StdErr);
        Assert.Contains("GGUF v3", inspect.StdOut);
    }
}
