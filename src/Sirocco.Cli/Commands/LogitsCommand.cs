// `sirocco logits --model REF [--lora ADAPTER] --tokens '[1, 415, …]'`: runs the model (with an adapter, if given)
// over a token sequence and prints the logits of the last position (or of every position with --all) as JSON, so a
// conversion, a quantization or an adapter can be checked number by number against another implementation.

using System.CommandLine;
using System.Text.Json;
using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;

namespace Sirocco.Cli.Commands;

internal static class LogitsCommand
{
    public static Command Create()
    {
        var model = new ModelArguments();
        var lora = new LoraArguments();
        var tokens = new Option<string>("--tokens") { Description = "Token ids as a JSON array, e.g. '[1, 415, 2936]'", Required = true };
        var all = new Option<bool>("--all") { Description = "Print the logits of every position, not only the last" };
        var command = new Command("logits", "Print the logits of a token sequence as JSON") { tokens, all };
        model.AddTo(command);
        lora.AddTo(command);
        command.SetAction(parse => CliErrors.Run("logits", () =>
        {
            int[] ids = ParseTokens(parse.GetValue(tokens)!);
            lora.Limits(parse);
            string modelPath = model.Resolve(parse).Path;
            using LlamaModel llama = model.Load(parse, modelPath);
            CheckIds(ids, llama.Config);
            LoraAdapter? adapter = lora.Load(parse, llama);
            using KvCachePool pool = llama.CreateCache(KvCacheOptions.ForPositions(llama.Config, ids.Length, model.CacheType(parse)));
            using KvSequence sequence = pool.CreateSequence();
            using Stream stdout = Console.OpenStandardOutput();
            using var json = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = false });
            json.WriteStartObject();
            json.WriteString("model", modelPath);
            if (lora.Paths(parse) is [string adapterPath])
            {
                json.WriteString("lora", adapterPath);
            }
            json.WriteStartArray("tokens");
            foreach (int id in ids)
            {
                json.WriteNumberValue(id);
            }
            json.WriteEndArray();
            json.WriteStartArray("positions");
            for (int p = parse.GetValue(all) ? 0 : ids.Length - 1; p < ids.Length; p++)
            {
                json.WriteNumberValue(p);
            }
            json.WriteEndArray();
            json.WriteStartArray("logits");
            int nonFinite = 0;
            llama.Prefill(sequence, ids, parse.GetValue(all) ? LogitsWanted.All : LogitsWanted.Last, () =>
            {
                for (int row = 0; row < llama.LogitRows; row++)
                {
                    json.WriteStartArray();
                    foreach (float value in llama.Logits(row))
                    {
                        if (float.IsFinite(value))
                        {
                            json.WriteNumberValue(value);
                        }
                        else
                        {
                            json.WriteNullValue(); // JSON has no NaN or infinity
                            nonFinite++;
                        }
                    }
                    json.WriteEndArray();
                }
            }, adapter);
            json.WriteEndArray();
            json.WriteEndObject();
            json.Flush();
            stdout.WriteByte((byte)'\n');
            if (nonFinite > 0)
            {
                Console.Error.WriteLine($"sirocco logits: warning: {nonFinite} logits were NaN or infinite (printed as null)");
            }
            return 0;
        }));
        return command;
    }

    internal static int[] ParseTokens(string text)
    {
        int[]? ids;
        try
        {
            ids = JsonSerializer.Deserialize<int[]>(text);
        }
        catch (JsonException e)
        {
            throw new CliUsageException($"--tokens: expected a JSON array of token ids such as [1, 415, 2936]; {e.Message}");
        }
        if (ids is null || ids.Length == 0)
        {
            throw new CliUsageException("--tokens: give at least one token id, e.g. [1, 415]");
        }
        return ids;
    }

    internal static void CheckIds(int[] ids, ModelConfig config)
    {
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] < 0 || ids[i] >= config.VocabSize)
            {
                throw new CliUsageException($"--tokens: id {ids[i]} at index {i} is outside the vocabulary (0 … {config.VocabSize - 1})");
            }
        }
        if (ids.Length > config.ContextLength)
        {
            throw new CliUsageException($"--tokens: {ids.Length} tokens is more than the model's context of {config.ContextLength}");
        }
    }
}
