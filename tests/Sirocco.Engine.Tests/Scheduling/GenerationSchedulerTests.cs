// The scheduler on the real tiny model: same tokens as TextGenerator alone and batched (with chunked prefill),
// cancellation of running and queued requests, queue limits, KV admission, validation, shutdown and disposal. A
// RecordingStepRunner around the model shows which sequences each step held, and gates or slows steps where a test
// needs a request to be still running.

using Sirocco.Engine.Generation;
using Sirocco.Engine.Model;
using Sirocco.Engine.Sampling;
using Sirocco.Engine.Scheduling;
using Sirocco.Engine.Tests.Model;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Scheduling;

/// <summary>The tiny Q8_0 model, loaded once for the class (tests in a class run one at a time, and each scheduler
/// is disposed before the next test, so the model always has a single caller).</summary>
public sealed class TinySchedulerModel : IDisposable
{
    public TinySchedulerModel()
    {
        Model = new LlamaModel(WeightLoader.Load(TinyModels.Gguf(ModelFileType.Q8_0)), threads: 2, maxBatchTokens: 64);
    }

    public LlamaModel Model { get; }

    public void Dispose() => Model.Dispose();
}

public sealed class GenerationSchedulerTests(TinySchedulerModel fixture) : IClassFixture<TinySchedulerModel>
{
    private static Tokenizer Tokenizer => SchedulerTestData.Tokenizer;

    private static readonly int[] Short = Tokenizer.Encode("Hello there", addBos: true);
    private static readonly int[] Medium = Tokenizer.Encode("The quick brown fox jumps over the lazy dog.", addBos: true);
    private static readonly int[] Longer = Tokenizer.Encode("Continuous batching lets many requests share one forward pass, so the server stays busy.", addBos: true);
    private static readonly int[] Long = Tokenizer.Encode(
        "A long prompt, longer than the step budget, is prefilled in chunks across several steps while the other " +
        "sequences keep decoding one token per step; its last chunk asks for logits and it then joins the decoders.", addBos: true);

    private LlamaModel Model => fixture.Model;

    private KvCachePool NewPool(int positions = 2048) =>
        Model.CreateCache(KvCacheOptions.ForPositions(Model.Config, positions, KvCacheType.F32, blockSize: 8));

    private (GenerationScheduler Scheduler, RecordingStepRunner Runner) Start(KvCachePool pool, SchedulerOptions options)
    {
        var runner = new RecordingStepRunner(new LlamaStepRunner(Model));
        return (new GenerationScheduler(runner, Tokenizer, pool, options), runner);
    }

    private static SamplingOptions Seeded(int i) =>
        new() { Temperature = 0.9, TopK = 50, TopP = 0.95, RepetitionPenalty = 1.1, Seed = 100 + (ulong)i };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Tokens_EqualTextGenerator_AloneAndBatched(bool greedy)
    {
        Assert.True(Long.Length > 16, $"the long prompt has {Long.Length} tokens; it must exceed the step budget");
        int[][] prompts = [Short, Medium, Long, Longer];
        SamplingOptions[] sampling = [.. prompts.Select((_, i) => greedy ? SamplingOptions.Greedy : Seeded(i))];
        const int MaxTokens = 14;
        using KvCachePool pool = NewPool();

        var generator = new TextGenerator(Model, Tokenizer, pool);
        GenerationResult[] expected = [.. prompts.Select((p, i) => generator.Generate(p, MaxTokens, sampling[i]))];

        var (scheduler, runner) = Start(pool, new SchedulerOptions { MaxActiveSequences = 4, MaxStepTokens = 16 });
        using (scheduler)
        {
            // Alone: one request at a time.
            for (int i = 0; i < prompts.Length; i++)
            {
                GenerationStream stream = scheduler.Submit(new GenerationRequest(prompts[i], MaxTokens, sampling[i]));
                Task<string> pieces = SchedulerTestData.ReadAllText(stream);
                AssertSame(expected[i], await stream.Completion.Within(), await pieces, $"prompt {i} alone");
            }
            Assert.Equal(1, scheduler.Stats.MaxSequencesPerStep);

            // Together: four prompts of different lengths, the long one prefilled in chunks of the 16-token budget.
            int stepsBefore = runner.StepsStarted;
            GenerationStream[] streams = [.. prompts.Select((p, i) => scheduler.Submit(new GenerationRequest(p, MaxTokens, sampling[i])))];
            Task<string>[] texts = [.. streams.Select(SchedulerTestData.ReadAllText)];
            for (int i = 0; i < prompts.Length; i++)
            {
                AssertSame(expected[i], await streams[i].Completion.Within(), await texts[i], $"prompt {i} batched");
            }
            SchedulerStats stats = scheduler.Stats;
            Assert.True(stats.MaxSequencesPerStep > 1, $"at most {stats.MaxSequencesPerStep} sequence per step: nothing was batched");

            StepRecord[] batched = [.. runner.Steps.Skip(stepsBefore)];
            Assert.All(batched, step => Assert.True(step.TokenCount <= 16, $"step {step.Index} has {step.TokenCount} tokens"));
            KvSequence? longCache = runner.CacheOf(Long, fromStep: stepsBefore);
            StepRecord[] longPrefill = [.. batched.Where(s => s.Includes(longCache) && s.Tokens[Array.IndexOf(s.Caches, longCache)].Length > 1)];
            Assert.True(longPrefill.Length >= 2, "the long prompt was not chunked");
            Assert.Equal(Long, longPrefill.SelectMany(s => s.Tokens[Array.IndexOf(s.Caches, longCache)]));
            Assert.All(longPrefill[..^1], s => Assert.Equal(LogitsWanted.None, s.Logits[Array.IndexOf(s.Caches, longCache)]));
            Assert.Equal(LogitsWanted.Last, longPrefill[^1].Logits[Array.IndexOf(longPrefill[^1].Caches, longCache)]);
            Assert.Contains(batched, s => s.Logits.Contains(LogitsWanted.None) && s.Tokens.Any(t => t.Length == 1)); // decode + prefill mixed
        }
        Assert.Equal(0, pool.UsedBlocks);
    }

    private static void AssertSame(GenerationResult expected, GenerationOutcome actual, string streamed, string what)
    {
        Assert.True(expected.Tokens.SequenceEqual(actual.TokenIds), $"{what}: tokens [{string.Join(", ", actual.TokenIds)}], expected [{string.Join(", ", expected.Tokens)}]");
        Assert.Equal(expected.Text, actual.Text);
        Assert.Equal(actual.Text, streamed);
        Assert.Equal(expected.Finish, actual.Finish);
        Assert.Equal(expected.PromptTokens, actual.PromptTokens);
        Assert.Equal(expected.GeneratedTokens, actual.CompletionTokens);
        Assert.True(actual.Queued <= actual.TimeToFirstToken && actual.TimeToFirstToken <= actual.Elapsed,
            $"{what}: queued {actual.Queued}, first token {actual.TimeToFirstToken}, elapsed {actual.Elapsed}");
        Assert.True(actual.CompletionTokens < 2 || actual.DecodeTokensPerSecond > 0);
    }

    [Fact]
    public async Task CancelRunning_FromInsideAStep_NoLaterStepIncludesIt()
    {
        using KvCachePool pool = NewPool();
        var (scheduler, runner) = Start(pool, new SchedulerOptions { MaxActiveSequences = 2 });
        using (scheduler)
        {
            using var cts = new CancellationTokenSource();
            int cancelStep = -1;
            KvSequence? target = null;
            runner.BeforeForward = step =>
            {
                int i = step.IndexOfPromptStart(Medium);
                target ??= i >= 0 ? step.Caches[i] : null;
                if (cancelStep < 0 && step.Includes(target) && target!.Length >= Medium.Length + 3)
                {
                    cancelStep = step.Index;
                    cts.Cancel(); // while this step runs: it completes, and is the last to include the request
                }
            };
            GenerationStream canceled = scheduler.Submit(new GenerationRequest(Medium, 100, SamplingOptions.Greedy), cts.Token);
            GenerationStream other = scheduler.Submit(new GenerationRequest(Short, 30, SamplingOptions.Greedy));

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => canceled.Completion.Within());
            Assert.True(canceled.Completion.IsCanceled);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => SchedulerTestData.ReadAllText(canceled));
            GenerationOutcome outcome = await other.Completion.Within();
            Assert.Equal(30, outcome.CompletionTokens);

            Assert.True(cancelStep >= 0);
            Assert.DoesNotContain(runner.Steps, s => s.Index > cancelStep && s.Includes(target));
            Assert.Contains(runner.Steps, s => s.Index > cancelStep); // the other request kept running
            Assert.Equal(1, scheduler.Stats.CanceledRequests);
        }
        Assert.Equal(0, pool.UsedBlocks);
    }

    [Fact]
    public async Task CancelRunning_FromAnotherThread_AtMostOneMoreStep()
    {
        using KvCachePool pool = NewPool();
        var (scheduler, runner) = Start(pool, new SchedulerOptions());
        runner.BeforeForward = _ => Thread.Sleep(2); // keeps the 300-token request running for a while
        using (scheduler)
        {
            using var cts = new CancellationTokenSource();
            GenerationStream stream = scheduler.Submit(new GenerationRequest(Short, 300, SamplingOptions.Greedy), cts.Token);
            await stream.Text.WaitToReadAsync();
            int before = runner.StepsStarted;
            await cts.CancelAsync();

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stream.Completion.Within());
            KvSequence? cache = runner.CacheOf(Short);
            Assert.True(runner.Steps.Count(s => s.Index >= before && s.Includes(cache)) <= 1);
            Assert.Equal(0, pool.UsedBlocks); // returned before the completion was published
            Assert.Equal(0, scheduler.ActiveCount);
        }
    }

    [Fact]
    public async Task CancelQueued_CompletesAtOnce_AndNeverRuns()
    {
        using KvCachePool pool = NewPool();
        var (scheduler, runner) = Start(pool, new SchedulerOptions { MaxActiveSequences = 1 });
        using var gate = new ManualResetEventSlim(false);
        using var inStep = new SemaphoreSlim(0);
        runner.BeforeForward = _ =>
        {
            inStep.Release();
            gate.Wait();
        };
        using (scheduler)
        {
            GenerationStream running = scheduler.Submit(new GenerationRequest(Short, 5, SamplingOptions.Greedy));
            Assert.True(await inStep.WaitAsync(TimeSpan.FromSeconds(10)));
            using var cts = new CancellationTokenSource();
            GenerationStream queued = scheduler.Submit(new GenerationRequest(Medium, 5, SamplingOptions.Greedy), cts.Token);
            Assert.Equal(1, scheduler.QueuedCount);
            Assert.Equal(1, scheduler.ActiveCount);

            await cts.CancelAsync(); // the engine is stuck inside a step: the queued request completes anyway
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued.Completion.Within());
            Assert.Equal(0, scheduler.QueuedCount);

            gate.Set();
            Assert.Equal(5, (await running.Completion.Within()).CompletionTokens);
            Assert.Null(runner.CacheOf(Medium));
        }
        Assert.Equal(0, pool.UsedBlocks);
    }

    [Fact]
    public async Task CanceledBeforeSubmit_CompletesCanceled_AndNeverRuns()
    {
        using KvCachePool pool = NewPool();
        var (scheduler, runner) = Start(pool, new SchedulerOptions());
        using (scheduler)
        {
            GenerationStream stream = scheduler.Submit(new GenerationRequest(Medium, 5, SamplingOptions.Greedy), new CancellationToken(canceled: true));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stream.Completion.Within());
            Assert.Equal(5, (await scheduler.Submit(new GenerationRequest(Short, 5, SamplingOptions.Greedy)).Completion.Within()).CompletionTokens);
            Assert.Null(runner.CacheOf(Medium));
        }
        Assert.Equal(0, pool.UsedBlocks);
    }

    [Fact]
    public async Task QueueFull_ThrowsBusy_AndQueuedRequestsStillComplete()
    {
        using KvCachePool pool = NewPool();
        var (scheduler, runner) = Start(pool, new SchedulerOptions { MaxActiveSequences = 1, MaxQueuedRequests = 2 });
        using var gate = new ManualResetEventSlim(false);
        using var inStep = new SemaphoreSlim(0);
        runner.BeforeForward = _ =>
        {
            inStep.Release();
            gate.Wait();
        };
        using (scheduler)
        {
            var request = new GenerationRequest(Short, 4, SamplingOptions.Greedy);
            GenerationStream first = scheduler.Submit(request);
            Assert.True(await inStep.WaitAsync(TimeSpan.FromSeconds(10)));
            GenerationStream second = scheduler.Submit(request), third = scheduler.Submit(request);

            var busy = Assert.Throws<SchedulerBusyException>(() => scheduler.Submit(request));
            Assert.True(busy.RetryAfter >= TimeSpan.FromSeconds(1), $"RetryAfter {busy.RetryAfter}");
            Assert.Contains("1 requests running and 2 waiting", busy.Message);
            Assert.Equal(2, scheduler.QueuedCount);

            gate.Set();
            foreach (GenerationStream stream in new[] { first, second, third })
            {
                Assert.Equal(4, (await stream.Completion.Within()).CompletionTokens);
            }
            Assert.Equal(4, (await scheduler.Submit(request).Completion.Within()).CompletionTokens); // room again
        }
        Assert.Equal(0, pool.UsedBlocks);
    }

    [Fact]
    public async Task SmallPool_SecondRequestWaitsForTheFirstToFinish()
    {
        // 64 positions; each request reserves prompt + 30 > 32 positions, so only one fits at a time.
        using KvCachePool pool = NewPool(positions: 64);
        var (scheduler, runner) = Start(pool, new SchedulerOptions { MaxActiveSequences = 4 });
        var seen = new List<(int Active, int Queued)>();
        runner.BeforeForward = _ => seen.Add((scheduler.ActiveCount, scheduler.QueuedCount));
        using (scheduler)
        {
            GenerationStream a = scheduler.Submit(new GenerationRequest(Medium, 30, SamplingOptions.Greedy));
            GenerationStream b = scheduler.Submit(new GenerationRequest(Short, 30, SamplingOptions.Greedy));
            GenerationOutcome first = await a.Completion.Within(), second = await b.Completion.Within();
            Assert.Equal(30, first.CompletionTokens);
            Assert.Equal(30, second.CompletionTokens);
            Assert.True(second.Queued > TimeSpan.Zero);

            KvSequence? cacheA = runner.CacheOf(Medium), cacheB = runner.CacheOf(Short);
            int lastOfA = runner.Steps.Last(s => s.Includes(cacheA)).Index;
            int firstOfB = runner.Steps.First(s => s.Includes(cacheB)).Index;
            Assert.True(lastOfA < firstOfB, $"b ran at step {firstOfB} while a ran until step {lastOfA}");
            Assert.Equal(1, scheduler.Stats.MaxSequencesPerStep);
            Assert.Contains((1, 1), seen); // a running, b waiting for blocks
        }
        Assert.Equal(0, pool.UsedBlocks);
    }

    [Fact]
    public void InvalidRequests_ThrowArgumentExceptionNamingTheNumbers()
    {
        using KvCachePool pool = NewPool(positions: 64);
        var (scheduler, runner) = Start(pool, new SchedulerOptions());
        using (scheduler)
        {
            var greedy = SamplingOptions.Greedy;
            var e = Assert.Throws<ArgumentException>(() => scheduler.Submit(new GenerationRequest([], 5, greedy)));
            Assert.Contains("no tokens", e.Message);
            e = Assert.Throws<ArgumentException>(() => scheduler.Submit(new GenerationRequest([1, 32000], 5, greedy)));
            Assert.Contains("32000", e.Message);
            e = Assert.Throws<ArgumentException>(() => scheduler.Submit(new GenerationRequest([1, -3], 5, greedy)));
            Assert.Contains("-3", e.Message);
            e = Assert.Throws<ArgumentException>(() => scheduler.Submit(new GenerationRequest(Short, -1, greedy)));
            Assert.Contains("-1", e.Message);
            e = Assert.Throws<ArgumentException>(() => scheduler.Submit(new GenerationRequest(Short, 1, new SamplingOptions { Temperature = -1 })));
            Assert.Contains("Temperature", e.Message);

            int total = Short.Length + 510;
            e = Assert.Throws<ArgumentException>(() => scheduler.Submit(new GenerationRequest(Short, 510, greedy)));
            Assert.Contains($"{total} positions", e.Message);
            Assert.Contains("context holds 512", e.Message);

            int overPool = 65 - Short.Length;
            total = Short.Length + overPool;
            e = Assert.Throws<ArgumentException>(() => scheduler.Submit(new GenerationRequest(Short, overPool, greedy)));
            Assert.Contains($"{total} positions", e.Message);
            Assert.Contains("KV cache holds 64", e.Message);

            Assert.Equal(0, runner.StepsStarted);
            Assert.Equal(0, scheduler.QueuedCount);
        }
    }

    [Fact]
    public void InvalidOptions_AreRejected()
    {
        Assert.Empty(new SchedulerOptions().Validate());
        Assert.Equal(3, new SchedulerOptions { MaxActiveSequences = 0, MaxQueuedRequests = -1, MaxStepTokens = -2 }.Validate().Count);
        using KvCachePool pool = NewPool();
        var e = Assert.Throws<ArgumentException>(() => new GenerationScheduler(Model, Tokenizer, pool, new SchedulerOptions { MaxActiveSequences = 0 }));
        Assert.Contains("MaxActiveSequences", e.Message);
        e = Assert.Throws<ArgumentException>(() => new GenerationScheduler(Model, Tokenizer, pool, new SchedulerOptions { MaxStepTokens = 65 }));
        Assert.Contains("64", e.Message);
        e = Assert.Throws<ArgumentException>(() => new GenerationScheduler(Model, Tokenizer, pool, new SchedulerOptions { MaxActiveSequences = 9, MaxStepTokens = 8 }));
        Assert.Contains("9", e.Message);
    }

    [Fact]
    public async Task StopSequence_EndsBeforeIt_AndNoPartOfItIsStreamed()
    {
        using KvCachePool pool = NewPool();
        var (scheduler, _) = Start(pool, new SchedulerOptions());
        using (scheduler)
        {
            GenerationStream free = scheduler.Submit(new GenerationRequest(Medium, 40, SamplingOptions.Greedy));
            string text = (await free.Completion.Within()).Text;
            Assert.True(text.Length > 12, $"the free text is only \"{text}\"");
            // A stop sequence that starts inside one token's text and ends in a later one, and one that never occurs.
            string stop = text.Substring(text.Length / 2, 5);
            string expected = text[..text.IndexOf(stop, StringComparison.Ordinal)];

            GenerationStream stopped = scheduler.Submit(new GenerationRequest(Medium, 40, SamplingOptions.Greedy) { StopSequences = ["\u0001never", stop] });
            Task<string> pieces = SchedulerTestData.ReadAllText(stopped);
            GenerationOutcome outcome = await stopped.Completion.Within();

            Assert.Equal(expected, outcome.Text);
            Assert.Equal(expected, await pieces);
            Assert.Equal(FinishReason.Stop, outcome.Finish);
            Assert.True(outcome.CompletionTokens < (await free.Completion).CompletionTokens);

            // A stop sequence that never appears holds nothing back at the end.
            GenerationStream unmatched = scheduler.Submit(new GenerationRequest(Medium, 40, SamplingOptions.Greedy) { StopSequences = [text[^1] + "\u0001"] });
            Task<string> all = SchedulerTestData.ReadAllText(unmatched);
            Assert.Equal(text, (await unmatched.Completion.Within()).Text);
            Assert.Equal(text, await all);
        }
        Assert.Equal(0, pool.UsedBlocks);
    }

    [Fact]
    public async Task MaxTokensZero_CompletesAtOnceWithoutAForwardPass()
    {
        using KvCachePool pool = NewPool();
        var (scheduler, runner) = Start(pool, new SchedulerOptions());
        using (scheduler)
        {
            GenerationStream stream = scheduler.Submit(new GenerationRequest(Medium, 0, SamplingOptions.Greedy));
            Assert.True(stream.Completion.IsCompletedSuccessfully);
            GenerationOutcome outcome = await stream.Completion;
            Assert.Equal((Medium.Length, 0, FinishReason.Length, ""), (outcome.PromptTokens, outcome.CompletionTokens, outcome.Finish, outcome.Text));
            Assert.Equal("", await SchedulerTestData.ReadAllText(stream));
            Assert.Equal(0, runner.StepsStarted);
        }
    }

    [Fact]
    public async Task ForwardFailure_FailsThatStepsRequests_AndTheLoopKeepsServing()
    {
        using KvCachePool pool = NewPool();
        var (scheduler, runner) = Start(pool, new SchedulerOptions());
        runner.BeforeForward = step =>
        {
            if (step.Index == 3)
            {
                throw new InvalidOperationException("boom at step 3");
            }
        };
        using (scheduler)
        {
            GenerationStream failed = scheduler.Submit(new GenerationRequest(Short, 10, SamplingOptions.Greedy));
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() => failed.Completion.Within());
            Assert.Equal("boom at step 3", e.Message);
            await Assert.ThrowsAsync<InvalidOperationException>(() => SchedulerTestData.ReadAllText(failed));
            Assert.Equal(0, pool.UsedBlocks);

            GenerationOutcome next = await scheduler.Submit(new GenerationRequest(Short, 10, SamplingOptions.Greedy)).Completion.Within();
            Assert.Equal(10, next.CompletionTokens);
            Assert.Equal(1, scheduler.Stats.FailedRequests);
        }
        Assert.Equal(0, pool.UsedBlocks);
    }

    [Fact]
    public async Task Shutdown_LetsRunningAndQueuedFinishWithinGrace_ThenRefusesSubmissions()
    {
        using KvCachePool pool = NewPool();
        var (scheduler, _) = Start(pool, new SchedulerOptions { MaxActiveSequences = 1 });
        using (scheduler)
        {
            GenerationStream a = scheduler.Submit(new GenerationRequest(Short, 20, SamplingOptions.Greedy));
            GenerationStream b = scheduler.Submit(new GenerationRequest(Medium, 20, SamplingOptions.Greedy));
            await scheduler.ShutdownAsync(TimeSpan.FromSeconds(30)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(a.Completion.IsCompletedSuccessfully && b.Completion.IsCompletedSuccessfully);
            Assert.Equal(20, (await a.Completion).CompletionTokens);
            Assert.Equal(20, (await b.Completion).CompletionTokens);
            Assert.Throws<SchedulerStoppedException>(() => scheduler.Submit(new GenerationRequest(Short, 5, SamplingOptions.Greedy)));
            Assert.Throws<SchedulerStoppedException>(() => scheduler.Submit(new GenerationRequest(Short, 0, SamplingOptions.Greedy)));
            await scheduler.ShutdownAsync(TimeSpan.Zero); // again: already idle
        }
        Assert.Equal(0, pool.UsedBlocks);
    }

    [Fact]
    public async Task Shutdown_PastGrace_CancelsRunningAndQueued()
    {
        using KvCachePool pool = NewPool();
        var (scheduler, runner) = Start(pool, new SchedulerOptions { MaxActiveSequences = 1 });
        runner.BeforeForward = _ => Thread.Sleep(5); // 400 tokens take seconds
        using (scheduler)
        {
            GenerationStream running = scheduler.Submit(new GenerationRequest(Short, 400, SamplingOptions.Greedy));
            GenerationStream queued = scheduler.Submit(new GenerationRequest(Medium, 5, SamplingOptions.Greedy));
            await running.Text.WaitToReadAsync();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await scheduler.ShutdownAsync(TimeSpan.FromMilliseconds(100)).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"shutdown took {clock.Elapsed}");
            Assert.True(running.Completion.IsCanceled);
            Assert.True(queued.Completion.IsCanceled);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => SchedulerTestData.ReadAllText(running));
            Assert.Null(runner.CacheOf(Medium));
            Assert.Equal(0, scheduler.ActiveCount);
            Assert.Equal(0, pool.UsedBlocks);
        }
    }

    [Fact]
    public async Task Dispose_CancelsEverything_AndNeverHangs()
    {
        using KvCachePool pool = NewPool();
        var (scheduler, runner) = Start(pool, new SchedulerOptions { MaxActiveSequences = 1 });
        runner.BeforeForward = _ => Thread.Sleep(5);
        GenerationStream running = scheduler.Submit(new GenerationRequest(Short, 400, SamplingOptions.Greedy));
        GenerationStream queued = scheduler.Submit(new GenerationRequest(Medium, 5, SamplingOptions.Greedy));
        await running.Text.WaitToReadAsync();

        await Task.Run(scheduler.Dispose).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(running.Completion.IsCanceled);
        Assert.True(queued.Completion.IsCanceled);
        Assert.Equal(0, pool.UsedBlocks);
        scheduler.Dispose(); // twice is fine
        Assert.Throws<SchedulerStoppedException>(() => scheduler.Submit(new GenerationRequest(Short, 5, SamplingOptions.Greedy)));
        await scheduler.ShutdownAsync(TimeSpan.Zero).WaitAsync(TimeSpan.FromSeconds(10));

        // An idle scheduler disposes at once too.
        using KvCachePool other = NewPool();
        var (idle, _) = Start(other, new SchedulerOptions());
        await Task.Run(idle.Dispose).WaitAsync(TimeSpan.FromSeconds(10));
    }
}
