// Tiny synthetic models (SyntheticModelWriter: Mistral's architecture, one layer, the real tokenizer) as the files a
// fake hub repository serves: a Q4_K_M GGUF and a Hugging Face BF16 checkpoint directory. Written once per test run.

using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Model;
using Sirocco.Engine.Synthesis;

namespace Sirocco.Cli.Tests.Models;

internal static class TinyHubModels
{
    private static readonly ModelConfig s_config = SyntheticPresets.Tiny with { LayerCount = 1 };

    private static readonly Lazy<byte[]> s_gguf = new(() =>
    {
        string path = Path.Combine(Path.GetTempPath(), $"sirocco-hub-tiny-{Guid.NewGuid():N}.gguf");
        try
        {
            SyntheticModelWriter.WriteGguf(path, s_config, ModelFileType.Q4_K_M, SyntheticTokenizers.Mistral(), seed: 3);
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    });

    private static readonly Lazy<IReadOnlyDictionary<string, byte[]>> s_checkpoint = new(() =>
    {
        string dir = Path.Combine(Path.GetTempPath(), $"sirocco-hub-tiny-hf-{Guid.NewGuid():N}");
        try
        {
            SyntheticModelWriter.WriteHuggingFace(dir, s_config, SafeTensorDtype.BF16, SyntheticTokenizers.Mistral(), seed: 3);
            return Directory.EnumerateFiles(dir).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    });

    /// <summary>A one-layer Q4_K_M GGUF (about 9 MB).</summary>
    public static byte[] Gguf => s_gguf.Value;

    /// <summary>The files of a one-layer BF16 Hugging Face checkpoint, by name.</summary>
    public static IReadOnlyDictionary<string, byte[]> Checkpoint => s_checkpoint.Value;

    /// <summary>A GGUF repository in TheBloke's layout: the tiny model as Q4_K_M, decoys whose names contain the tag
    /// without being it, another quant, and small non-LFS files.</summary>
    public static FakeRepo AddGgufRepo(FakeHub hub, string id = "test-org/Tiny-GGUF", FakeAccess access = FakeAccess.Public) =>
        hub.AddRepo(id, access,
            new FakeFile("tiny.Q4_K_M.gguf", Gguf, Lfs: true),
            new FakeFile("tiny.Q4_K_M_L.gguf", [1, 2, 3], Lfs: true),
            new FakeFile("tiny.IQ4_K_M.gguf", [4, 5, 6], Lfs: true),
            new FakeFile("tiny.Q8_0.gguf", [7, 8, 9], Lfs: true),
            new FakeFile("README.md", "# tiny\n"u8.ToArray(), Lfs: false),
            new FakeFile(".gitattributes", "*.gguf filter=lfs diff=lfs merge=lfs -text\n"u8.ToArray(), Lfs: false));

    /// <summary>A safetensors repository in mistralai's layout, plus the duplicates a pull must skip.</summary>
    public static FakeRepo AddCheckpointRepo(FakeHub hub, string id = "test-org/Tiny-HF")
    {
        var files = Checkpoint.Select(f => new FakeFile(f.Key, f.Value, Lfs: f.Key.EndsWith(".safetensors", StringComparison.Ordinal) || f.Key == "tokenizer.model")).ToList();
        files.Add(new FakeFile("pytorch_model.bin", new byte[1000], Lfs: true));
        files.Add(new FakeFile("consolidated.safetensors", new byte[1000], Lfs: true));
        files.Add(new FakeFile("original/params.json", "{}"u8.ToArray(), Lfs: false));
        files.Add(new FakeFile("README.md", "# tiny hf\n"u8.ToArray(), Lfs: false));
        return hub.AddRepo(id, FakeAccess.Public, [.. files]);
    }
}
