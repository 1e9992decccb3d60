// `sirocco inspect PATH`: prints what a model file holds — GGUF header, metadata and tensors, or a safetensors
// checkpoint's tensors and config — so users can check a download or a conversion before loading it. PATH may also be
// a hub reference or alias of a model in the store (inspect never downloads).

using System.CommandLine;
using Sirocco.Engine.Formats.Gguf;
using Sirocco.Engine.Formats.SafeTensors;

namespace Sirocco.Cli.Commands;

internal static class InspectCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "A .gguf file, a .safetensors file, a Hugging Face model directory, or a model in the store (owner/repo:QUANT, alias)" };
        var tensors = new Option<bool>("--tensors") { Description = "List every tensor (default: a summary by type)" };
        var store = new StoreArguments();
        var command = new Command("inspect", "Show the metadata and tensors of a model file") { path, tensors };
        store.AddTo(command, offline: false);
        command.SetAction(parse => CliErrors.Run("inspect", () =>
        {
            string p = store.Resolver(parse).ResolveAsync(parse.GetValue(path)!, download: false, CancellationToken.None).GetAwaiter().GetResult().Path;
            bool all = parse.GetValue(tensors);
            if (p.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
            {
                PrintGguf(p, all, Console.Out);
            }
            else
            {
                PrintSafeTensors(p, all, Console.Out);
            }
            return 0;
        }));
        return command;
    }

    internal static void PrintGguf(string path, bool allTensors, TextWriter o)
    {
        using var f = GgufFile.Open(path);
        o.WriteLine($"{path}: GGUF v{f.Version}, {f.Length:N0} bytes, {f.Tensors.Count} tensors, {f.Metadata.Count} metadata keys, alignment {f.Alignment}, data at {f.DataOffset}");
        foreach (var (key, value) in f.MetadataInOrder)
        {
            o.WriteLine($"  {key} = {value}");
        }
        if (f.GetString("general.architecture") == "llama")
        {
            var c = LlamaGgufMetadata.ReadConfig(f);
            o.WriteLine($"  model: {c.LayerCount} layers, width {c.ModelDim}, feed-forward {c.HiddenDim}, {c.HeadCount}/{c.KvHeadCount} heads of {c.HeadDim}, vocab {c.VocabSize}, context {c.ContextLength}, rope theta {c.RopeTheta}");
        }
        foreach (var group in f.Tensors.GroupBy(t => t.Type).OrderBy(g => g.Key))
        {
            o.WriteLine($"  {group.Key,-6} {group.Count(),5} tensors {group.Sum(t => t.ByteCount),16:N0} bytes");
        }
        if (allTensors)
        {
            foreach (var t in f.Tensors)
            {
                o.WriteLine($"  {t.Name,-32} {t.Type,-6} {t.ShapeText,-16} {t.ByteCount,14:N0} bytes at {f.DataOffset + t.Offset}");
            }
        }
    }

    internal static void PrintSafeTensors(string path, bool allTensors, TextWriter o)
    {
        using var checkpoint = SafeTensorCheckpoint.Open(path);
        o.WriteLine($"{path}: safetensors, {checkpoint.Files.Count} file(s), {checkpoint.Tensors.Count} tensors, {checkpoint.Tensors.Sum(t => t.ByteCount):N0} bytes of data");
        string dir = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (File.Exists(Path.Combine(dir, "config.json")))
        {
            var c = HfConfig.Load(dir);
            o.WriteLine($"  config.json: {c.LayerCount} layers, width {c.ModelDim}, feed-forward {c.HiddenDim}, {c.HeadCount}/{c.KvHeadCount} heads of {c.HeadDim}, vocab {c.VocabSize}, context {c.ContextLength}, rope theta {c.RopeTheta}");
        }
        foreach (var group in checkpoint.Tensors.GroupBy(t => t.Dtype).OrderBy(g => g.Key))
        {
            o.WriteLine($"  {group.Key,-6} {group.Count(),5} tensors {group.Sum(t => t.ByteCount),16:N0} bytes");
        }
        if (allTensors)
        {
            foreach (var t in checkpoint.Tensors)
            {
                o.WriteLine($"  {t.Name,-56} {t.Describe(),-24} {t.ByteCount,14:N0} bytes in {Path.GetFileName(t.FilePath)}");
            }
        }
    }
}
