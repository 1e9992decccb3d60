// The GGUF metadata keys of the llama architecture (which llama.cpp uses for Mistral-7B): reading them into a
// ModelConfig, and writing them (with the tokenizer arrays and chat template) the way llama.cpp's converter does.

using Sirocco.Engine.Model;

namespace Sirocco.Engine.Formats.Gguf;

/// <summary>Maps llama-architecture GGUF metadata to and from <see cref="ModelConfig"/>.</summary>
public static class LlamaGgufMetadata
{
    /// <summary>Mistral-7B-Instruct-v0.2's later Hugging Face chat template (system message folded into the first user
    /// turn). Written into synthetic models as <c>tokenizer.chat_template</c>; Sirocco's own prompt builder implements
    /// the same rules in code rather than evaluating Jinja.</summary>
    public const string MistralChatTemplate =
        "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}" +
        "{%- else %}{%- set loop_messages = messages %}{%- endif %}{{- bos_token }}{%- for message in loop_messages %}" +
        "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif %}" +
        "{%- if message['role'] == 'user' %}{%- if loop.first and system_message is defined %}{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}" +
        "{%- else %}{{- ' [INST] ' + message['content'] + ' [/INST]' }}{%- endif %}{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + eos_token}}" +
        "{%- else %}{{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}{%- endif %}{%- endfor %}";

    /// <summary>Reads the model hyperparameters. Only <c>general.architecture = llama</c> is supported.</summary>
    /// <exception cref="UnsupportedModelException">Another architecture.</exception>
    /// <exception cref="ModelFormatException">A required key is missing or has the wrong type, or the values are inconsistent.</exception>
    public static ModelConfig ReadConfig(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        string arch = file.GetString("general.architecture");
        if (arch != "llama")
        {
            throw new UnsupportedModelException($"{file.FilePath}: architecture \"{arch}\" is not supported; Sirocco runs llama-architecture models such as Mistral-7B");
        }
        string p = arch + ".";
        int modelDim = file.GetInt(p + "embedding_length");
        int headCount = file.GetInt(p + "attention.head_count");
        int headDim = headCount > 0 ? file.GetInt(p + "attention.key_length", modelDim / headCount) : 0;
        int vocab = file.Has(p + "vocab_size") ? file.GetInt(p + "vocab_size")
            : file.Has("tokenizer.ggml.tokens") ? file.GetArray<string>("tokenizer.ggml.tokens").Length
            : (int)(file.FindTensor("token_embd.weight")?.Dimensions is [_, var rows] ? rows : 0);
        var config = new ModelConfig
        {
            Architecture = arch,
            ModelDim = modelDim,
            HiddenDim = file.GetInt(p + "feed_forward_length"),
            LayerCount = file.GetInt(p + "block_count"),
            HeadCount = headCount,
            KvHeadCount = file.GetInt(p + "attention.head_count_kv", headCount),
            HeadDim = headDim,
            RopeDim = file.GetInt(p + "rope.dimension_count", headDim),
            VocabSize = vocab,
            ContextLength = file.GetInt(p + "context_length"),
            RopeTheta = file.GetFloat(p + "rope.freq_base", 10000f),
            RmsNormEps = file.GetFloat(p + "attention.layer_norm_rms_epsilon", 1e-5f),
            TiedEmbeddings = file.FindTensor("output.weight") is null && file.FindTensor("token_embd.weight") is not null,
            BosId = file.GetInt("tokenizer.ggml.bos_token_id", 1),
            EosId = file.GetInt("tokenizer.ggml.eos_token_id", 2),
            UnkId = file.GetInt("tokenizer.ggml.unknown_token_id", 0),
        };
        if (file.Has(p + "rope.scaling.type") && file.GetString(p + "rope.scaling.type") is not ("none" or ""))
        {
            throw new UnsupportedModelException($"{file.FilePath}: RoPE scaling \"{file.GetString(p + "rope.scaling.type")}\" is not supported");
        }
        var problems = config.Problems();
        if (problems.Count > 0)
        {
            throw new ModelFormatException(file.FilePath, "llama.* hyperparameters", -1, "a consistent model shape", string.Join("; ", problems));
        }
        return config;
    }

    /// <summary>Writes the general.* and llama.* keys for <paramref name="config"/>.</summary>
    public static void WriteConfig(GgufWriter writer, ModelConfig config, string name, ModelFileType fileType)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(config);
        writer.Add("general.architecture", "llama");
        writer.Add("general.name", name);
        writer.Add("llama.context_length", (uint)config.ContextLength);
        writer.Add("llama.embedding_length", (uint)config.ModelDim);
        writer.Add("llama.block_count", (uint)config.LayerCount);
        writer.Add("llama.feed_forward_length", (uint)config.HiddenDim);
        writer.Add("llama.rope.dimension_count", (uint)(config.RopeDim == 0 ? config.HeadDim : config.RopeDim));
        writer.Add("llama.attention.head_count", (uint)config.HeadCount);
        writer.Add("llama.attention.head_count_kv", (uint)config.KvHeadCount);
        if (config.HeadDim != config.ModelDim / config.HeadCount)
        {
            writer.Add("llama.attention.key_length", (uint)config.HeadDim);
            writer.Add("llama.attention.value_length", (uint)config.HeadDim);
        }
        writer.Add("llama.attention.layer_norm_rms_epsilon", config.RmsNormEps);
        writer.Add("llama.rope.freq_base", config.RopeTheta);
        writer.Add("general.file_type", (uint)fileType);
        writer.Add("llama.vocab_size", (uint)config.VocabSize);
    }

    /// <summary>Writes the tokenizer.* keys of a SentencePiece ("llama") tokenizer, and the quantization version.</summary>
    /// <param name="tokenTypes">Per piece: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.</param>
    public static void WriteTokenizer(GgufWriter writer, string[] pieces, float[] scores, int[] tokenTypes,
        int bosId, int eosId, int unkId, string chatTemplate)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.Add("tokenizer.ggml.model", "llama");
        writer.Add("tokenizer.ggml.tokens", GgufValue.Array(pieces));
        writer.Add("tokenizer.ggml.scores", GgufValue.Array(scores));
        writer.Add("tokenizer.ggml.token_type", GgufValue.Array(tokenTypes));
        writer.Add("tokenizer.ggml.bos_token_id", (uint)bosId);
        writer.Add("tokenizer.ggml.eos_token_id", (uint)eosId);
        writer.Add("tokenizer.ggml.unknown_token_id", (uint)unkId);
        writer.Add("tokenizer.ggml.add_bos_token", true);
        writer.Add("tokenizer.ggml.add_eos_token", false);
        writer.Add("tokenizer.chat_template", chatTemplate);
        writer.Add("general.quantization_version", 2u);
    }
}
