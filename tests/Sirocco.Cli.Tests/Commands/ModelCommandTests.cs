// `sirocco run`, `logits` and `bench` on a tiny synthetic model, run as the real program: text and a summary line,
// logits JSON that agrees with itself and is deterministic, bench figures, and one-line errors for bad arguments.

using System.Text.Json;

namespace Sirocco.Cli.Tests.Commands;

public sealed class ModelCommandTests : IClassFixture<ModelCommandTests.TinyModel>
{
    private readonly string _model;

    public ModelCommandTests(TinyModel model) => _model = model.Path;

    /// <summary>A one-layer tiny Q8_0 model written once for the class.</summary>
    public sealed class TinyModel : IDisposable
    {
        private readonly string _dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sirocco-cli-model-" + Guid.NewGuid().ToString("N")[..10]);

        public TinyModel()
        {
            Directory.CreateDirectory(_dir);
            Path = System.IO.Path.Combine(_dir, "tiny.gguf");
            var r = SiroccoProcess.Run("synth", "--preset", "tiny", "--layers", "1", "--type", "Q8_0", "--out", Path);
            Assert.True(r.ExitCode == 0, r.StdErr);
        }

        public string Path { get; }

        public void Dispose() => Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Run_PrintsTextAndASummary_AndASeedRepeats()
    {
        var a = SiroccoProcess.Run("run", "--model", _model, "Write a haiku about wind", "--max-tokens", "12", "--seed", "5", "--temperature", "0.8");
        Assert.True(a.ExitCode == 0, a.StdErr);
        Assert.Matches(@"prompt \d+ tokens, generated \d+ tokens \((token limit|end of sequence)\); prefill [\d.]+ tokens/s, decode [\d.]+ tokens/s", a.StdErr);
        Assert.False(string.IsNullOrWhiteSpace(a.StdOut));
        var b = SiroccoProcess.Run("run", "--model", _model, "Write a haiku about wind", "--max-tokens", "12", "--seed", "5", "--temperature", "0.8");
        Assert.Equal(a.StdOut, b.StdOut);
    }

    [Fact]
    public void Run_Greedy_RawAndChatDiffer()
    {
        var chat = SiroccoProcess.Run("run", "--model", _model, "Hello", "-n", "6", "--temperature", "0");
        var raw = SiroccoProcess.Run("run", "--model", _model, "Hello", "-n", "6", "--temperature", "0", "--raw");
        Assert.Equal(0, chat.ExitCode);
        Assert.Equal(0, raw.ExitCode);
        Assert.Contains("prompt 2 tokens", raw.StdErr);   // <s> Hello
        Assert.Contains("prompt 9 tokens", chat.StdErr);  // <s> ▁[ INST ] ▁Hello ▁[ / INST ]
    }

    [Fact]
    public void Logits_LastEqualsTheLastRowOfAll()
    {
        var last = SiroccoProcess.Run("logits", "--model", _model, "--tokens", "[1, 415, 2936]", "--kv-type", "f32");
        var all = SiroccoProcess.Run("logits", "--model", _model, "--tokens", "[1, 415, 2936]", "--kv-type", "f32", "--all");
        Assert.True(last.ExitCode == 0, last.StdErr);
        Assert.True(all.ExitCode == 0, all.StdErr);
        using var l = JsonDocument.Parse(last.StdOut);
        using var a = JsonDocument.Parse(all.StdOut);
        Assert.Equal([2], l.RootElement.GetProperty("positions").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(3, a.RootElement.GetProperty("logits").GetArrayLength());
        float[] lastRow = [.. l.RootElement.GetProperty("logits")[0].EnumerateArray().Select(e => e.GetSingle())];
        float[] allLast = [.. a.RootElement.GetProperty("logits")[2].EnumerateArray().Select(e => e.GetSingle())];
        Assert.Equal(32000, lastRow.Length);
        for (int i = 0; i < lastRow.Length; i++)
        {
            Assert.True(Math.Abs(lastRow[i] - allLast[i]) <= 1e-4f * Math.Max(1, Math.Abs(lastRow[i])), $"logit {i}: {lastRow[i]} vs {allLast[i]}");
        }
    }

    [Theory]
    [InlineData("[1, 99999]", "outside the vocabulary")]
    [InlineData("[]", "at least one token")]
    [InlineData("1, 2", "JSON array")]
    public void Logits_BadTokens_GiveOneLineErrors(string tokens, string expected)
    {
        var r = SiroccoProcess.Run("logits", "--model", _model, "--tokens", tokens);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(expected, r.StdErr);
        Assert.DoesNotContain("   at ", r.StdErr);
    }

    [Fact]
    public void Bench_PrintsThroughputBandwidthAndMemory()
    {
        var r = SiroccoProcess.Run("bench", "--model", _model, "--prompt", "16,32", "--decode", "4", "--repetitions", "1");
        Assert.True(r.ExitCode == 0, r.StdErr);
        Assert.Matches(@"bandwidth\s+[\d.]+ GB/s", r.StdOut);
        Assert.Matches(@"pp16\s+[\d.]+", r.StdOut);
        Assert.Matches(@"pp32\s+[\d.]+", r.StdOut);
        Assert.Matches(@"tg4\s+[\d.]+.*of the measured ceiling", r.StdOut);
        Assert.Matches(@"memory\s+resident \d+ MiB", r.StdOut);
    }

    [Theory]
    [InlineData("run", "--kv-type", "f8", "--kv-type f8")]
    [InlineData("run", "--threads", "-3", "--threads -3")]
    [InlineData("run", "--temperature", "9", "emperature")]
    [InlineData("bench", "--prompt", "12,x", "'x'")]
    public void BadOptions_GiveOneLineErrors(string command, string option, string value, string expected)
    {
        string[] args = command == "run" ? ["run", "--model", _model, "hi", option, value] : ["bench", "--model", _model, option, value];
        var r = SiroccoProcess.Run(args);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(expected, r.StdErr);
    }

    [Fact]
    public void MissingModel_SaysSo()
    {
        var r = SiroccoProcess.Run("run", "--model", "/nonexistent/model.gguf", "hi");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("/nonexistent/model.gguf", r.StdErr);
    }
}
