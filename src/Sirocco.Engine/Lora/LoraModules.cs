// The seven layer projections a LoRA adapter may adapt, with their names in PEFT (Hugging Face module paths) and in
// llama.cpp's GGUF adapters, and the tensor-name patterns of both formats. The loaders and the synthetic adapter
// writer share this table so the names never drift.

using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Sirocco.Engine.Model;

namespace Sirocco.Engine.Lora;

/// <summary>One adaptable projection: its role, PEFT module name (<c>q_proj</c>), parent module (<c>self_attn</c>) and
/// GGUF tensor stem (<c>attn_q</c>).</summary>
public sealed record LoraModule(LlamaTensorRole Role, string PeftName, string PeftParent, string GgufName)
{
    /// <summary>The module's path in a Hugging Face MistralForCausalLM, which PEFT matches target_modules against:
    /// <c>model.layers.3.self_attn.q_proj</c>.</summary>
    public string ModulePath(int layer) => $"model.layers.{layer}.{PeftParent}.{PeftName}";

    /// <summary>PEFT's saved tensor name: <c>base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight</c>.</summary>
    public string PeftTensor(int layer, bool isA) => $"base_model.model.{ModulePath(layer)}.lora_{(isA ? 'A' : 'B')}.weight";

    /// <summary>llama.cpp's tensor name: <c>blk.3.attn_q.weight.lora_a</c>.</summary>
    public string GgufTensor(int layer, bool isA) => $"blk.{layer}.{GgufName}.weight.lora_{(isA ? 'a' : 'b')}";
}

/// <summary>The table of adaptable projections and the tensor-name parsers.</summary>
public static class LoraModules
{
    /// <summary>The seven projections in forward order: q, k, v, o, gate, up, down.</summary>
    public static IReadOnlyList<LoraModule> All { get; } =
    [
        new(LlamaTensorRole.Query, "q_proj", "self_attn", "attn_q"),
        new(LlamaTensorRole.Key, "k_proj", "self_attn", "attn_k"),
        new(LlamaTensorRole.Value, "v_proj", "self_attn", "attn_v"),
        new(LlamaTensorRole.AttentionOutput, "o_proj", "self_attn", "attn_output"),
        new(LlamaTensorRole.Gate, "gate_proj", "mlp", "ffn_gate"),
        new(LlamaTensorRole.Up, "up_proj", "mlp", "ffn_up"),
        new(LlamaTensorRole.Down, "down_proj", "mlp", "ffn_down"),
    ];

    /// <summary>The PEFT module names, comma-separated, for messages.</summary>
    public static string PeftNames { get; } = string.Join(", ", All.Select(m => m.PeftName));

    /// <summary>Index of <paramref name="role"/> in <see cref="All"/>, or -1 for a role LoRA never adapts (norms,
    /// embedding, output head).</summary>
    public static int IndexOf(LlamaTensorRole role) => role switch
    {
        LlamaTensorRole.Query => 0,
        LlamaTensorRole.Key => 1,
        LlamaTensorRole.Value => 2,
        LlamaTensorRole.AttentionOutput => 3,
        LlamaTensorRole.Gate => 4,
        LlamaTensorRole.Up => 5,
        LlamaTensorRole.Down => 6,
        _ => -1,
    };

    /// <summary>The module of <paramref name="role"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A role LoRA does not adapt.</exception>
    public static LoraModule Of(LlamaTensorRole role) =>
        IndexOf(role) is int i and >= 0 ? All[i] : throw new ArgumentOutOfRangeException(nameof(role), role, "not an adaptable projection");

    /// <summary>The module whose PEFT name is <paramref name="peftName"/> (<c>q_proj</c>), or null.</summary>
    public static LoraModule? FindPeft(string peftName) => All.FirstOrDefault(m => m.PeftName == peftName);

    /// <summary>Parses a PEFT tensor name <c>base_model.model.model.layers.N.{self_attn|mlp}.X.lora_{A|B}.weight</c>.</summary>
    public static bool TryParsePeft(string name, out int layer, [NotNullWhen(true)] out LoraModule? module, out bool isA)
    {
        const string Prefix = "base_model.model.model.layers.";
        layer = -1;
        module = null;
        isA = false;
        if (!name.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }
        string[] parts = name[Prefix.Length..].Split('.');
        // N . parent . module . lora_A|lora_B . weight
        if (parts.Length != 5 || parts[4] != "weight" || parts[3] is not ("lora_A" or "lora_B") || !TryLayer(parts[0], out layer))
        {
            return false;
        }
        module = FindPeft(parts[2]);
        if (module is null || module.PeftParent != parts[1])
        {
            module = null;
            return false;
        }
        isA = parts[3] == "lora_A";
        return true;
    }

    /// <summary>Parses a llama.cpp adapter tensor name <c>blk.N.attn_q.weight.lora_{a|b}</c>.</summary>
    public static bool TryParseGguf(string name, out int layer, [NotNullWhen(true)] out LoraModule? module, out bool isA)
    {
        layer = -1;
        module = null;
        isA = false;
        string[] parts = name.Split('.');
        // blk . N . stem . weight . lora_a|lora_b
        if (parts.Length != 5 || parts[0] != "blk" || parts[3] != "weight" || parts[4] is not ("lora_a" or "lora_b") || !TryLayer(parts[1], out layer))
        {
            return false;
        }
        module = All.FirstOrDefault(m => m.GgufName == parts[2]);
        isA = parts[4] == "lora_a";
        return module is not null;
    }

    /// <summary>A layer index as PyTorch and llama.cpp print it: decimal digits, no sign, no leading zeros.</summary>
    private static bool TryLayer(string text, out int layer) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out layer) && text == layer.ToString(CultureInfo.InvariantCulture);
}
