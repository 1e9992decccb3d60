// Writes a copy of a tiny F32 model with a test adapter merged into its weights (W' = W + s·B·A, summed in double),
// in the base model's own layout: a Hugging Face directory keeps B's rows as they are, a GGUF file takes q/k rows in
// llama.cpp's order (GGUF row g holds HF row HfRowOfGgufRow(g)). The merged model is the specification the unmerged
// LoraAdapter must reproduce; nothing here shares code with the loader.

using Sirocco.Engine.Formats.Gguf;
using Sirocco.Engine.Formats.SafeTensors;
using Sirocco.Engine.Model;
using Sirocco.Kernels.Quant;

namespace Sirocco.Engine.Tests.Lora;

internal static class MergedModels
{
    /// <summary>Writes <paramref name="basePath"/> (GGUF file or HF directory, F32) merged with
    /// <paramref name="adapter"/> to <paramref name="outputPath"/>, and returns it.</summary>
    public static string Write(string basePath, TestAdapter adapter, string outputPath)
    {
        if (Directory.Exists(basePath))
        {
            WriteHuggingFace(basePath, adapter, outputPath);
        }
        else
        {
            WriteGguf(basePath, adapter, outputPath);
        }
        return outputPath;
    }

    private static void WriteHuggingFace(string baseDirectory, TestAdapter adapter, string outputDirectory)
    {
        Directory.CreateDirectory(outputDirectory);
        foreach (string file in Directory.EnumerateFiles(baseDirectory))
        {
            if (!file.EndsWith(".safetensors", StringComparison.Ordinal) && !file.EndsWith(".index.json", StringComparison.Ordinal))
            {
                File.Copy(file, Path.Combine(outputDirectory, Path.GetFileName(file)));
            }
        }
        ModelConfig config = HfConfig.Load(baseDirectory);
        using SafeTensorCheckpoint checkpoint = SafeTensorCheckpoint.Open(baseDirectory);
        IReadOnlyList<LlamaTensor> tensors = LlamaTensors.For(config);
        using var writer = SafeTensorWriter.Create(Path.Combine(outputDirectory, "model.safetensors"),
            tensors.Select(t => new SafeTensorDeclaration(t.HfName, SafeTensorDtype.F32, t.HfShape)));
        foreach (LlamaTensor t in tensors)
        {
            float[] values = checkpoint.ReadFloats(t.HfName);
            Merge(adapter, t, values, ggufOrder: false, config.HeadDim);
            writer.WriteTensorFloats(t.HfName, values);
        }
        writer.Complete();
    }

    private static void WriteGguf(string basePath, TestAdapter adapter, string outputPath)
    {
        using GgufFile file = GgufFile.Open(basePath);
        ModelConfig config = LlamaGgufMetadata.ReadConfig(file);
        var writer = new GgufWriter();
        foreach ((string key, GgufValue value) in file.MetadataInOrder)
        {
            writer.Add(key, value);
        }
        foreach (GgufTensorInfo info in file.Tensors)
        {
            writer.AddTensor(info.Name, info.Type, info.Dimensions);
        }
        var byName = LlamaTensors.For(config).ToDictionary(t => t.GgufName);
        using GgufDataWriter data = writer.Begin(outputPath);
        foreach (GgufTensorInfo info in file.Tensors)
        {
            ReadOnlySpan<byte> bytes = file.TensorData(info);
            if (byName.TryGetValue(info.Name, out LlamaTensor? t) && adapter.Modules.Any(m => m.Layer == t.Layer && m.Module.Role == t.Role))
            {
                Assert.Equal(GgmlType.F32, info.Type);
                float[] values = new float[info.ElementCount];
                Sirocco.Kernels.Reference.Dequantize.Row(GgmlType.F32, bytes, values);
                Merge(adapter, t, values, ggufOrder: true, config.HeadDim);
                var merged = new byte[bytes.Length];
                Quantize.Row(GgmlType.F32, values, merged);
                data.Write(merged);
            }
            else
            {
                data.Write(bytes);
            }
        }
        data.Complete();
    }

    /// <summary>W[o][i] += s·Σⱼ B[src(o)][j]·A[j][i] for the module adapting <paramref name="tensor"/>, if any.</summary>
    private static void Merge(TestAdapter adapter, LlamaTensor tensor, float[] weights, bool ggufOrder, int headDim)
    {
        TestModule? m = adapter.Modules.SingleOrDefault(m => m.Layer == tensor.Layer && m.Module.Role == tensor.Role);
        if (m is null)
        {
            return;
        }
        int rows = (int)tensor.Rows, columns = (int)tensor.Columns, r = m.Rank;
        bool rotary = tensor.Role is LlamaTensorRole.Query or LlamaTensorRole.Key;
        for (int o = 0; o < rows; o++)
        {
            long source = ggufOrder && rotary ? RopeRowOrder.HfRowOfGgufRow(o, headDim) : o;
            for (int i = 0; i < columns; i++)
            {
                double sum = 0;
                for (int j = 0; j < r; j++)
                {
                    sum += (double)m.B[source * r + j] * m.A[j * columns + i];
                }
                weights[o * columns + i] = (float)(weights[o * columns + i] + m.Scale * sum);
            }
        }
    }
}
