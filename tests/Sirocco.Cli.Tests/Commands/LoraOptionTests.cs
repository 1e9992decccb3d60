// `--lora` on `sirocco logits` and `run`, and `sirocco synth-lora`, run as the real program on the one-layer tiny
// model: an adapter changes the logits, the PEFT and GGUF adapters of one seed give the same logits, and a bad adapter
// or a rank over --lora-max-rank is one line on stderr with exit code 1.

using System.Text.Json;

namespace Sirocco.Cli.Tests.Commands;

public sealed class LoraOptionTests(ModelCommandTests.TinyModel model) : IClassFixture<ModelCommandTests.TinyModel>, IDisposable
{
    private readonly string _model = model.Path;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Logits_WithAnAdapter_DifferFromTheBase_AndPeftEqualsGguf()
    {
        string peft = _dir.File("peft"), gguf = _dir.File("adapter.gguf");
        Ok(SiroccoProcess.Run("synth-lora", "--model", _model, "--targets", "all", "--seed", "3", "--out", peft));
        Ok(SiroccoProcess.Run("synth-lora", "--model", _model, "--targets", "all", "--seed", "3", "--format", "gguf", "--out", gguf));
        float[] plain = Logits(), withPeft = Logits("--lora", peft), withGguf = Logits("--lora", gguf);
        double scale = plain.Max(Math.Abs);
        Assert.True(MaxDifference(plain, withPeft) > 1e-2 * scale, "the adapter must change the logits");
        Assert.True(MaxDifference(withPeft, withGguf) <= 1e-5 * scale, "the PEFT and GGUF copies of one seed are the same adapter");
    }

    [Fact]
    public void Run_WithAnAdapter_ReportsItAndGenerates()
    {
        string peft = _dir.File("run");
        Ok(SiroccoProcess.Run("synth-lora", "--model", _model, "--targets", "q,k,v,o", "--out", peft));
        var r = SiroccoProcess.Run("run", "--model", _model, "--lora", peft, "Hello", "-n", "4", "--temperature", "0");
        Ok(r);
        Assert.Contains("PEFT LoRA r=8", r.StdErr);
        Assert.Contains("q_proj, k_proj, v_proj, o_proj in 1 of 1 layers", r.StdErr);
        Assert.Matches(@"generated \d+ tokens", r.StdErr);
    }

    [Fact]
    public void BadAdapters_GiveOneLineErrors()
    {
        string dir = _dir.File("bad");
        Ok(SiroccoProcess.Run("synth-lora", "--model", _model, "--out", dir));
        string config = Path.Combine(dir, "adapter_config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"mistral\"", "\"gemma\"", StringComparison.Ordinal));
        AssertOneLineError(SiroccoProcess.Run("logits", "--model", _model, "--tokens", "[1, 415]", "--lora", dir), "adapter_config.json: model_type", "\"gemma\"");
        AssertOneLineError(SiroccoProcess.Run("run", "--model", _model, "hi", "--lora", _dir.File("none")), "no such file or directory");

        string big = _dir.File("rank16");
        Ok(SiroccoProcess.Run("synth-lora", "--model", _model, "--rank", "16", "--out", big));
        AssertOneLineError(SiroccoProcess.Run("logits", "--model", _model, "--tokens", "[1, 415]", "--lora", big), "r: expected a rank of at most 8, found 16");
        Ok(SiroccoProcess.Run("logits", "--model", _model, "--tokens", "[1, 415]", "--lora", big, "--lora-max-rank", "16"));
        AssertOneLineError(SiroccoProcess.Run("synth-lora", "--model", _model, "--targets", "lm_head", "--out", _dir.File("x")), "--targets", "lm_head");
    }

    [Fact]
    public void Bench_TimesEachAdapterAgainstTheBase()
    {
        string qkvo = _dir.File("qkvo"), all = _dir.File("all.gguf");
        Ok(SiroccoProcess.Run("synth-lora", "--model", _model, "--targets", "attn", "--out", qkvo));
        Ok(SiroccoProcess.Run("synth-lora", "--model", _model, "--targets", "all", "--format", "gguf", "--out", all));
        var r = SiroccoProcess.Run("bench", "--model", _model, "--prompt", "8", "--decode", "2", "--repetitions", "2", "--lora", qkvo, "--lora", all);
        Ok(r);
        Assert.Matches(@"pp8\s+[\d.]+", r.StdOut);
        Assert.Matches(@"pp8 qkvo\s+[\d.]+ .*× base", r.StdOut);
        Assert.Matches(@"tg2\s+[\d.]+.*of the measured ceiling", r.StdOut);
        Assert.Matches(@"tg2 qkvo\s+[\d.]+ .*× base \([+-][\d.]+% time per token\)", r.StdOut);
        Assert.Matches(@"tg2 all\s+[\d.]+ .*× base", r.StdOut);
        Assert.Matches(@"its deltas alone on one thread: [\d.]+ ms per token", r.StdOut);
    }

    private float[] Logits(params string[] extra)
    {
        var r = SiroccoProcess.Run(["logits", "--model", _model, "--tokens", "[1, 415, 2936, 9060]", "--kv-type", "f32", .. extra]);
        Ok(r);
        using var json = JsonDocument.Parse(r.StdOut);
        return [.. json.RootElement.GetProperty("logits")[0].EnumerateArray().Select(e => e.GetSingle())];
    }

    private static double MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => (double)Math.Abs(x - y)).Max();

    private static void Ok(ProcessResult r) => Assert.True(r.ExitCode == 0, r.StdErr);

    private static void AssertOneLineError(ProcessResult r, params string[] mentions)
    {
        Assert.Equal(1, r.ExitCode);
        string line = Assert.Single(r.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("sirocco ", line);
        foreach (string mention in mentions)
        {
            Assert.Contains(mention, line);
        }
    }
}
