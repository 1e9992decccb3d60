// Small adapter files for the finetune tests: an adapter_config.json as PEFT writes it (plus the model_type Workers AI
// requires) and a minimal well-formed safetensors file, padded to any size; and a store on a temporary directory.

using System.Buffers.Binary;
using System.Text;
using Sirocco.Server.Catalog;
using Sirocco.Server.Finetunes;

namespace Sirocco.Server.Tests.Finetunes;

internal static class AdapterFiles
{
    public static readonly ModelCatalog Catalog = ModelCatalog.Load(4096);

    public static byte[] Config(int rank = 8, string modelType = "mistral") => Encoding.UTF8.GetBytes(
        $$"""{"base_model_name_or_path":"mistralai/Mistral-7B-Instruct-v0.2","model_type":"{{modelType}}","peft_type":"LORA","r":{{rank}},"lora_alpha":16,"target_modules":["q_proj","v_proj"],"task_type":"CAUSAL_LM"}""");

    /// <summary>A safetensors file with one F32 tensor of <paramref name="floatCount"/> values (seeded bytes).</summary>
    public static byte[] Weights(int floatCount = 4, byte seed = 1)
    {
        byte[] header = Encoding.UTF8.GetBytes(
            $$$"""{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":{"dtype":"F32","shape":[{{{floatCount}}}],"data_offsets":[0,{{{floatCount * 4}}}]}}""");
        byte[] file = new byte[8 + header.Length + floatCount * 4];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        for (int i = 8 + header.Length; i < file.Length; i++)
        {
            file[i] = (byte)(i * 31 + seed);
        }
        return file;
    }

    public static FinetuneStore Open(string directory, FinetuneLimits? limits = null, IAdapterValidator? validator = null) =>
        new(directory, validator ?? new JsonConfigValidator(), Catalog, limits);

    public static async Task<Finetune> UploadBothAsync(FinetuneStore store, string? account, string idOrName, byte seed = 1)
    {
        await store.UploadAsync(account, idOrName, Finetune.ConfigFileName, new MemoryStream(Config()));
        return await store.UploadAsync(account, idOrName, Finetune.WeightsFileName, new MemoryStream(Weights(seed: seed)));
    }

    /// <summary>Every file under <paramref name="directory"/> whose name starts with ".tmp-".</summary>
    public static string[] TempFiles(string directory) =>
        [.. Directory.EnumerateFiles(directory, ".tmp-*", SearchOption.AllDirectories)];

    public static string[] Blobs(string directory) =>
        [.. Directory.EnumerateFiles(Path.Combine(directory, "blobs", "sha256")).Select(Path.GetFileName).Where(n => !n!.StartsWith('.'))!];
}
