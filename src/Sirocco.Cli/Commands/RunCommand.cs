// `sirocco run --model REF [--lora ADAPTER] "prompt"`: one chat turn (or, with --raw, a plain continuation) printed
// as it is generated, then a summary line on stderr: prompt and generated tokens, prefill and decode speed.

using System.CommandLine;
using Sirocco.Engine.Generation;
using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;
using Sirocco.Engine.Sampling;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Cli.Commands;

internal static class RunCommand
{
    public static Command Create()
    {
        var model = new ModelArguments();
        var lora = new LoraArguments();
        var prompt = new Argument<string>("prompt") { Description = "What to ask (or, with --raw, the text to continue)" };
        var raw = new Option<bool>("--raw") { Description = "No chat template: tokenize the prompt as given after a BOS token" };
        var system = new Option<string?>("--system") { Description = "A system message (Mistral folds it into the first user turn)" };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "Most tokens to generate", DefaultValueFactory = _ => 256 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature; 0 is greedy", DefaultValueFactory = _ => SamplingOptions.DefaultTemperature };
        var topP = new Option<double>("--top-p") { Description = "Nucleus sampling: keep the most likely tokens up to this probability mass", DefaultValueFactory = _ => 1 };
        var topK = new Option<int>("--top-k") { Description = "Keep only the k most likely tokens (0: all)", DefaultValueFactory = _ => 0 };
        var repetition = new Option<double>("--repetition-penalty") { Description = "Penalty for tokens already seen (1: none)", DefaultValueFactory = _ => 1 };
        var frequency = new Option<double>("--frequency-penalty") { Description = "Subtracted per earlier occurrence in the output", DefaultValueFactory = _ => 0 };
        var presence = new Option<double>("--presence-penalty") { Description = "Subtracted once for any token already in the output", DefaultValueFactory = _ => 0 };
        var seed = new Option<ulong?>("--seed") { Description = "Random seed: the same seed gives the same text" };
        var command = new Command("run", "Generate a reply to a prompt and print it as it comes")
        {
            prompt, raw, system, maxTokens, temperature, topP, topK, repetition, frequency, presence, seed,
        };
        model.AddTo(command);
        lora.AddTo(command);
        command.SetAction(parse => CliErrors.Run("run", () =>
        {
            var sampling = new SamplingOptions
            {
                Temperature = parse.GetValue(temperature),
                TopP = parse.GetValue(topP),
                TopK = parse.GetValue(topK),
                RepetitionPenalty = parse.GetValue(repetition),
                FrequencyPenalty = parse.GetValue(frequency),
                PresencePenalty = parse.GetValue(presence),
                Seed = parse.GetValue(seed),
            };
            IReadOnlyList<string> problems = sampling.Validate();
            if (problems.Count > 0)
            {
                throw new CliUsageException(string.Join("; ", problems));
            }
            int limit = parse.GetValue(maxTokens);
            if (limit < 0)
            {
                throw new CliUsageException($"--max-tokens {limit}: must be 0 or more");
            }
            lora.Limits(parse); // validate before the (possibly long) load
            string modelPath = model.Resolve(parse).Path;
            Tokenizer tokenizer = TokenizerLoader.Load(modelPath);
            string text = parse.GetValue(prompt)!;
            int[] ids;
            if (parse.GetValue(raw))
            {
                ids = tokenizer.Encode(text, addBos: true);
            }
            else
            {
                var messages = new List<ChatMessage>();
                if (parse.GetValue(system) is { } systemText)
                {
                    messages.Add(new ChatMessage("system", systemText));
                }
                messages.Add(new ChatMessage("user", text));
                ids = MistralChatTemplate.Encode(tokenizer, messages);
            }

            using LlamaModel llama = model.Load(parse, modelPath);
            LoraAdapter? adapter = lora.Load(parse, llama);
            if (ids.Length >= llama.Config.ContextLength)
            {
                throw new CliUsageException($"the prompt is {ids.Length} tokens; the model's context holds {llama.Config.ContextLength}");
            }
            KvCacheType cacheType = model.CacheType(parse);
            int positions = Math.Min(llama.Config.ContextLength, ids.Length + limit + 1);
            using KvCachePool cache = llama.CreateCache(KvCacheOptions.ForPositions(llama.Config, positions, cacheType));
            var generator = new TextGenerator(llama, tokenizer, cache, adapter);
            var stdout = Console.Out;
            GenerationResult result = generator.Generate(ids, limit, sampling, piece =>
            {
                stdout.Write(piece);
                stdout.Flush();
            });
            stdout.WriteLine();
            stdout.Flush();
            Console.Error.WriteLine(
                $"prompt {result.PromptTokens} tokens, generated {result.GeneratedTokens} tokens ({(result.Finish == FinishReason.Stop ? "end of sequence" : "token limit")}); " +
                $"prefill {result.PrefillTokensPerSecond:0.0} tokens/s, decode {result.DecodeTokensPerSecond:0.0} tokens/s");
            return 0;
        }));
        return command;
    }
}
