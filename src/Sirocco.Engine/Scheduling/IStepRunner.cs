// The scheduler's view of the model: one batched forward pass and its logits. LlamaStepRunner forwards to a real
// LlamaModel; tests substitute fakes (scripted logits, gates, failures) to drive the step loop deterministically.

using Sirocco.Engine.Model;

namespace Sirocco.Engine.Scheduling;

/// <summary>Runs batched forward passes for the scheduler; called from its engine thread only.</summary>
internal interface IStepRunner
{
    /// <summary>The model's shape (vocabulary and context length are what the scheduler reads).</summary>
    ModelConfig Config { get; }

    /// <summary>Most tokens one <see cref="Forward"/> takes.</summary>
    int MaxBatchTokens { get; }

    /// <summary>Runs the batch as <see cref="LlamaModel.Forward"/> does: appends each input's tokens to its cache.</summary>
    void Forward(ReadOnlySpan<SequenceInput> inputs);

    /// <summary>Logits row <paramref name="row"/> of the last <see cref="Forward"/>, rows in input order, one per input
    /// that asked <see cref="LogitsWanted.Last"/>.</summary>
    ReadOnlySpan<float> Logits(int row);
}

/// <summary>The real model behind <see cref="IStepRunner"/>.</summary>
internal sealed class LlamaStepRunner(LlamaModel model) : IStepRunner
{
    public ModelConfig Config => model.Config;

    public int MaxBatchTokens => model.MaxBatchTokens;

    public void Forward(ReadOnlySpan<SequenceInput> inputs) => model.Forward(inputs);

    public ReadOnlySpan<float> Logits(int row) => model.Logits(row);
}
