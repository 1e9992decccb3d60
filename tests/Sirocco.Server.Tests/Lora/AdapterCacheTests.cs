// The server's cache of loaded adapters: a hit returns the same object without reading the files again, concurrent
// first requests load once, and the least recently used adapters are dropped when the bytes pass the budget (the one
// just loaded always stays). Adapter errors come back as 400s naming the PEFT file.

using Sirocco.Engine.Model;
using Sirocco.Engine.Lora;
using Sirocco.Engine.Synthesis;
using Sirocco.Server.Finetunes;
using Sirocco.Server.Hosting;
using Sirocco.Server.Protocol;
using Sirocco.Server.Tests.Http;

namespace Sirocco.Server.Tests.Lora;

public sealed class AdapterCacheTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ModelWeights _weights = WeightLoader.Load(TestServer.ModelPath);

    public void Dispose() => _dir.Dispose();

    private ResolvedAdapter Write(string name, ulong seed)
    {
        string path = _dir.File(name);
        SyntheticLoraWriter.WritePeft(path, TestServer.Config, new SyntheticLoraOptions { Seed = seed });
        var finetune = new Finetune
        {
            Id = Guid.NewGuid().ToString(),
            Name = name,
            Model = Api.Lora,
            CreatedAt = DateTimeOffset.UnixEpoch,
            ModifiedAt = DateTimeOffset.UnixEpoch,
            Files = new Dictionary<string, FinetuneFile>
            {
                ["adapter_config.json"] = new(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(path, "adapter_config.json")))), 1),
                ["adapter_model.safetensors"] = new(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(path, "adapter_model.safetensors")))), 1),
            },
        };
        return new ResolvedAdapter(finetune, Path.Combine(path, "adapter_config.json"), Path.Combine(path, "adapter_model.safetensors"));
    }

    [Fact]
    public void Hits_AreTheSameObject_ConcurrentMissesLoadOnce()
    {
        ResolvedAdapter a = Write("a", 1);
        var cache = new AdapterCache(_weights, new LoraLimits(), 1L << 30);

        LoraAdapter[] loaded = [.. Enumerable.Range(0, 8).AsParallel().Select(_ => cache.Get(a))];

        Assert.All(loaded, x => Assert.Same(loaded[0], x));
        Assert.Equal(1, cache.LoadCount);
        Assert.Equal(loaded[0].SizeBytes, cache.Bytes);
    }

    [Fact]
    public void OverBudget_DropsTheLeastRecentlyUsed()
    {
        ResolvedAdapter a = Write("a", 1), b = Write("b", 2), c = Write("c", 3);
        long size = new AdapterCache(_weights, new LoraLimits(), 1L << 30).Get(a).SizeBytes;
        var cache = new AdapterCache(_weights, new LoraLimits(), 2 * size + size / 2); // room for two

        LoraAdapter first = cache.Get(a);
        cache.Get(b);
        Assert.Same(first, cache.Get(a)); // a is now the most recent
        cache.Get(c);                     // evicts b, the least recent

        Assert.Equal(2, cache.Count);
        Assert.Equal(3, cache.LoadCount);
        Assert.Same(first, cache.Get(a));
        Assert.Equal(3, cache.LoadCount);
        cache.Get(b);
        Assert.Equal(4, cache.LoadCount); // b had to be read again
        Assert.True(cache.Bytes <= 2 * size + size / 2);
    }

    [Fact]
    public void AnAdapterLargerThanTheBudget_IsStillServed()
    {
        var cache = new AdapterCache(_weights, new LoraLimits(), 1);
        Assert.NotNull(cache.Get(Write("a", 1)));
        Assert.NotNull(cache.Get(Write("b", 2)));
        Assert.Equal(1, cache.Count);
    }

    [Fact]
    public void BrokenFiles_Are400NamingThePeftFile()
    {
        ResolvedAdapter a = Write("a", 1);
        File.WriteAllText(a.ConfigPath, """{"peft_type":"LORA","r":64,"lora_alpha":16,"target_modules":["q_proj"],"model_type":"mistral"}""");
        var cache = new AdapterCache(_weights, new LoraLimits(), 1L << 30);

        var error = Assert.Throws<ApiException>(() => cache.Get(a));
        Assert.Equal(400, error.Status);
        Assert.StartsWith("LoRA adapter adapter_config.json: r: expected a rank of at most 8, found 64", error.Message, StringComparison.Ordinal);
        File.Delete(a.WeightsPath);
        Assert.Equal(ErrorCodes.FinetuneMissingFiles, Assert.Throws<ApiException>(() => cache.Load(a.ConfigPath, a.WeightsPath)).Code);
    }
}
