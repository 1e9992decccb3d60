// Locates the repository's testdata/ folder from the test binary's directory, so tests run from any working directory.

namespace Sirocco.Cli.Tests;

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
