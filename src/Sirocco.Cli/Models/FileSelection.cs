// Which files of a repository make the model a reference names: the GGUF file of a quantization (`repo:Q4_K_M`), one
// named file (`repo:file.gguf`), or with nothing named the safetensors checkpoint (config.json, tokenizer, the
// *.safetensors shards and their index; never the .bin/.pt/.pth/consolidated.* duplicates) or the repository's only
// GGUF file. Pure: a file list in, a selection or a one-line error listing what the repository has out.

using System.Text.RegularExpressions;

namespace Sirocco.Cli.Models;

/// <summary>What a model is made of on disk.</summary>
internal enum ModelKind
{
    Gguf,
    SafeTensors,
}

/// <summary>The files to download for a reference.</summary>
/// <param name="LoadPath">What the loaders are given, relative to the download directory: the GGUF file, or "." for a
/// safetensors checkpoint (the directory).</param>
internal sealed record FileSelection(ModelKind Kind, IReadOnlyList<HubFileEntry> Files, string LoadPath)
{
    /// <summary>Small files a safetensors checkpoint takes along when the repository has them.</summary>
    private static readonly string[] s_checkpointExtras =
        ["tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "model.safetensors.index.json"];

    /// <summary>Picks the files <paramref name="reference"/> names among <paramref name="files"/>.</summary>
    /// <exception cref="ModelStoreException">Nothing (or more than one file) matches; the message lists what the
    /// repository has.</exception>
    public static FileSelection Select(HubModelReference reference, IReadOnlyList<HubFileEntry> files)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(files);
        return reference.Selector.Kind switch
        {
            ModelSelectorKind.File => SelectFile(reference, files),
            ModelSelectorKind.Quant => SelectQuant(reference, files),
            _ => SelectDefault(reference, files),
        };
    }

    private static FileSelection SelectFile(HubModelReference reference, IReadOnlyList<HubFileEntry> files)
    {
        string name = reference.Selector.Value!;
        HubFileEntry file = files.FirstOrDefault(f => f.Path == name)
            ?? files.SingleOrDefault(f => string.Equals(f.Path, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ModelStoreException($"{reference.Repo} has no file {name}; its GGUF files are {GgufList(files)}");
        return new FileSelection(ModelKind.Gguf, [file], file.Path);
    }

    /// <summary>The .gguf file whose name holds the quant tag as a whole word: case-insensitive, not preceded by a
    /// letter or digit and not followed by a letter, digit or '_' (so Q4_K never matches Q4_K_M, and Q4_K_M never
    /// matches Q4_K_M_L or IQ4_K_M). Several matches: the one named exactly <c>…[.-]QUANT.gguf</c> wins.</summary>
    private static FileSelection SelectQuant(HubModelReference reference, IReadOnlyList<HubFileEntry> files)
    {
        string quant = reference.Selector.Value!;
        var word = new Regex($"(?<![A-Za-z0-9]){Regex.Escape(quant)}(?![A-Za-z0-9_])", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        List<HubFileEntry> matches = [.. Ggufs(files).Where(f => word.IsMatch(FileName(f.Path)))];
        if (matches.Count > 1)
        {
            var exact = new Regex($"[.\\-_]{Regex.Escape(quant)}\\.gguf$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
            List<HubFileEntry> preferred = [.. matches.Where(f => exact.IsMatch(FileName(f.Path)))];
            if (preferred.Count == 1)
            {
                matches = preferred;
            }
        }
        return matches.Count switch
        {
            1 => new FileSelection(ModelKind.Gguf, matches, matches[0].Path),
            0 => throw new ModelStoreException(Ggufs(files).Any()
                ? $"{reference.Repo} has no GGUF file for {quant}; it has {QuantList(files)} (for example {reference.Repo}:{Preferred(files)})"
                : $"{reference.Repo} has no GGUF files" + (HasCheckpoint(files) ? $"; it holds a safetensors checkpoint: use {reference.Repo} without :{quant}" : "")),
            _ => throw new ModelStoreException(
                $"{reference.Repo} has several GGUF files for {quant} ({string.Join(", ", matches.Select(f => f.Path))}); name one as {reference.Repo}:FILE.gguf" +
                (matches.Any(f => s_split.IsMatch(f.Path)) ? " (split GGUF files are not supported)" : "")),
        };
    }

    private static FileSelection SelectDefault(HubModelReference reference, IReadOnlyList<HubFileEntry> files)
    {
        if (HasCheckpoint(files))
        {
            return SelectCheckpoint(reference, files);
        }
        List<HubFileEntry> ggufs = [.. Ggufs(files)];
        return ggufs.Count switch
        {
            1 => new FileSelection(ModelKind.Gguf, ggufs, ggufs[0].Path),
            0 => throw new ModelStoreException(
                $"{reference.Repo} holds neither a safetensors checkpoint nor GGUF files (it has {Sample(files)}); Sirocco loads GGUF files and safetensors checkpoints"),
            _ => throw new ModelStoreException(
                $"{reference.Repo} has several GGUF files; name a quantization: {QuantList(files)} (for example {reference.Repo}:{Preferred(files)})"),
        };
    }

    /// <summary>config.json, the top-level *.safetensors weights (not consolidated.*, Mistral's single-file copy of
    /// the same weights), their index, and the tokenizer and small config files. Never .bin/.pt/.pth weights.</summary>
    private static FileSelection SelectCheckpoint(HubModelReference reference, IReadOnlyList<HubFileEntry> files)
    {
        var topLevel = files.Where(f => !f.Path.Contains('/', StringComparison.Ordinal)).ToList();
        var selected = new List<HubFileEntry>();
        if (topLevel.FirstOrDefault(f => f.Path == "config.json") is not { } config)
        {
            throw new ModelStoreException($"{reference.Repo} has safetensors files but no config.json at its top level; Sirocco needs the Hugging Face layout (config.json, tokenizer, *.safetensors)");
        }
        selected.Add(config);
        selected.AddRange(s_checkpointExtras.Select(name => topLevel.FirstOrDefault(f => f.Path == name)).OfType<HubFileEntry>());
        if (!selected.Any(f => f.Path is "tokenizer.model" or "tokenizer.json"))
        {
            throw new ModelStoreException($"{reference.Repo} has no tokenizer.model or tokenizer.json at its top level, so its text cannot be tokenized");
        }
        selected.AddRange(topLevel.Where(IsCheckpointWeights).OrderBy(f => f.Path, StringComparer.Ordinal));
        return new FileSelection(ModelKind.SafeTensors, selected, ".");
    }

    private static bool HasCheckpoint(IReadOnlyList<HubFileEntry> files) =>
        files.Any(f => !f.Path.Contains('/', StringComparison.Ordinal) && IsCheckpointWeights(f));

    private static bool IsCheckpointWeights(HubFileEntry f) =>
        f.Path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) && !f.Path.StartsWith("consolidated", StringComparison.OrdinalIgnoreCase);

    private static IEnumerable<HubFileEntry> Ggufs(IReadOnlyList<HubFileEntry> files) =>
        files.Where(f => f.Path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase));

    private static string FileName(string path) => path[(path.LastIndexOf('/') + 1)..];

    /// <summary>The quant tags the GGUF file names end with ("x.Q4_K_M.gguf" → Q4_K_M), in order, else the names.</summary>
    private static IEnumerable<string> QuantTags(IReadOnlyList<HubFileEntry> files) =>
        Ggufs(files).Select(f => s_tag.Match(FileName(f.Path)) is { Success: true } m ? m.Groups["tag"].Value.ToUpperInvariant() : f.Path)
            .Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.Ordinal);

    private static string QuantList(IReadOnlyList<HubFileEntry> files) => string.Join(", ", QuantTags(files));

    private static string GgufList(IReadOnlyList<HubFileEntry> files) =>
        Ggufs(files).Any() ? string.Join(", ", Ggufs(files).Select(f => f.Path)) : "none";

    private static string Preferred(IReadOnlyList<HubFileEntry> files) =>
        QuantTags(files).FirstOrDefault(t => t == "Q4_K_M") ?? QuantTags(files).First();

    private static string Sample(IReadOnlyList<HubFileEntry> files) =>
        files.Count == 0 ? "no files" : string.Join(", ", files.Take(8).Select(f => f.Path)) + (files.Count > 8 ? ", …" : "");

    private static readonly Regex s_tag = new(@"[.\-_](?<tag>(?:I?Q\d[A-Za-z0-9_]*|F16|F32|BF16))\.gguf$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
    private static readonly Regex s_split = new(@"-\d{5}-of-\d{5}\.gguf$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
}
