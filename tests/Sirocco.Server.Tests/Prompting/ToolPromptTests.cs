// Tool calls found in generated text: the shapes accepted, what is left as plain text, and the tool schema's edges.

using System.Text.Json.Nodes;
using Sirocco.Server.Prompting;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Tests.Prompting;

public sealed class ToolPromptTests
{
    private static readonly ToolDefinition[] s_tools =
    [
        new("getWeather", "Weather", JsonNode.Parse("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""")!.AsObject()),
        new("getTime", null, null),
    ];

    private static string Calls(string text) =>
        new JsonArray([.. ToolPrompt.ParseToolCalls(text, s_tools)]).ToJsonString();

    [Theory]
    [InlineData("""{"function": {"_name": "getWeather", "city": "London"}}""")]                      // TGI grammar output
    [InlineData("""{"name": "getWeather", "arguments": {"city": "London"}}""")]                      // Workers AI form
    [InlineData("""{"name": "getWeather", "parameters": {"city": "London"}}""")]                     // older provider form
    [InlineData("""{"name": "getWeather", "arguments": "{\"city\": \"London\"}"}""")]               // arguments as a string
    [InlineData("""{"type": "function", "function": {"name": "getWeather", "arguments": {"city": "London"}}}""")] // OpenAI form
    [InlineData("""Sure! Here is the call: {"function": {"_name": "getWeather", "city": "London"}} Hope it helps.""")]
    [InlineData("```json\n{\"name\": \"getWeather\", \"arguments\": {\"city\": \"London\"}}\n```")]
    [InlineData("""{"city": "London"} {"function": {"_name": "getWeather", "city": "London"}}""")] // first object is no call
    public void OneCall_InAnyAcceptedShape(string text)
    {
        Assert.Equal("""[{"name":"getWeather","arguments":{"city":"London"}}]""", Calls(text));
    }

    [Fact]
    public void SeveralCalls_InAnArray()
    {
        Assert.Equal("""[{"name":"getWeather","arguments":{"city":"Paris"}},{"name":"getTime","arguments":{}}]""",
            Calls("""[{"name": "getWeather", "arguments": {"city": "Paris"}}, {"name": "getTime"}]"""));
    }

    [Theory]
    [InlineData("The weather in London is mild.")]
    [InlineData("""{"function": {"_name": "notify_error", "error": "Which city?"}}""")]
    [InlineData("""{"name": "launchRockets", "arguments": {}}""")]
    [InlineData("""{"name": "getWeather", "arguments": 5}""")]
    [InlineData("""{"name": "getWeather", "arguments": "not json"}""")]
    [InlineData("""{"function": {"_name": "getWeather", "city": "London" """)]
    [InlineData("""[{"name": "getWeather"}, {"name": "unknown"}]""")]
    [InlineData("[]")]
    [InlineData("")]
    public void NoCall_LeavesTheTextAsTheAnswer(string text)
    {
        Assert.Empty(ToolPrompt.ParseToolCalls(text, s_tools));
    }

    [Fact]
    public void NoTools_NoCalls()
    {
        Assert.Empty(ToolPrompt.ParseToolCalls("""{"name": "getWeather"}""", []));
    }

    [Fact]
    public void Schema_KeepsTheUsersNotifyError_AndDoesNotChangeTheTool()
    {
        var tools = new[] { new ToolDefinition("notify_error", "mine", null) };
        var schema = ToolPrompt.Schema(tools);
        Assert.Equal("mine", schema["$functions"]!["notify_error"]!["description"]!.GetValue<string>());
        Assert.Single(schema["properties"]!["function"]!["anyOf"]!.AsArray());

        ToolPrompt.Schema(s_tools);
        Assert.Null(s_tools[0].Parameters!["properties"]!["_name"]); // the definition's parameters are not modified
        Assert.Null(s_tools[0].Parameters!["description"]);
    }
}
