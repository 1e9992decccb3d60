// The scheduler's state for one request, from submission to its outcome: the prompt and how much of it is prefilled,
// the KV sequence, the request's own Sampler, TokenHistory and StreamingDetokenizer (the same per-sequence state
// TextGenerator keeps in locals), the output channel, the completion and the timestamps.

using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using Sirocco.Engine.Model;
using Sirocco.Engine.Sampling;
using Sirocco.Engine.Tokenization;

namespace Sirocco.Engine.Scheduling;

/// <summary>Where a request is in its life. Changed only under the scheduler's lock.</summary>
internal enum SequencePhase
{
    /// <summary>Waiting in the queue, holding no KV blocks.</summary>
    Queued,

    /// <summary>In the running batch, with its KV blocks reserved.</summary>
    Active,

    /// <summary>Finished, failed or canceled; its blocks are back in the pool.</summary>
    Done,
}

/// <summary>One request inside the scheduler. Fields marked "engine thread" are touched by the engine thread only;
/// <see cref="Phase"/>, <see cref="Node"/> and <see cref="Registration"/> only under the scheduler's lock.</summary>
internal sealed class ScheduledSequence
{
    private bool _cancelRequested;

    public ScheduledSequence(long id, GenerationRequest request, int[] prompt, int limit, int vocabSize, Tokenizer tokenizer,
        CancellationToken cancellationToken)
    {
        Id = id;
        Prompt = prompt;
        Limit = limit;
        Adapter = request.Adapter;
        StopSequences = [.. request.StopSequences];
        CancellationToken = cancellationToken;
        Sampler = new Sampler(request.Sampling, vocabSize);
        History = new TokenHistory(vocabSize);
        History.AddPrompt(prompt);
        Detokenizer = tokenizer.CreateStreamingDetokenizer();
        Tokens = new List<int>(Math.Min(limit, 1024));
        Output = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleWriter = true, AllowSynchronousContinuations = false });
        Completion = new TaskCompletionSource<GenerationOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
        SubmittedAt = Stopwatch.GetTimestamp();
    }

    public long Id { get; }

    public int[] Prompt { get; }

    /// <summary>Most tokens to generate (MaxTokens; validation keeps prompt + limit within the context).</summary>
    public int Limit { get; }

    public IProjectionAdapter? Adapter { get; }

    /// <summary>The caller's token; cancellation through it completes <see cref="Completion"/> as canceled by it.</summary>
    public CancellationToken CancellationToken { get; }

    public Sampler Sampler { get; }

    public TokenHistory History { get; }

    public StreamingDetokenizer Detokenizer { get; }

    /// <summary>Generated ids (engine thread).</summary>
    public List<int> Tokens { get; }

    /// <summary>The request's stop sequences (empty: none).</summary>
    public string[] StopSequences { get; }

    /// <summary>Detokenized text not yet released because it could be the start of a stop sequence (engine thread).</summary>
    public StringBuilder Pending { get; } = new();

    /// <summary>A stop sequence appeared; nothing more is released (engine thread).</summary>
    public bool StopHit { get; set; }

    /// <summary>Text released so far (engine thread).</summary>
    public StringBuilder Text { get; } = new();

    public Channel<string> Output { get; }

    public TaskCompletionSource<GenerationOutcome> Completion { get; }

    /// <summary>Stopwatch timestamps: submitted, admitted, first token sampled (0 until then).</summary>
    public long SubmittedAt { get; }

    public long AdmittedAt { get; set; }

    public long FirstTokenAt { get; set; }

    /// <summary>Lock-guarded life stage.</summary>
    public SequencePhase Phase { get; set; } = SequencePhase.Queued;

    /// <summary>The node in the queue while <see cref="Phase"/> is Queued (lock-guarded).</summary>
    public LinkedListNode<ScheduledSequence>? Node { get; set; }

    /// <summary>The registration on <see cref="CancellationToken"/>, unregistered when the request is done
    /// (lock-guarded).</summary>
    public CancellationTokenRegistration Registration { get; set; }

    /// <summary>Set by the cancellation callback or shutdown while Active; the engine drops the sequence before its
    /// next step.</summary>
    public bool CancelRequested
    {
        get => Volatile.Read(ref _cancelRequested);
        set => Volatile.Write(ref _cancelRequested, value);
    }

    /// <summary>True once the caller's token fired or <see cref="CancelRequested"/> was set. The token is read directly
    /// so a cancellation counts from the moment it fires, even while its callback waits for a thread (CancelAsync).</summary>
    public bool IsCanceled => CancelRequested || CancellationToken.IsCancellationRequested;

    /// <summary>The KV sequence with prompt + limit positions reserved, from admission until done (engine thread).</summary>
    public KvSequence? Cache { get; set; }

    /// <summary>Prompt tokens already run through the model (engine thread).</summary>
    public int Prefilled { get; set; }

    /// <summary>True once the whole prompt is in the cache: the sequence then feeds <see cref="NextToken"/> each step.</summary>
    public bool IsDecoding => Prefilled == Prompt.Length;

    /// <summary>The last sampled token, the next step's input ([1], reused every step so decode allocates nothing).</summary>
    public int[] NextToken { get; } = new int[1];

    /// <summary>Set when the engine retired the sequence; it leaves the running list after the step (engine thread).</summary>
    public bool IsRetired { get; set; }
}
