// JsonConfigValidator: which adapter_config.json and safetensors headers pass, and that every refusal is a 400/5006
// naming the file and the problem.

using System.Buffers.Binary;
using System.Text;
using Sirocco.Server.Finetunes;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Tests.Finetunes;

public sealed class JsonConfigValidatorTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Write(string name, byte[] bytes)
    {
        string path = _dir.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void APeftAdapterWithModelType_Passes()
    {
        new JsonConfigValidator().Validate(Write("c", AdapterFiles.Config(rank: 8)), Write("w", AdapterFiles.Weights(4)));
        new JsonConfigValidator(maxRank: 32).Validate(Write("c", AdapterFiles.Config(rank: 32)), Write("w", AdapterFiles.Weights(4)));
    }

    [Theory]
    [InlineData("{\"r\": 8", "adapter_config.json is not valid JSON")]
    [InlineData("[1]", "adapter_config.json must be a JSON object, found an array")]
    [InlineData("{\"r\": 8}", "adapter_config.json has no \"model_type\"; add \"model_type\": \"mistral\"")]
    [InlineData("{\"r\": 8, \"model_type\": \"gemma\"}", "\"model_type\" is \"gemma\"; this server serves Mistral adapters only")]
    [InlineData("{\"model_type\": \"mistral\"}", "adapter_config.json has no \"r\"")]
    [InlineData("{\"model_type\": \"mistral\", \"r\": 0}", "\"r\" is 0; expected an integer from 1 to 8")]
    [InlineData("{\"model_type\": \"mistral\", \"r\": 9}", "\"r\" is 9; expected an integer from 1 to 8")]
    [InlineData("{\"model_type\": \"mistral\", \"r\": 2.5}", "\"r\" is 2.5")]
    [InlineData("{\"model_type\": \"mistral\", \"r\": \"8\"}", "\"r\" is \"8\"")]
    public void BadConfigs_Are400WithTheKey(string config, string expected)
    {
        var error = Assert.Throws<ApiException>(() =>
            new JsonConfigValidator().Validate(Write("c", Encoding.UTF8.GetBytes(config)), Write("w", AdapterFiles.Weights(4))));
        Assert.Equal((400, ErrorCodes.BadInput), (error.Status, error.Code));
        Assert.Contains(expected, error.Message);
    }

    public static TheoryData<byte[], string> BadWeights()
    {
        static byte[] Safetensors(string header, int dataBytes)
        {
            byte[] json = Encoding.UTF8.GetBytes(header);
            byte[] file = new byte[8 + json.Length + dataBytes];
            BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)json.Length);
            json.CopyTo(file, 8);
            return file;
        }
        byte[] hugeLength = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(hugeLength, 1000);
        byte[] good = AdapterFiles.Weights(4);
        return new()
        {
            { new byte[] { 1, 2, 3 }, "is 3 bytes, too short for a safetensors header" },
            { hugeLength, "its header length at offset 0 is 1000, but the file has 56 bytes after it" },
            { Safetensors("not json", 0), "the header (bytes 8 to 16) is not JSON" },
            { Safetensors("[1, 2]", 0), "the safetensors header must be a JSON object, found an array" },
            { Safetensors("{}", 0), "holds no tensors" },
            { Safetensors("{\"__metadata__\":{\"format\":\"pt\"}}", 0), "holds no tensors" },
            { Safetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8), "tensor a has data_offsets [0,16], outside the 8 data bytes" },
            { Safetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[4]}}", 16), "tensor a needs \"dtype\", \"shape\" and \"data_offsets\"" },
            { good[..^1], "outside the 15 data bytes (the file may be truncated)" },
        };
    }

    [Theory]
    [MemberData(nameof(BadWeights))]
    public void BadSafetensors_Are400WithWhatIsWrong(byte[] weights, string expected)
    {
        var error = Assert.Throws<ApiException>(() => new JsonConfigValidator().Validate(Write("c", AdapterFiles.Config()), Write("w", weights)));
        Assert.Equal((400, ErrorCodes.BadInput), (error.Status, error.Code));
        Assert.Contains("adapter_model.safetensors", error.Message);
        Assert.Contains(expected, error.Message);
    }
}
