// Generates text for one sequence: prefill the prompt in chunks, then sample one token per forward pass until EOS or
// the token limit, handing each piece of text to the caller as soon as the streaming detokenizer has whole
// characters. The HTTP server batches many sequences through its scheduler; this is the one-sequence loop that
// `sirocco run` uses and that the scheduler's per-sequence state mirrors.

using System.Diagnostics;
using Sirocco.Engine.Model;
using Sirocco.Engine.Sampling;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Generation;

/// <summary>Why generation stopped.</summary>
public enum FinishReason
{
    /// <summary>The model produced its end-of-sequence token.</summary>
    Stop,

    /// <summary>The token limit (or the context) was reached.</summary>
    Length,
}

/// <summary>What a <see cref="TextGenerator.Generate"/> call did.</summary>
public sealed record GenerationResult(int PromptTokens, IReadOnlyList<int> Tokens, string Text, FinishReason Finish, TimeSpan Prefill, TimeSpan Decode)
{
    public int GeneratedTokens => Tokens.Count;

    /// <summary>Prompt tokens per second of prefill.</summary>
    public double PrefillTokensPerSecond => PromptTokens / Math.Max(Prefill.TotalSeconds, 1e-9);

    /// <summary>Generated tokens per second after the first (the first comes from the prefill's logits).</summary>
    public double DecodeTokensPerSecond => Math.Max(0, GeneratedTokens - 1) / Math.Max(Decode.TotalSeconds, 1e-9);
}

/// <summary>Runs generation for one sequence at a time on a model.</summary>
public sealed class TextGenerator
{
    private readonly LlamaModel _model;
    private readonly Tokenizer _tokenizer;
    private readonly KvCachePool _cache;
    private readonly float[] _logits;

    /// <param name="adapter">A LoRA adapter applied to every generation, or null for the base model.</param>
    public TextGenerator(LlamaModel model, Tokenizer tokenizer, KvCachePool cache, IProjectionAdapter? adapter = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(cache);
        if (tokenizer.VocabSize > model.Config.VocabSize)
        {
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens but the model only {model.Config.VocabSize}", nameof(tokenizer));
        }
        _model = model;
        _tokenizer = tokenizer;
        _cache = cache;
        _logits = new float[model.Config.VocabSize];
        Adapter = adapter;
    }

    /// <summary>The adapter every generation runs with, or null.</summary>
    public IProjectionAdapter? Adapter { get; }

    /// <summary>Generates up to <paramref name="maxTokens"/> tokens after <paramref name="prompt"/>, calling
    /// <paramref name="onText"/> with each new piece of text (never half a UTF-8 character).</summary>
    /// <exception cref="ArgumentException">Bad options, an empty prompt, or a prompt that does not fit the context.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired.</exception>
    public GenerationResult Generate(IReadOnlyList<int> prompt, int maxTokens, SamplingOptions sampling, Action<string>? onText = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(sampling);
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        IReadOnlyList<string> problems = sampling.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", problems), nameof(sampling));
        }
        if (prompt.Count == 0)
        {
            throw new ArgumentException("the prompt has no tokens", nameof(prompt));
        }
        int context = _model.Config.ContextLength;
        if (prompt.Count >= context)
        {
            throw new ArgumentException($"the prompt has {prompt.Count} tokens; the context holds {context}", nameof(prompt));
        }

        var sampler = new Sampler(sampling, _model.Config.VocabSize);
        var history = new TokenHistory(_model.Config.VocabSize);
        int[] promptIds = [.. prompt];
        history.AddPrompt(promptIds);
        StreamingDetokenizer detokenizer = _tokenizer.CreateStreamingDetokenizer();
        var generated = new List<int>();
        var text = new System.Text.StringBuilder();
        FinishReason finish = FinishReason.Length;
        using KvSequence sequence = _cache.CreateSequence();

        var clock = Stopwatch.StartNew();
        cancellationToken.ThrowIfCancellationRequested();
        _model.Prefill(sequence, promptIds, LogitsWanted.Last, cancellationToken.ThrowIfCancellationRequested, Adapter);
        TimeSpan prefill = clock.Elapsed;
        clock.Restart();

        int[] next = new int[1];
        int limit = Math.Min(maxTokens, context - promptIds.Length);
        for (int i = 0; i < limit; i++)
        {
            if (i > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                _model.Forward([new SequenceInput(sequence, next, LogitsWanted.Last, Adapter)]);
            }
            _model.Logits(0).CopyTo(_logits);
            int token = sampler.Sample(_logits, history);
            if (token == _tokenizer.EosId)
            {
                finish = FinishReason.Stop;
                break;
            }
            history.Accept(token);
            generated.Add(token);
            Emit(detokenizer.Push(token));
            next[0] = token;
        }
        Emit(detokenizer.Flush());
        return new GenerationResult(promptIds.Length, generated, text.ToString(), finish, prefill, clock.Elapsed);

        void Emit(string piece)
        {
            if (piece.Length > 0)
            {
                text.Append(piece);
                onText?.Invoke(piece);
            }
        }
    }
}
