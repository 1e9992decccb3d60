// Adapters through the generation paths the server uses: the scheduler running requests with different adapters
// (and none) in shared steps gives each request exactly the tokens TextGenerator gives it with the same adapter.

using Sirocco.Engine.Generation;
using Sirocco.Engine.Lora;
using Sirocco.Engine.Model;
using Sirocco.Engine.Sampling;
using Sirocco.Engine.Scheduling;
using Sirocco.Engine.Tests.Scheduling;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Lora;

public sealed class LoraGenerationTests(TinySchedulerModel fixture) : IClassFixture<TinySchedulerModel>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Scheduler_WithMixedAdapters_EqualsTextGeneratorPerAdapter()
    {
        LlamaModel model = fixture.Model;
        Tokenizer tokenizer = SchedulerTestData.Tokenizer;
        LoraAdapter attention = LoraAdapter.Load(TestAdapter.Random(model.Config, [LlamaTensorRole.Query, LlamaTensorRole.Key, LlamaTensorRole.Value, LlamaTensorRole.AttentionOutput], seed: 21, relativeDelta: 0.3).WritePeft(_dir.File("attn")), model.Weights);
        LoraAdapter all = LoraAdapter.Load(TestAdapter.Random(model.Config, [.. LoraModules.All.Select(m => m.Role)], seed: 22, relativeDelta: 0.3).WritePeft(_dir.File("all")), model.Weights);
        int[] prompt = tokenizer.Encode("Write a short poem about the sea", addBos: true);
        (LoraAdapter? Adapter, SamplingOptions Sampling)[] requests =
        [
            (attention, SamplingOptions.Greedy), (all, SamplingOptions.Greedy), (null, SamplingOptions.Greedy),
            (all, new SamplingOptions { Temperature = 0.8, TopK = 40, Seed = 7 }),
        ];
        const int MaxTokens = 10;
        using KvCachePool pool = SchedulerTestData.Pool();
        GenerationResult[] expected = [.. requests.Select(r => new TextGenerator(model, tokenizer, pool, r.Adapter).Generate(prompt, MaxTokens, r.Sampling))];
        Assert.False(expected[0].Tokens.SequenceEqual(expected[2].Tokens) && expected[1].Tokens.SequenceEqual(expected[2].Tokens),
            "the adapters should change the greedy continuation");

        using (var scheduler = new GenerationScheduler(model, tokenizer, pool, new SchedulerOptions { MaxActiveSequences = 4, MaxStepTokens = 32 }))
        {
            GenerationStream[] streams = [.. requests.Select(r => scheduler.Submit(new GenerationRequest(prompt, MaxTokens, r.Sampling, r.Adapter)))];
            for (int i = 0; i < requests.Length; i++)
            {
                GenerationOutcome outcome = await streams[i].Completion.Within();
                Assert.True(expected[i].Tokens.SequenceEqual(outcome.TokenIds), $"request {i}: [{string.Join(", ", outcome.TokenIds)}], expected [{string.Join(", ", expected[i].Tokens)}]");
            }
            Assert.True(scheduler.Stats.MaxSequencesPerStep > 1);
        }
        Assert.Equal(0, pool.UsedBlocks);
    }
}
