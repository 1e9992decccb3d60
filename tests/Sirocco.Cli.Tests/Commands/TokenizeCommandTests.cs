// `sirocco tokenize` through its TextReader/TextWriter core: encode, decode, JSON lines, the golden strings end to
// end, and the one-line errors (with line numbers) that bad input and a missing model produce.

using System.Text.Json;
using Sirocco.Cli.Commands;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Cli.Tests.Commands;

public class TokenizeCommandTests
{
    private static readonly Lazy<Tokenizer> s_tokenizer = new(() => TokenizerLoader.Load(TestData.TokenizerModel));

    private static string Run(string input, bool bos = false, bool decode = false, bool jsonl = false)
    {
        var output = new StringWriter { NewLine = "\n" };
        int exit = TokenizeCommand.Run(s_tokenizer.Value, new TokenizeSettings(bos, decode, jsonl), new StringReader(input), output);
        Assert.Equal(0, exit);
        return output.ToString();
    }

    [Fact]
    public void Encode_PrintsAJsonArray_AndReadsAllOfStdin()
    {
        Assert.Equal("[22557,1526]\n", Run("Hello world"));
        Assert.Equal("[1,22557,1526]\n", Run("Hello world", bos: true));
        Assert.Equal("[22557,1526,13]\n", Run("Hello world\n")); // the trailing newline is text too
        Assert.Equal("[]\n", Run(""));
    }

    [Fact]
    public void Decode_PrintsTheTextExactly()
    {
        Assert.Equal("Hello world", Run("[1, 22557, 1526, 2]", decode: true));
        Assert.Equal("\uFFFD\uFFFD", Run("[243, 162]", decode: true));
    }

    [Fact]
    public void Jsonl_OneResultPerLine()
    {
        Assert.Equal("[22557]\n[]\n[22557,1526]\n", Run("\"Hello\"\n\"\"\n\"Hello world\"\n", jsonl: true));
        Assert.Equal("\"Hello\"\n\"\"\n\"a\\nb 😀\"\n", Run("[22557]\n[]\n[264, 13, 28726, 28705, 243, 162, 155, 131]\n", decode: true, jsonl: true));
    }

    [Fact]
    public void Jsonl_Decode_EscapesOnlyWhatJsonRequires()
    {
        const string text = "say \"hi\" \\ tab\t nul\0 del\u007f 😀 日本";
        int[] ids = s_tokenizer.Value.Encode(text);
        string line = Run("[" + string.Join(',', ids) + "]\n", decode: true, jsonl: true).TrimEnd('\n');
        Assert.Equal("\"say \\\"hi\\\" \\\\ tab\\t nul\\u0000 del\\u007f 😀 日本\"", line);
        Assert.Equal(text, JsonSerializer.Deserialize<string>(line));
    }

    [Fact]
    public void Jsonl_EncodesEveryGoldenString()
    {
        var lines = File.ReadLines(TestData.Path("mistral-tokenizer/golden-dev.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        string input = string.Join('\n', lines.Select(l => l.GetProperty("text").GetRawText()));
        string[] output = Run(input, bos: true, jsonl: true).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(lines.Count, output.Length);
        for (int i = 0; i < lines.Count; i++)
        {
            Assert.Equal(lines[i].GetProperty("ids_bos").GetRawText().Replace(" ", ""), output[i]);
        }
    }

    [Theory]
    [InlineData("\"ok\"\nnot json\n", false, "line 2: expected a JSON string")]
    [InlineData("\"ok\"\n42\n", false, "line 2: expected a JSON string, found a JSON number")]
    [InlineData("\"ok\"\n\n", false, "line 2")]
    [InlineData("[1]\n[1, 32000]\n", true, "line 2: token id 32000 (element 1) is outside the vocabulary [0, 32000)")]
    [InlineData("[1]\n[-1]\n", true, "line 2: token id -1")]
    [InlineData("[1]\n[1.5]\n", true, "line 2: element 0 is not an integer token id (found 1.5)")]
    [InlineData("{\"ids\": [1]}\n", true, "line 1: expected a JSON array of token ids, found a JSON object")]
    public void BadJsonlInput_NamesTheLine(string input, bool decode, string expected)
    {
        var e = Assert.Throws<CliUsageException>(() => Run(input, decode: decode, jsonl: true));
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("[1, 99999]", "input: token id 99999")]
    [InlineData("[1,\n oops]", "input line 2")]
    [InlineData("\"text\"", "expected a JSON array of token ids, found a JSON string")]
    public void BadDecodeInput_IsAUsageError(string input, string expected)
    {
        var e = Assert.Throws<CliUsageException>(() => Run(input, decode: true));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void UsageErrors_ExitWithCodeOne()
    {
        Assert.Equal(1, CliErrors.Run("tokenize", () => TokenizeCommand.Run(s_tokenizer.Value, new TokenizeSettings(false, true, false),
            new StringReader("[oops"), TextWriter.Null)));
    }

    [Fact]
    public void MissingModel_ExitsWithCodeOne()
    {
        int exit = TokenizeCommand.Create().Parse(["--model", "/nonexistent/tokenizer.model"]).Invoke();
        Assert.Equal(1, exit);
    }
}
