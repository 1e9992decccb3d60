// The step loop against a model-free FakeStepRunner whose logits are scripted: end-of-sequence handling, the exact
// batch plan (decode tokens first, prompt chunks in admission order, logits only for last chunks), and a randomized
// run of many requests with cancellations that must leave no request hanging and no KV block held.

using Sirocco.Engine.Generation;
using Sirocco.Engine.Model;
using Sirocco.Engine.Sampling;
using Sirocco.Engine.Scheduling;

namespace Sirocco.Engine.Tests.Scheduling;

public class SchedulerStepLoopTests
{
    private static int Eos => SchedulerTestData.Tokenizer.EosId;

    [Fact]
    public async Task Eos_StopsWithFinishStop_AndIsNotCounted()
    {
        var runner = new FakeStepRunner { NextToken = (_, length) => length == 7 ? Eos : 1000 + length };
        using KvCachePool pool = SchedulerTestData.Pool();
        using (var scheduler = new GenerationScheduler(runner, SchedulerTestData.Tokenizer, pool, new SchedulerOptions()))
        {
            GenerationStream stream = scheduler.Submit(new GenerationRequest([1, 500, 600, 700], 50, SamplingOptions.Greedy));
            Task<string> pieces = SchedulerTestData.ReadAllText(stream);
            GenerationOutcome outcome = await stream.Completion.Within();

            // Prompt of 4 → token 1004; then 1005, 1006 fed back at lengths 5, 6; length 7 gives EOS.
            Assert.Equal(FinishReason.Stop, outcome.Finish);
            Assert.Equal([1004, 1005, 1006], outcome.TokenIds);
            Assert.Equal(3, outcome.CompletionTokens);
            Assert.Equal(SchedulerTestData.Tokenizer.Decode([1004, 1005, 1006]), outcome.Text);
            Assert.Equal(outcome.Text, await pieces);
            Assert.Equal(3, scheduler.Stats.GeneratedTokens);
        }
        Assert.Equal(0, pool.UsedBlocks);
    }

    [Fact]
    public async Task EosFirst_GivesNoTokens_ButATimeToFirstToken()
    {
        var runner = new FakeStepRunner { NextToken = (_, _) => Eos };
        using KvCachePool pool = SchedulerTestData.Pool();
        using var scheduler = new GenerationScheduler(runner, SchedulerTestData.Tokenizer, pool, new SchedulerOptions());
        GenerationOutcome outcome = await scheduler.Submit(new GenerationRequest([1, 500], 50, SamplingOptions.Greedy)).Completion.Within();
        Assert.Equal((0, FinishReason.Stop, ""), (outcome.CompletionTokens, outcome.Finish, outcome.Text));
        Assert.True(outcome.TimeToFirstToken > TimeSpan.Zero);
        Assert.Equal(0, outcome.DecodeTokensPerSecond);
    }

    [Fact]
    public async Task StepPlan_DecodesFirst_ThenPromptChunksInAdmissionOrder()
    {
        var recorder = new RecordingStepRunner(new FakeStepRunner());
        using var gate = new ManualResetEventSlim(false);
        recorder.BeforeForward = step =>
        {
            if (step.Index == 0)
            {
                gate.Wait(); // hold the first step until the three requests below are queued
            }
        };
        using KvCachePool pool = SchedulerTestData.Pool();
        using var scheduler = new GenerationScheduler(recorder, SchedulerTestData.Tokenizer, pool,
            new SchedulerOptions { MaxActiveSequences = 3, MaxStepTokens = 8 });
        int[] blocker = [1], a = [1, 2, 3], b = [.. Enumerable.Range(100, 20)], c = [1, 5, 6, 7, 8];
        Task<GenerationOutcome> first = scheduler.Submit(new GenerationRequest(blocker, 1, SamplingOptions.Greedy)).Completion;
        while (recorder.StepsStarted == 0)
        {
            await Task.Delay(1);
        }
        Task<GenerationOutcome>[] rest = [.. new[] { a, b, c }.Select(p => scheduler.Submit(new GenerationRequest(p, 4, SamplingOptions.Greedy)).Completion)];
        gate.Set();
        await first.Within();
        foreach (Task<GenerationOutcome> task in rest)
        {
            Assert.Equal(4, (await task.Within()).CompletionTokens);
        }

        IReadOnlyList<StepRecord> steps = recorder.Steps;
        string Plan(StepRecord s) => string.Join(" ", s.Tokens.Select((t, i) => $"{t.Length}{(s.Logits[i] == LogitsWanted.Last ? "L" : "N")}"));
        // Step 1: a's whole prompt (3, logits), then b's first 5 tokens (no logits); c waits for budget.
        Assert.Equal("3L 5N", Plan(steps[1]));
        // Step 2: a decodes (1), b continues with 7.  Step 3: a decodes, b's last 8 tokens do not fit: 7 more.
        Assert.Equal("1L 7N", Plan(steps[2]));
        Assert.Equal("1L 7N", Plan(steps[3]));
        // Step 4: a's fourth token ends it; b's last prompt token asks for logits and c's whole prompt fits.
        Assert.Equal("1L 1L 5L", Plan(steps[4]));
        Assert.Equal("1L 1L", Plan(steps[5]));
        Assert.All(steps, s => Assert.True(s.TokenCount <= 8));
        KvSequence? cacheB = recorder.CacheOf(b);
        IEnumerable<int[]> chunksOfB = steps.SelectMany(s => Enumerable.Range(0, s.Caches.Length)
            .Where(i => ReferenceEquals(s.Caches[i], cacheB) && s.Starts[i] < b.Length).Select(i => s.Tokens[i]));
        Assert.Equal(b, chunksOfB.SelectMany(t => t));
        Assert.Equal(0, pool.UsedBlocks);
    }

    [Fact]
    public async Task ManyRequests_FromSeveralThreads_WithRandomCancellations_AllFinish_NoBlocksLeak()
    {
        var runner = new FakeStepRunner(maxBatchTokens: 32)
        {
            NextToken = (first, length) => (first + length) % 23 == 0 ? Eos : 1000 + length,
            BeforeForward = _ => Thread.SpinWait(2000),
        };
        // Room for about three average requests at once, so admission also waits for blocks.
        using KvCachePool pool = SchedulerTestData.Pool(positions: 160);
        using var scheduler = new GenerationScheduler(runner, SchedulerTestData.Tokenizer, pool,
            new SchedulerOptions { MaxActiveSequences = 4, MaxQueuedRequests = 100, MaxStepTokens = 16 });
        const int Threads = 4, PerThread = 15;
        var tasks = new Task<GenerationOutcome>[Threads * PerThread];
        var sources = new CancellationTokenSource[tasks.Length];
        var cancels = new Task[tasks.Length];
        await Task.WhenAll(Enumerable.Range(0, Threads).Select(t => Task.Run(async () =>
        {
            var random = new Random(5 + t);
            for (int j = 0; j < PerThread; j++)
            {
                int i = t * PerThread + j;
                int[] prompt = [.. Enumerable.Range(0, random.Next(1, 40)).Select(_ => random.Next(3, 32000))];
                sources[i] = new CancellationTokenSource();
                cancels[i] = Task.CompletedTask;
                switch (random.Next(6))
                {
                    case 0:
                        sources[i].CancelAfter(random.Next(0, 30));
                        break;
                    case 1:
                        int delay = random.Next(0, 30);
                        CancellationTokenSource source = sources[i];
                        cancels[i] = Task.Run(async () =>
                        {
                            await Task.Delay(delay);
                            await source.CancelAsync(); // callbacks run later, on the thread pool
                        });
                        break;
                }
                tasks[i] = scheduler.Submit(new GenerationRequest(prompt, random.Next(0, 40), SamplingOptions.Greedy), sources[i].Token).Completion;
                if (random.Next(3) == 0)
                {
                    await Task.Delay(1);
                }
            }
        })));
        await Task.WhenAll(tasks.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default))).WaitAsync(TimeSpan.FromSeconds(15));
        Assert.All(tasks, t => Assert.True(t.IsCompletedSuccessfully || t.IsCanceled, t.Exception?.ToString()));
        SchedulerStats stats = scheduler.Stats;
        Assert.Equal(tasks.Length, stats.CompletedRequests + stats.CanceledRequests);
        Assert.Equal(0, stats.FailedRequests);
        Assert.True(stats.MaxSequencesPerStep > 1);
        Assert.Equal(0, scheduler.ActiveCount);
        Assert.Equal(0, scheduler.QueuedCount);
        Assert.Equal(0, pool.UsedBlocks);
        await Task.WhenAll(cancels);
        foreach (var cts in sources)
        {
            cts.Dispose();
        }
    }

    [Fact]
    public async Task Adapter_ReachesTheForwardPass_WithItsSequence()
    {
        var recorder = new RecordingStepRunner(new FakeStepRunner());
        using KvCachePool pool = SchedulerTestData.Pool();
        using var scheduler = new GenerationScheduler(recorder, SchedulerTestData.Tokenizer, pool, new SchedulerOptions());
        var adapter = new NoAdapter();
        int[] prompt = [1, 42, 43];
        await scheduler.Submit(new GenerationRequest(prompt, 3, SamplingOptions.Greedy, adapter)).Completion.Within();
        await scheduler.Submit(new GenerationRequest([1, 44], 3, SamplingOptions.Greedy)).Completion.Within();
        KvSequence? cache = recorder.CacheOf(prompt);
        Assert.All(recorder.Steps, s =>
        {
            for (int i = 0; i < s.Caches.Length; i++)
            {
                Assert.Same(ReferenceEquals(s.Caches[i], cache) ? adapter : null, s.Adapters[i]);
            }
        });
    }

    private sealed class NoAdapter : IProjectionAdapter
    {
        public bool Targets(int layer, LlamaTensorRole role) => false;

        public void AddDelta(int layer, LlamaTensorRole role, ReadOnlySpan<float> input, Span<float> output)
        {
        }
    }
}
