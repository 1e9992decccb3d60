// The schema validator on its own, keyword by keyword, with the exact messages clients see.

using System.Text.Json;
using System.Text.Json.Nodes;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Tests.Protocol;

public sealed class JsonSchemaValidatorTests
{
    private static List<string> Errors(string schema, string value)
    {
        using var document = JsonDocument.Parse(value);
        return [.. JsonSchemaValidator.Validate(document.RootElement, JsonNode.Parse(schema)!).Select(e => e.ToString())];
    }

    [Theory]
    [InlineData("""{"type":"string"}""", "\"x\"")]
    [InlineData("""{"type":"number"}""", "1.5")]
    [InlineData("""{"type":"integer"}""", "3")]
    [InlineData("""{"type":"integer"}""", "3.0")]
    [InlineData("""{"type":"integer"}""", "1e3")]
    [InlineData("""{"type":"integer"}""", "-0")]
    [InlineData("""{"type":"boolean"}""", "false")]
    [InlineData("""{"type":"null"}""", "null")]
    [InlineData("""{"type":["string","array"]}""", "[]")]
    [InlineData("""{"type":"object"}""", "{}")]
    [InlineData("""{}""", "{\"anything\": [1, 2]}")]
    [InlineData("""true""", "1")]
    public void Valid_HasNoErrors(string schema, string value)
    {
        Assert.Empty(Errors(schema, value));
    }

    [Theory]
    [InlineData("""{"type":"string"}""", "[1]", "/: expected a string, found an array")]
    [InlineData("""{"type":"string"}""", "[]", "/: expected a string, found an empty array")]
    [InlineData("""{"type":"integer"}""", "1.5", "/: expected an integer, found 1.5")]
    [InlineData("""{"type":"number"}""", "\"1\"", "/: expected a number, found the string \"1\"")]
    [InlineData("""{"type":"boolean"}""", "null", "/: expected a boolean, found null")]
    [InlineData("""{"type":"object"}""", "true", "/: expected an object, found true")]
    [InlineData("""{"type":["string","integer"]}""", "{}", "/: expected a string or an integer, found an object")]
    [InlineData("""false""", "1", "/: no value is allowed here, found 1")]
    public void WrongType_NamesExpectedAndFound(string schema, string value, string expected)
    {
        Assert.Equal([expected], Errors(schema, value));
    }

    [Theory]
    [InlineData("7", "/: 7 is above the maximum 5")]
    [InlineData("5.0001", "/: 5.0001 is above the maximum 5")]
    [InlineData("-0.5", "/: -0.5 is below the minimum 0")]
    [InlineData("1e400", "/: 1e400 is above the maximum 5")]
    public void MinimumMaximum(string value, string expected)
    {
        Assert.Equal([expected], Errors("""{"type":"number","minimum":0,"maximum":5}""", value));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("5")]
    [InlineData("2.5")]
    public void MinimumMaximum_AreInclusive(string value)
    {
        Assert.Empty(Errors("""{"type":"number","minimum":0,"maximum":5}""", value));
    }

    [Fact]
    public void ExclusiveBounds()
    {
        Assert.Equal(["/: 0 must be greater than 0"], Errors("""{"exclusiveMinimum":0}""", "0"));
        Assert.Equal(["/: 1 must be less than 1"], Errors("""{"exclusiveMaximum":1}""", "1"));
    }

    [Fact]
    public void LargeIntegerBounds_AreExact()
    {
        const string schema = """{"type":"integer","minimum":1,"maximum":9999999999}""";
        Assert.Empty(Errors(schema, "9999999999"));
        Assert.Equal(["/: 10000000000 is above the maximum 9999999999"], Errors(schema, "10000000000"));
    }

    [Fact]
    public void Lengths_CountCodePoints()
    {
        const string schema = """{"type":"string","minLength":1,"maxLength":3}""";
        Assert.Empty(Errors(schema, "\"😀😀😀\"")); // 6 UTF-16 units, 3 code points
        Assert.Equal(["/: a string of 4 characters is longer than the maximum 3 characters"], Errors(schema, "\"😀😀😀😀\""));
        Assert.Equal(["/: the empty string is too short; the minimum length is 1 character"], Errors(schema, "\"\""));
        Assert.Equal(["/: \"ab\" has 2 characters, fewer than the minimum 5"], Errors("""{"minLength":5}""", "\"ab\""));
    }

    [Fact]
    public void EnumAndConst()
    {
        Assert.Equal(["/: the string \"c\" is not allowed; expected one of \"a\",\"b\""],
            Errors("""{"enum":["a","b"]}""", "\"c\"").Select(s => s.Replace(", ", ",")).ToList());
        Assert.Empty(Errors("""{"enum":[1,"b"]}""", "1.0"));
        Assert.Equal(["/: expected \"x\", found the string \"y\""], Errors("""{"const":"x"}""", "\"y\""));
        Assert.Empty(Errors("""{"const":null}""", "null"));
    }

    [Fact]
    public void Objects_RequiredPropertiesAdditional_WithNestedPaths()
    {
        const string schema = """
            {"type":"object","required":["a"],"properties":{"a":{"type":"array","items":{"type":"object",
             "properties":{"b":{"type":"string"}},"required":["b"]}}},"additionalProperties":false}
            """;
        Assert.Empty(Errors(schema, """{"a":[{"b":"x","extra":1}]}"""));
        Assert.Equal(["/: the required property `a` is missing"], Errors(schema, "{}"));
        Assert.Equal(["/a/1/b: expected a string, found 2", "/a/2: the required property `b` is missing"],
            Errors(schema, """{"a":[{"b":"x"},{"b":2},{}]}"""));
        Assert.Equal(["/z: unknown property `z`; the allowed properties are a"], Errors(schema, """{"a":[],"z":0}"""));
        Assert.Equal(["/x: expected a number, found the string \"s\""],
            Errors("""{"additionalProperties":{"type":"number"}}""", """{"x":"s","y":1}"""));
    }

    [Fact]
    public void Paths_EscapeSlashAndTilde()
    {
        Assert.Equal(["/a~1b/c~0d: expected a number, found true"],
            Errors("""{"properties":{"a/b":{"properties":{"c~d":{"type":"number"}}}}}""", """{"a/b":{"c~d":true}}"""));
    }

    [Fact]
    public void Arrays_MinMaxItems()
    {
        Assert.Equal(["/: an array of 0 items is shorter than the minimum 1"], Errors("""{"minItems":1}""", "[]"));
        Assert.Equal(["/: an array of 2 items is longer than the maximum 1"], Errors("""{"maxItems":1}""", "[1,2]"));
    }

    [Fact]
    public void OneOf_ByRequired_SaysWhichToSend()
    {
        const string schema = """
            {"type":"object","oneOf":[
              {"properties":{"prompt":{"type":"string"},"t":{"type":"number","maximum":1}},"required":["prompt"]},
              {"properties":{"messages":{"type":"array"},"t":{"type":"number","maximum":1}},"required":["messages"]}]}
            """;
        Assert.Empty(Errors(schema, """{"prompt":"x"}"""));
        Assert.Equal(["/: one of `prompt` or `messages` is required"], Errors(schema, "{}"));
        Assert.Equal(["/: send either `prompt` or `messages`, not both"], Errors(schema, """{"prompt":"x","messages":[]}"""));
        Assert.Equal(["/t: 2 is above the maximum 1"], Errors(schema, """{"messages":[],"t":2}"""));
        Assert.Equal(["/messages: expected an array, found the string \"m\""], Errors(schema, """{"messages":"m"}"""));
    }

    [Fact]
    public void OneOfAnyOf_ByType_ReportsTheVariantOfTheValuesType()
    {
        const string schema = """{"anyOf":[{"type":"array","items":{"type":"number"}},{"type":"string","maxLength":2}]}""";
        Assert.Empty(Errors(schema, "[1]"));
        Assert.Empty(Errors(schema, "\"ab\""));
        Assert.Equal(["/1: expected a number, found the string \"x\""], Errors(schema, """[1,"x"]"""));
        Assert.Equal(["/: a string of 3 characters is longer than the maximum 2 characters"], Errors(schema, "\"abc\""));
        Assert.Equal(["/: expected an array or a string, found 5"], Errors(schema, "5"));
        Assert.Equal(["/: 1 matches 2 of the allowed forms; it must match exactly one"], Errors("""{"oneOf":[{"type":"number"},{"type":"integer"}]}""", "1"));
    }

    [Fact]
    public void LongValues_AreCut()
    {
        string value = "\"" + new string('x', 100) + "\"";
        var error = Assert.Single(Errors("""{"type":"number"}""", value));
        Assert.Equal("/: expected a number, found the string \"" + new string('x', 40) + "…\" (100 characters)", error);
    }
}
