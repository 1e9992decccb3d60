// The tensors of a Llama/Mistral decoder for a given ModelConfig, with their GGUF and Hugging Face names and shapes.
// The synthetic-model writer and (later) the weight loader both walk this list, so the two file layouts never drift.

namespace Sirocco.Engine.Model;

/// <summary>What a tensor is, which decides how it is initialised and quantized.</summary>
public enum LlamaTensorRole
{
    TokenEmbedding,
    AttentionNorm,
    Query,
    Key,
    Value,
    AttentionOutput,
    FeedForwardNorm,
    Gate,
    Up,
    Down,
    OutputNorm,
    Output,
}

/// <summary>One weight tensor. <see cref="Rows"/> × <see cref="Columns"/> is the PyTorch shape [out, in]; GGUF stores
/// the same tensor with dimensions [Columns, Rows]. Norm weights are vectors (Rows = 1).</summary>
public sealed record LlamaTensor(string GgufName, string HfName, LlamaTensorRole Role, int Layer, long Rows, long Columns)
{
    /// <summary>True for the RMSNorm weight vectors, which every format keeps in F32.</summary>
    public bool IsNorm => Role is LlamaTensorRole.AttentionNorm or LlamaTensorRole.FeedForwardNorm or LlamaTensorRole.OutputNorm;

    public long ElementCount => Rows * Columns;

    /// <summary>GGUF dimensions (ggml order: row length first).</summary>
    public long[] GgufDimensions => IsNorm ? [Columns] : [Columns, Rows];

    /// <summary>Hugging Face / PyTorch shape (outermost first).</summary>
    public long[] HfShape => IsNorm ? [Columns] : [Rows, Columns];

    /// <summary>Heads whose rows RoPE rotates (Q and K only): the rows differ in order between HF and GGUF layouts.</summary>
    public int RotaryHeadCount(ModelConfig config) => Role switch
    {
        LlamaTensorRole.Query => config.HeadCount,
        LlamaTensorRole.Key => config.KvHeadCount,
        _ => 0,
    };
}

/// <summary>Enumerates the tensors of a model, in the order llama.cpp's converter writes them.</summary>
public static class LlamaTensors
{
    /// <summary>All tensors of <paramref name="config"/>: embedding, each layer's nine, final norm, output head.</summary>
    public static IReadOnlyList<LlamaTensor> For(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        int d = config.ModelDim;
        int qDim = config.HeadCount * config.HeadDim;
        int kvDim = config.KvHeadCount * config.HeadDim;
        var list = new List<LlamaTensor>
        {
            new("token_embd.weight", "model.embed_tokens.weight", LlamaTensorRole.TokenEmbedding, -1, config.VocabSize, d),
        };
        for (int i = 0; i < config.LayerCount; i++)
        {
            string hf = $"model.layers.{i}.";
            string gg = $"blk.{i}.";
            list.Add(new(gg + "attn_norm.weight", hf + "input_layernorm.weight", LlamaTensorRole.AttentionNorm, i, 1, d));
            list.Add(new(gg + "attn_q.weight", hf + "self_attn.q_proj.weight", LlamaTensorRole.Query, i, qDim, d));
            list.Add(new(gg + "attn_k.weight", hf + "self_attn.k_proj.weight", LlamaTensorRole.Key, i, kvDim, d));
            list.Add(new(gg + "attn_v.weight", hf + "self_attn.v_proj.weight", LlamaTensorRole.Value, i, kvDim, d));
            list.Add(new(gg + "attn_output.weight", hf + "self_attn.o_proj.weight", LlamaTensorRole.AttentionOutput, i, d, qDim));
            list.Add(new(gg + "ffn_norm.weight", hf + "post_attention_layernorm.weight", LlamaTensorRole.FeedForwardNorm, i, 1, d));
            list.Add(new(gg + "ffn_gate.weight", hf + "mlp.gate_proj.weight", LlamaTensorRole.Gate, i, config.HiddenDim, d));
            list.Add(new(gg + "ffn_up.weight", hf + "mlp.up_proj.weight", LlamaTensorRole.Up, i, config.HiddenDim, d));
            list.Add(new(gg + "ffn_down.weight", hf + "mlp.down_proj.weight", LlamaTensorRole.Down, i, d, config.HiddenDim));
        }
        list.Add(new("output_norm.weight", "model.norm.weight", LlamaTensorRole.OutputNorm, -1, 1, d));
        if (!config.TiedEmbeddings)
        {
            list.Add(new("output.weight", "lm_head.weight", LlamaTensorRole.Output, -1, config.VocabSize, d));
        }
        return list;
    }
}

/// <summary>The q/k row order difference between the Hugging Face checkpoint and GGUF.</summary>
/// <remarks>Hugging Face's Llama applies RoPE with "rotate half": within a head of width D, dimension j pairs with
/// j + D/2. Meta's original layout, which llama.cpp's converter restores for GGUF, pairs adjacent dimensions 2j and 2j+1.
/// llama.cpp's convert_hf_to_gguf.py permutes q_proj and k_proj rows per head so that
/// GGUF row h·D + 2j + s holds HF row h·D + s·D/2 + j (s ∈ {0, 1}, j &lt; D/2). Both layouts then compute the same
/// attention scores.</remarks>
public static class RopeRowOrder
{
    /// <summary>The HF row stored at GGUF row <paramref name="ggufRow"/> of a q or k projection with heads of
    /// <paramref name="headDim"/> rows.</summary>
    public static long HfRowOfGgufRow(long ggufRow, int headDim)
    {
        long head = ggufRow / headDim;
        int k = (int)(ggufRow % headDim);
        int j = k / 2;
        int s = k % 2;
        return head * headDim + s * (headDim / 2) + j;
    }

    /// <summary>The GGUF row holding HF row <paramref name="hfRow"/>; inverse of <see cref="HfRowOfGgufRow"/>.</summary>
    public static long GgufRowOfHfRow(long hfRow, int headDim)
    {
        long head = hfRow / headDim;
        int k = (int)(hfRow % headDim);
        int half = headDim / 2;
        int s = k / half;
        int j = k % half;
        return head * headDim + 2 * j + s;
    }
}
