// Shared by the test projects (linked into each): locates the repository's testdata/ folder from the test binary's
// directory, so tests run from any working directory, and gives tests temporary directories.

namespace Sirocco.Tests;

internal static class TestData
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    /// <summary>Absolute path of <paramref name="relative"/> under the repository's testdata/ folder.</summary>
    public static string Path(string relative) => System.IO.Path.Combine(s_root.Value, relative);

    /// <summary>The real Mistral v1 tokenizer.model (see testdata/mistral-tokenizer/README.md).</summary>
    public static string TokenizerModel => Path("mistral-tokenizer/tokenizer.model");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = System.IO.Path.Combine(dir.FullName, "testdata");
            if (Directory.Exists(System.IO.Path.Combine(candidate, "mistral-tokenizer")))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException($"testdata/ not found above {AppContext.BaseDirectory}");
    }
}

/// <summary>A temporary directory deleted when disposed.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        FullPath = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sirocco-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(FullPath);
    }

    public string FullPath { get; }

    public string File(string name) => System.IO.Path.Combine(FullPath, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(FullPath, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a file still mapped by a finalizer-pending reader can block deletion on some systems.
        }
    }
}
