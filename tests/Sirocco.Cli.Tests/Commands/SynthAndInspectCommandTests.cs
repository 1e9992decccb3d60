// `sirocco synth`, `inspect`, `tokenize` on a synthetic model, and `serve`, run as the real program: files written
// and read back, the plan's exact sizes, and one-line errors with exit code 1 for bad arguments and bad files.

namespace Sirocco.Cli.Tests.Commands;

public sealed class SynthAndInspectCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sirocco-cli-" + Guid.NewGuid().ToString("N")[..10]);

    public SynthAndInspectCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void DryRun7B_PrintsThePlanWithoutWriting()
    {
        string path = Path.Combine(_dir, "7b.gguf");
        var r = SiroccoProcess.Run("synth", "--preset", "7b", "--type", "Q4_0", "--out", path, "--dry-run");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("file size 4,108,917,472 bytes (4.11 GB)", r.StdOut);
        Assert.Contains("7,241,732,096 parameters", r.StdOut);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void TinyGguf_IsWrittenInspectedAndTokenizes()
    {
        string path = Path.Combine(_dir, "tiny.gguf");
        var w = SiroccoProcess.Run("synth", "--preset", "tiny", "--layers", "1", "--type", "Q8_0", "--out", path);
        Assert.True(w.ExitCode == 0, w.StdErr);
        Assert.Contains("took", w.StdErr); // progress, plain lines when stderr is not a terminal
        Assert.True(File.Exists(path));

        var i = SiroccoProcess.Run("inspect", path, "--tensors");
        Assert.Equal(0, i.ExitCode);
        Assert.Contains("model: 1 layers, width 256, feed-forward 512, 4/2 heads of 64, vocab 32000", i.StdOut);
        Assert.Contains("blk.0.attn_q.weight", i.StdOut);
        Assert.Contains("general.file_type = 7", i.StdOut);

        var t = SiroccoProcess.RunWithInput("Hello world", "tokenize", "--model", path, "--bos");
        Assert.Equal(0, t.ExitCode);
        Assert.Equal("[1,22557,1526]", t.StdOut.Trim());
    }

    [Fact]
    public void TinyHuggingFace_IsWrittenAndInspected()
    {
        string dir = Path.Combine(_dir, "hf");
        var w = SiroccoProcess.Run("synth", "--preset", "tiny", "--layers", "1", "--format", "hf", "--type", "F16", "--out", dir);
        Assert.True(w.ExitCode == 0, w.StdErr);
        var i = SiroccoProcess.Run("inspect", dir);
        Assert.Equal(0, i.ExitCode);
        Assert.Contains("config.json: 1 layers, width 256", i.StdOut);
        Assert.Contains("F16", i.StdOut);
        Assert.Equal("[22557,1526]", SiroccoProcess.RunWithInput("Hello world", "tokenize", "--model", dir).StdOut.Trim());
    }

    [Theory]
    [InlineData("unknown preset", "synth", "--preset", "huge", "--out", "x.gguf")]
    [InlineData("choose one of F32, F16, BF16, Q8_0, Q4_0, Q4_K_M", "synth", "--type", "Q3_K_S", "--out", "x.gguf")]
    [InlineData("a Hugging Face checkpoint is F32, F16 or BF16", "synth", "--format", "hf", "--type", "Q4_0", "--out", "x")]
    [InlineData("multiple of KvHeadCount", "synth", "--heads", "3", "--out", "x.gguf")]
    [InlineData("choose gguf or hf", "synth", "--format", "onnx", "--out", "x")]
    [InlineData("larger than the supported maximum", "synth", "--dim", "2000000000", "--heads", "1", "--kv-heads", "1", "--out", "x.gguf")]
    [InlineData("LayerCount must be positive", "synth", "--layers", "0", "--out", "x.gguf")]
    public void BadArguments_GiveOneLineAndExitCode1(string expected, params string[] args)
    {
        var r = SiroccoProcess.Run(args.Select(a => a.EndsWith(".gguf") || a == "x" ? Path.Combine(_dir, a) : a).ToArray());
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(expected, r.StdErr);
        Assert.Single(r.StdErr.Trim().Split('\n'));
    }

    [Fact]
    public void InspectingAGarbledFile_GivesOneLineNamingTheProblem()
    {
        string path = Path.Combine(_dir, "garbage.gguf");
        File.WriteAllText(path, "this is not a model");
        var r = SiroccoProcess.Run("inspect", path);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("garbage.gguf: magic at offset 0: expected \"GGUF\"", r.StdErr);
        Assert.Single(r.StdErr.Trim().Split('\n'));
    }
}
