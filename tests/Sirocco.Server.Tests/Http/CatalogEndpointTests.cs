// GET /ai/models/search and /ai/models/schema: the two seed entries, search/task filters, page and per_page honoured
// with an empty page past the end (SDK iterators and wrangler stop on it), and the seed's schemas.

using System.Net;
using System.Text.Json;

namespace Sirocco.Server.Tests.Http;

public sealed class CatalogEndpointTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private Task<ApiAnswer> Get(string query) => Api.GetAsync(_server.Client, "/client/v4/accounts/acc/ai/models/search" + query);

    [Fact]
    public async Task Search_ListsBothSeedModels()
    {
        ApiAnswer answer = await Get("");

        Assert.True(answer.Json.GetProperty("success").GetBoolean());
        string[] names = [.. answer.Result.EnumerateArray().Select(m => m.GetProperty("name").GetString()!)];
        Assert.Equal([Api.Lora, Api.Hf], names.Order());
        JsonElement hf = answer.Result.EnumerateArray().Single(m => m.GetProperty("name").GetString() == Api.Hf);
        Assert.Equal("b97d7069-48d9-461c-80dd-445d20a632eb", hf.GetProperty("id").GetString());
        Assert.Equal("Text Generation", hf.GetProperty("task").GetProperty("name").GetString());
    }

    [Fact]
    public async Task Search_Pages_EndWithAnEmptyPage()
    {
        var seen = new List<string>();
        for (int page = 1; page <= 3; page++)
        {
            ApiAnswer answer = await Get($"?per_page=1&page={page}");
            JsonElement info = answer.Json.GetProperty("result_info");
            Assert.Equal(page, info.GetProperty("page").GetInt32());
            Assert.Equal(1, info.GetProperty("per_page").GetInt32());
            seen.AddRange(answer.Result.EnumerateArray().Select(m => m.GetProperty("name").GetString()!));
            Assert.Equal(page <= 2 ? 1 : 0, answer.Result.GetArrayLength());
        }
        Assert.Equal(2, seen.Distinct().Count());
        Assert.Equal(0, (await Get("?per_page=50&page=2")).Result.GetArrayLength());
    }

    [Theory]
    [InlineData("?search=lora", 1)]
    [InlineData("?search=MISTRAL", 2)]
    [InlineData("?search=llama", 0)]
    [InlineData("?task=Text%20Generation", 2)]
    [InlineData("?task=Text%20Embeddings", 0)]
    public async Task Search_Filters(string query, int count)
    {
        Assert.Equal(count, (await Get(query)).Result.GetArrayLength());
    }

    [Theory]
    [InlineData("?page=0")]
    [InlineData("?per_page=x")]
    public async Task Search_BadPaging_Is400(string query)
    {
        ApiAnswer answer = await Get(query);
        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal(5006, answer.ErrorCode);
    }

    [Fact]
    public async Task Schema_IsTheSeedsInputAndOutput()
    {
        ApiAnswer answer = await Api.GetAsync(_server.Client, "/client/v4/accounts/acc/ai/models/schema?model=" + Uri.EscapeDataString(Api.Hf));

        JsonElement input = answer.Result.GetProperty("input");
        Assert.Equal(2, input.GetProperty("oneOf").GetArrayLength());
        Assert.Equal(6144, input.GetProperty("oneOf")[0].GetProperty("properties").GetProperty("prompt").GetProperty("maxLength").GetInt32());
        Assert.Equal(2, answer.Result.GetProperty("output").GetProperty("oneOf").GetArrayLength());
        ApiAnswer unknown = await Api.GetAsync(_server.Client, "/client/v4/accounts/acc/ai/models/schema?model=nope");
        Assert.Equal(5007, unknown.ErrorCode);
    }
}
