// What a user may pass as a model: a local path (a GGUF file or a Hugging Face directory), a Hugging Face Hub reference
// (`owner/repo`, `owner/repo:Q4_K_M`, `owner/repo:file.gguf`, `owner/repo@revision…`) or a short alias. Parsing is
// pure (no network); ModelResolver turns a reference into a path on disk.

using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace Sirocco.Cli.Models;

/// <summary>A parsed model argument: <see cref="LocalModelReference"/> or <see cref="HubModelReference"/>.</summary>
internal abstract record ModelReference
{
    /// <summary>Parses a model argument.</summary>
    /// <remarks>A path that exists always wins, so a local directory named like a repository is used as is. Otherwise
    /// an alias (optionally with <c>:QUANT</c> to pick another quant of its repository), then a hub reference; an
    /// optional <c>hf.co/</c> or <c>huggingface.co/</c> prefix forces the hub reading. Anything else is a local path
    /// that does not exist, which the loaders report with its name.</remarks>
    /// <exception cref="ModelStoreException">The text looks like a hub reference but its revision or selector is malformed.</exception>
    public static ModelReference Parse(string text, ModelAliases aliases)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(aliases);
        string trimmed = text.Trim();
        if (trimmed.Length == 0)
        {
            throw new ModelStoreException("the model argument is empty: give a file, a directory, owner/repo[:QUANT] or an alias such as " + ModelAliases.DefaultName);
        }
        if (File.Exists(trimmed) || Directory.Exists(trimmed))
        {
            return new LocalModelReference(trimmed);
        }
        if (trimmed.StartsWith("~/", StringComparison.Ordinal))
        {
            return new LocalModelReference(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), trimmed[2..]));
        }
        foreach (string prefix in (string[])["hf.co/", "huggingface.co/"])
        {
            if (trimmed.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                return HubModelReference.TryParse(trimmed[prefix.Length..], out var forced)
                    ? forced
                    : throw new ModelStoreException($"{trimmed}: not a Hugging Face reference; write {prefix}owner/repo[@revision][:QUANT or :file.gguf]");
            }
        }
        int colon = trimmed.LastIndexOf(':');
        string name = colon < 0 ? trimmed : trimmed[..colon];
        if (aliases.Find(name) is { } alias)
        {
            return colon < 0 ? alias with { Alias = name } : alias with { Selector = ModelSelector.Parse(trimmed[(colon + 1)..], trimmed), Alias = trimmed };
        }
        return HubModelReference.TryParse(trimmed, out var hub) ? hub : new LocalModelReference(trimmed);
    }
}

/// <summary>A file or directory on this machine, used as given.</summary>
internal sealed record LocalModelReference(string Path) : ModelReference
{
    public override string ToString() => Path;
}

/// <summary>What to take from a repository: nothing named (the safetensors checkpoint, or the repository's only GGUF
/// file), the GGUF file of a quantization, or one file by name.</summary>
internal sealed record ModelSelector(ModelSelectorKind Kind, string? Value)
{
    public static ModelSelector Default { get; } = new(ModelSelectorKind.Default, null);

    private static readonly Regex s_quant = new("^[A-Za-z0-9_]+$", RegexOptions.CultureInvariant);

    /// <summary>Parses what follows the colon of <c>owner/repo:…</c>: a <c>.gguf</c> file path or a quant tag.</summary>
    /// <exception cref="ModelStoreException">Neither.</exception>
    public static ModelSelector Parse(string text, string reference)
    {
        if (text.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) && RepoPaths.IsSafe(text))
        {
            return new(ModelSelectorKind.File, text);
        }
        if (s_quant.IsMatch(text))
        {
            return new(ModelSelectorKind.Quant, text.ToUpperInvariant());
        }
        throw new ModelStoreException($"{reference}: ':{text}' is neither a quantization (such as Q4_K_M) nor a .gguf file name in the repository");
    }

    /// <summary>A file-name-safe key naming this selector in the store (the manifest's name).</summary>
    public string Key => Kind switch
    {
        ModelSelectorKind.Quant => "quant-" + Value!.ToLowerInvariant(),
        ModelSelectorKind.File => "file-" + Value!.Replace('/', '~'),
        _ => "default",
    };

    public override string ToString() => Kind == ModelSelectorKind.Default ? "" : ":" + Value;
}

internal enum ModelSelectorKind
{
    Default,
    Quant,
    File,
}

/// <summary>A model on a Hugging Face Hub (or a mirror at HF_ENDPOINT): repository, revision and what to take.</summary>
/// <param name="Owner">The user or organisation, as typed.</param>
/// <param name="Name">The repository name, as typed.</param>
/// <param name="Revision">A branch, tag or commit; "main" unless given with <c>@</c>.</param>
/// <param name="Alias">The alias text this reference was reached through (with its <c>:QUANT</c>, if any), for
/// messages; null when the reference was typed directly.</param>
internal sealed record HubModelReference(string Owner, string Name, string Revision, ModelSelector Selector, string? Alias = null) : ModelReference
{
    public const string DefaultRevision = "main";

    // Hub repository ids: letters, digits, '-', '_', '.'; not starting with '.' or '-'; no "--" or "..".
    private static readonly Regex s_reference = new(
        @"^(?<owner>[A-Za-z0-9][A-Za-z0-9_.-]{0,95})/(?<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,95})(@(?<revision>[A-Za-z0-9_.\-/]+))?(:(?<selector>.+))?$",
        RegexOptions.CultureInvariant);

    /// <summary>"owner/name", as the hub's URLs spell it.</summary>
    public string Repo => $"{Owner}/{Name}";

    /// <summary>Parses <c>owner/repo[@revision][:selector]</c>; false for anything that reads as a path instead
    /// (a name ending in a model file extension, "..", more than one slash before any @ or colon).</summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out HubModelReference? reference)
    {
        reference = null;
        Match m = s_reference.Match(text);
        if (!m.Success)
        {
            return false;
        }
        string owner = m.Groups["owner"].Value, name = m.Groups["name"].Value;
        foreach (string part in (string[])[owner, name])
        {
            if (part.Contains("..", StringComparison.Ordinal) || part.Contains("--", StringComparison.Ordinal) || part.EndsWith('.') || part.EndsWith('-'))
            {
                return false;
            }
        }
        // "models/tiny.gguf" is a path that does not exist, not a repository called tiny.gguf.
        foreach (string extension in (string[])[".gguf", ".safetensors", ".json", ".bin", ".model"])
        {
            if (name.EndsWith(extension, StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }
        }
        string revision = m.Groups["revision"].Success ? m.Groups["revision"].Value : DefaultRevision;
        if (!RepoPaths.IsSafe(revision) || revision.Contains("..", StringComparison.Ordinal))
        {
            throw new ModelStoreException($"{text}: '@{revision}' is not a revision (a branch, tag or commit id)");
        }
        ModelSelector selector = m.Groups["selector"].Success ? ModelSelector.Parse(m.Groups["selector"].Value, text) : ModelSelector.Default;
        reference = new HubModelReference(owner, name, revision, selector);
        return true;
    }

    /// <summary>The reference as a user types it: <c>owner/repo[@revision][:selector]</c>.</summary>
    public override string ToString() =>
        Repo + (Revision == DefaultRevision ? "" : "@" + Revision) + Selector;

    /// <summary>For messages: "alias (owner/repo:QUANT)" when reached through an alias, else the reference.</summary>
    public string Display => Alias is null ? ToString() : $"{Alias} ({this})";

    /// <summary>True when both name the same model (repository ids are case-insensitive on the hub).</summary>
    public bool SameModel(HubModelReference other) =>
        string.Equals(Repo, other.Repo, StringComparison.OrdinalIgnoreCase) && Revision == other.Revision && Selector.Key == other.Selector.Key;
}

/// <summary>Checks on repository-relative paths and revisions, which become parts of local paths and URLs.</summary>
internal static class RepoPaths
{
    /// <summary>True for a relative path of plain segments: no empty, "." or ".." segment, no backslash, colon or
    /// control character. Paths from the hub's file list pass this before anything is written under the store.</summary>
    public static bool IsSafe(string path)
    {
        if (string.IsNullOrEmpty(path) || path.Length > 1024 || path.StartsWith('/'))
        {
            return false;
        }
        foreach (string segment in path.Split('/'))
        {
            if (segment is "" or "." or ".." || segment.Any(c => c is '\\' or ':' || char.IsControl(c)))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Percent-encodes each segment of a repository path for a URL, keeping the slashes.</summary>
    public static string Escape(string path) => string.Join('/', path.Split('/').Select(Uri.EscapeDataString));
}
