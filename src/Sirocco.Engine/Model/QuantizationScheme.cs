// Which ggml type each tensor gets in a quantized model file: the "file types" users download (Q4_0, Q4_K_M, Q8_0,
// F16 …), with llama.cpp's per-tensor choices so synthetic files have the real files' layout and size.

using Sirocco.Kernels.Quant;

namespace Sirocco.Engine.Model;

/// <summary>A whole-file quantization recipe. Values are llama.cpp's <c>llama_ftype</c>, stored as <c>general.file_type</c>.</summary>
public enum ModelFileType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q8_0 = 7,
    Q5_0 = 8,
    Q5_1 = 9,
    Q2_K = 10,
    Q3_K_S = 11,
    Q3_K_M = 12,
    Q3_K_L = 13,
    Q4_K_S = 14,
    Q4_K_M = 15,
    Q5_K_S = 16,
    Q5_K_M = 17,
    Q6_K = 18,
    BF16 = 32,
}

/// <summary>Per-tensor type choice for the file types Sirocco writes.</summary>
public static class QuantizationScheme
{
    /// <summary>File types the synthetic-model writer (and a future `sirocco quantize`) can produce.</summary>
    public static IReadOnlyList<ModelFileType> Writable { get; } =
        [ModelFileType.F32, ModelFileType.F16, ModelFileType.BF16, ModelFileType.Q8_0, ModelFileType.Q4_0,
         ModelFileType.Q4_K_M, ModelFileType.Q5_K_M, ModelFileType.Q6_K];

    /// <summary>Parses "Q4_K_M", "q4_k_m", "f16" …</summary>
    public static bool TryParse(string text, out ModelFileType type) =>
        Enum.TryParse(text, ignoreCase: true, out type) && Enum.IsDefined(type);

    /// <summary>The type of <paramref name="tensor"/> in a <paramref name="fileType"/> file.</summary>
    /// <remarks>Rules, from llama.cpp's <c>llama_tensor_get_type</c> for a 32-layer Llama: norms stay F32; the output
    /// head gets Q6_K in every k-quant and legacy-quant file (Q8_0 keeps Q8_0); in Q4_K_M and Q5_K_M, attn_v and ffn_down
    /// get Q6_K in the "more bits" layers (the first and last eighth, and every third layer between). Rows whose length
    /// is not a multiple of 256 cannot hold k-quant blocks; they fall back as llama.cpp does (Q4_K→Q5_0, Q5_K→Q5_1,
    /// Q6_K→Q8_0).</remarks>
    public static GgmlType TypeFor(ModelFileType fileType, LlamaTensor tensor, ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentNullException.ThrowIfNull(config);
        if (tensor.IsNorm)
        {
            return GgmlType.F32;
        }
        var type = fileType switch
        {
            ModelFileType.F32 => GgmlType.F32,
            ModelFileType.F16 => GgmlType.F16,
            ModelFileType.BF16 => GgmlType.BF16,
            ModelFileType.Q8_0 => GgmlType.Q8_0,
            ModelFileType.Q4_0 => tensor.Role == LlamaTensorRole.Output ? GgmlType.Q6_K : GgmlType.Q4_0,
            ModelFileType.Q6_K => GgmlType.Q6_K,
            ModelFileType.Q4_K_M => KMix(GgmlType.Q4_K, tensor, config),
            ModelFileType.Q5_K_M => KMix(GgmlType.Q5_K, tensor, config),
            _ => throw new NotSupportedException($"writing {fileType} files is not supported; supported: {string.Join(", ", Writable)}"),
        };
        return FallBackIfRowTooShort(type, tensor.Columns);
    }

    private static GgmlType KMix(GgmlType baseType, LlamaTensor tensor, ModelConfig config) => tensor.Role switch
    {
        LlamaTensorRole.Output => GgmlType.Q6_K,
        LlamaTensorRole.Value or LlamaTensorRole.Down when UseMoreBits(tensor.Layer, config.LayerCount) => GgmlType.Q6_K,
        _ => baseType,
    };

    /// <summary>llama.cpp's <c>use_more_bits</c>: the first and last eighth of the layers, and every third in between.</summary>
    public static bool UseMoreBits(int layer, int layerCount) =>
        layer < layerCount / 8 || layer >= 7 * layerCount / 8 || (layer - layerCount / 8) % 3 == 2;

    private static GgmlType FallBackIfRowTooShort(GgmlType type, long rowLength)
    {
        if (rowLength % GgmlTypes.Get(type).BlockSize == 0)
        {
            return type;
        }
        var fallback = type switch
        {
            GgmlType.Q4_K => GgmlType.Q5_0,
            GgmlType.Q5_K => GgmlType.Q5_1,
            GgmlType.Q6_K => GgmlType.Q8_0,
            _ => GgmlType.F16,
        };
        return rowLength % GgmlTypes.Get(fallback).BlockSize == 0 ? fallback : GgmlType.F16;
    }
}
