// Step runners for the scheduler tests: RecordingStepRunner wraps a real model (or anything) and records every batch,
// with a hook that runs inside the step (to gate it, slow it, cancel from it or make it throw); FakeStepRunner needs
// no model at all and scripts the next token, so EOS and exact step plans are easy to arrange.

using Sirocco.Engine.Model;
using Sirocco.Engine.Scheduling;
using Sirocco.Engine.Synthesis;
using Sirocco.Engine.Tests.Model;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Tests.Scheduling;

/// <summary>One forward pass as the scheduler asked for it.</summary>
/// <param name="Index">0 for the first step.</param>
/// <param name="Caches">Each input's KV sequence, in input order.</param>
/// <param name="Starts">Each input's cache length before the step (its first token's position).</param>
/// <param name="Tokens">Each input's token ids.</param>
/// <param name="Logits">What each input asked for.</param>
/// <param name="Adapters">Each input's adapter.</param>
internal sealed record StepRecord(int Index, KvSequence[] Caches, int[] Starts, int[][] Tokens, LogitsWanted[] Logits, IProjectionAdapter?[] Adapters)
{
    public int TokenCount => Tokens.Sum(t => t.Length);

    public bool Includes(KvSequence? cache) => cache is not null && Caches.Any(c => ReferenceEquals(c, cache));

    /// <summary>The input index whose tokens begin <paramref name="prompt"/> at position 0, or −1.</summary>
    public int IndexOfPromptStart(int[] prompt)
    {
        for (int i = 0; i < Caches.Length; i++)
        {
            if (Starts[i] == 0 && Tokens[i].Length <= prompt.Length && Tokens[i].AsSpan().SequenceEqual(prompt.AsSpan(0, Tokens[i].Length)))
            {
                return i;
            }
        }
        return -1;
    }
}

/// <summary>Records every batch, runs <see cref="BeforeForward"/> inside the step, then forwards to the inner runner.</summary>
internal sealed class RecordingStepRunner(IStepRunner inner) : IStepRunner
{
    private readonly Lock _lock = new();
    private readonly List<StepRecord> _steps = [];

    public ModelConfig Config => inner.Config;

    public int MaxBatchTokens => inner.MaxBatchTokens;

    /// <summary>Runs on the engine thread inside each step, before the inner forward pass.</summary>
    public Action<StepRecord>? BeforeForward { get; set; }

    /// <summary>Steps begun so far.</summary>
    public int StepsStarted
    {
        get
        {
            lock (_lock)
            {
                return _steps.Count;
            }
        }
    }

    public IReadOnlyList<StepRecord> Steps
    {
        get
        {
            lock (_lock)
            {
                return [.. _steps];
            }
        }
    }

    public void Forward(ReadOnlySpan<SequenceInput> inputs)
    {
        var caches = new KvSequence[inputs.Length];
        var starts = new int[inputs.Length];
        var tokens = new int[inputs.Length][];
        var logits = new LogitsWanted[inputs.Length];
        var adapters = new IProjectionAdapter?[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
        {
            caches[i] = inputs[i].Cache;
            starts[i] = inputs[i].Cache.Length;
            tokens[i] = inputs[i].Tokens.ToArray();
            logits[i] = inputs[i].Logits;
            adapters[i] = inputs[i].Adapter;
        }
        StepRecord record;
        lock (_lock)
        {
            record = new StepRecord(_steps.Count, caches, starts, tokens, logits, adapters);
            _steps.Add(record);
        }
        BeforeForward?.Invoke(record);
        inner.Forward(inputs);
    }

    public ReadOnlySpan<float> Logits(int row) => inner.Logits(row);

    /// <summary>The KV sequence that ran <paramref name="prompt"/> from step <paramref name="fromStep"/> on, found by its
    /// first chunk; null if it never ran.</summary>
    public KvSequence? CacheOf(int[] prompt, int fromStep = 0)
    {
        foreach (StepRecord step in Steps.Skip(fromStep))
        {
            int i = step.IndexOfPromptStart(prompt);
            if (i >= 0)
            {
                return step.Caches[i];
            }
        }
        return null;
    }
}

/// <summary>A model-free runner: appends positions to each cache and, for each input asking Last, leaves a logits row
/// whose only high value is <see cref="NextToken"/>(first prompt token, cache length after the step).</summary>
internal sealed class FakeStepRunner(int maxBatchTokens = 64) : IStepRunner
{
    private readonly Dictionary<KvSequence, int> _firstToken = new(ReferenceEqualityComparer.Instance);
    private readonly List<float[]> _rows = [];
    private int _rowCount;

    public ModelConfig Config => TinyModels.Config;

    public int MaxBatchTokens { get; } = maxBatchTokens;

    /// <summary>The token to make most likely, from (the sequence's first prompt token, its length after the step).
    /// Default: 1000 + length, an ordinary piece.</summary>
    public Func<int, int, int> NextToken { get; set; } = static (_, length) => 1000 + length;

    /// <summary>Runs on the engine thread inside each step, before anything is written.</summary>
    public Action<int>? BeforeForward { get; set; }

    public int StepCount { get; private set; }

    public void Forward(ReadOnlySpan<SequenceInput> inputs)
    {
        BeforeForward?.Invoke(StepCount++);
        _rowCount = 0;
        foreach (SequenceInput input in inputs)
        {
            if (input.Cache.Length == 0)
            {
                _firstToken[input.Cache] = input.Tokens.Span[0];
            }
            int length = input.Cache.Length + input.Tokens.Length;
            input.Cache.Reserve(length);
            input.Cache.SetLength(length);
            if (input.Logits == LogitsWanted.Last)
            {
                if (_rowCount == _rows.Count)
                {
                    _rows.Add(new float[Config.VocabSize]);
                }
                float[] row = _rows[_rowCount++];
                Array.Clear(row);
                row[NextToken(_firstToken[input.Cache], length)] = 10;
            }
        }
    }

    public ReadOnlySpan<float> Logits(int row) => _rows[row];
}

internal static class SchedulerTestData
{
    private static readonly Lazy<Tokenizer> s_tokenizer = new(SyntheticTokenizers.MistralTokenizer);

    public static Tokenizer Tokenizer => s_tokenizer.Value;

    /// <summary>A pool over the tiny shape holding <paramref name="positions"/> positions in blocks of 8.</summary>
    public static KvCachePool Pool(int positions = 4096) =>
        new(TinyModels.Config, KvCacheOptions.ForPositions(TinyModels.Config, positions, KvCacheType.F32, blockSize: 8));

    /// <summary>Waits for a task with a generous limit, so a hang fails the test instead of stalling the run.</summary>
    public static async Task<T> Within<T>(this Task<T> task, int seconds = 10)
    {
        await task.WaitAsync(TimeSpan.FromSeconds(seconds));
        return await task;
    }

    /// <summary>Reads a stream's text channel to its end and joins the pieces.</summary>
    public static async Task<string> ReadAllText(GenerationStream stream)
    {
        var text = new System.Text.StringBuilder();
        await foreach (string piece in stream.Text.ReadAllAsync())
        {
            Assert.NotEmpty(piece);
            text.Append(piece);
        }
        return text.ToString();
    }
}
