// Tokens bound to accounts: with tokens configured every API route needs `Authorization: Bearer` and an account the
// token owns (401, code 10000 otherwise); /healthz stays open. Without tokens the server refuses non-loopback
// addresses unless told otherwise.

using System.Net;
using Sirocco.Server.Auth;

namespace Sirocco.Server.Tests.Http;

public sealed class AuthTests : IAsyncLifetime
{
    private const string Token = "0123456789abcdef-alice";
    private const string OtherToken = "0123456789abcdef-bob00";
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(new ServerOptions
    {
        Tokens = [new ApiToken("alice", Token), new ApiToken("bob", OtherToken)],
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Theory]
    [InlineData(null)]
    [InlineData("not-a-configured-token")]
    [InlineData(OtherToken)]
    public async Task Run_WithoutTheAccountsToken_Is401With10000(string? bearer)
    {
        ApiAnswer answer = await Api.PostAsync(_server.Client, Api.RunPath(Api.Hf, account: "alice"), """{"prompt":"a","max_tokens":1}""", bearer: bearer);

        Assert.Equal(HttpStatusCode.Unauthorized, answer.Status);
        Assert.Equal(10000, answer.ErrorCode);
        Assert.Equal("Authentication error", answer.ErrorMessage);
    }

    [Fact]
    public async Task Run_WithTheAccountsToken_Works()
    {
        ApiAnswer answer = await Api.PostAsync(_server.Client, Api.RunPath(Api.Hf, account: "alice"), """{"prompt":"a","max_tokens":1}""", bearer: Token);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
    }

    [Fact]
    public async Task CatalogAndOpenAiRoutes_NeedATokenToo()
    {
        Assert.Equal(HttpStatusCode.Unauthorized, (await Api.GetAsync(_server.Client, "/client/v4/accounts/alice/ai/models/search")).Status);
        Assert.Equal(HttpStatusCode.OK, (await Api.GetAsync(_server.Client, "/client/v4/accounts/alice/ai/models/search", Token)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Api.GetAsync(_server.Client, "/v1/models")).Status);
        Assert.Equal(HttpStatusCode.OK, (await Api.GetAsync(_server.Client, "/v1/models", OtherToken)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Api.GetAsync(_server.Client, "/accounts/bob/ai/v1/models", Token)).Status);
    }

    [Fact]
    public async Task Healthz_StaysOpen()
    {
        Assert.Equal(HttpStatusCode.OK, (await Api.GetAsync(_server.Client, "/healthz")).Status);
    }

    [Fact]
    public void NonLoopbackWithoutTokens_IsRefusedUnlessAllowed()
    {
        using var host = new Hosting.ModelHost(new Engine.Model.LlamaModel(Engine.Model.WeightLoader.Load(TestServer.ModelPath), 1), TestServer.Tokenizer, new ServerOptions(), "tiny");

        var refused = Assert.Throws<ArgumentException>(() => SiroccoServer.Build(new ServerOptions { Host = "0.0.0.0", Port = 0 }, host));
        Assert.Contains("without API tokens", refused.Message, StringComparison.Ordinal);
        Assert.NotNull(SiroccoServer.Build(new ServerOptions { Host = "0.0.0.0", Port = 0, AllowUnauthenticatedRemote = true }, host));
        Assert.NotNull(SiroccoServer.Build(new ServerOptions { Host = "0.0.0.0", Port = 0, Tokens = [new ApiToken("a", Token)] }, host));
    }

    [Fact]
    public void TokenFile_ParsesPairsAndRejectsShortTokens()
    {
        IReadOnlyList<ApiToken> tokens = ApiTokens.Parse("# comment\nalice 0123456789abcdefXYZ\n\n bob\t0123456789abcdef0000 \n", "tokens.txt");
        Assert.Equal([new ApiToken("alice", "0123456789abcdefXYZ"), new ApiToken("bob", "0123456789abcdef0000")], tokens);
        Assert.Equal(2, ApiTokens.Parse("a 0123456789abcdefXYZ, b 0123456789abcdef0000", "env", extraSeparators: true).Count);
        var error = Assert.Throws<FormatException>(() => ApiTokens.Parse("alice short", "tokens.txt"));
        Assert.Contains("line 1", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("short", error.Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => ApiTokens.Parse("alice", "tokens.txt"));
    }
}
