// Checks that the seed catalog entries are embedded in the server assembly.

namespace Sirocco.Server.Tests;

public sealed class CatalogResourceTests
{
    [Fact]
    public void BothSeedEntries_AreEmbedded()
    {
        var names = typeof(Sirocco.Server.ServerAssembly).Assembly.GetManifestResourceNames();
        Assert.Contains("Sirocco.Server.Catalog.mistral-7b-instruct-v0.2.json", names);
        Assert.Contains("Sirocco.Server.Catalog.mistral-7b-instruct-v0.2-lora.json", names);
    }
}
