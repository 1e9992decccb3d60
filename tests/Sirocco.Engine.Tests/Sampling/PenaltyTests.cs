// Repetition, frequency and presence penalties change exactly the logits they should, by exactly the specified amount,
// and TokenHistory keeps the counts they read.

using Sirocco.Engine.Sampling;

namespace Sirocco.Engine.Tests.Sampling;

public class PenaltyTests
{
    private static readonly float[] s_logits = [2.0f, -1.0f, 0.5f, 3.0f, 0.0f, -2.0f];

    /// <summary>Prompt [0, 1]; generated 3, 3, 1, 4. Seen: 0, 1, 3, 4. Generated counts: 1 → 1, 3 → 2, 4 → 1.</summary>
    private static TokenHistory History()
    {
        var history = new TokenHistory(s_logits.Length);
        history.AddPrompt([0, 1]);
        foreach (int token in new[] { 3, 3, 1, 4 })
        {
            history.Accept(token);
        }
        return history;
    }

    private static float[] Apply(SamplingOptions options)
    {
        float[] logits = (float[])s_logits.Clone();
        Sampler.ApplyPenalties(logits, History(), options);
        return logits;
    }

    [Fact]
    public void History_CountsGeneratedTokensAndRemembersPromptTokens()
    {
        var history = History();
        Assert.Equal([0, 1, 3, 4], history.SeenTokens.ToArray());
        Assert.Equal(4, history.GeneratedCount);
        Assert.Equal([0, 1, 0, 2, 1, 0], Enumerable.Range(0, 6).Select(history.TimesGenerated));
        Assert.True(history.WasSeen(0));
        Assert.False(history.WasSeen(2));

        history.Clear();
        Assert.Equal(0, history.SeenTokens.Length);
        Assert.Equal(0, history.GeneratedCount);
        Assert.All(Enumerable.Range(0, 6), t => Assert.False(history.WasSeen(t)));
        Assert.All(Enumerable.Range(0, 6), t => Assert.Equal(0, history.TimesGenerated(t)));
    }

    [Fact]
    public void History_RejectsIdsOutsideTheVocabulary()
    {
        var history = new TokenHistory(6);
        Assert.Throws<ArgumentOutOfRangeException>(() => history.Accept(6));
        Assert.Throws<ArgumentOutOfRangeException>(() => history.AddPrompt([0, -1]));
    }

    [Fact]
    public void RepetitionPenalty_DividesPositiveAndMultipliesNegativeLogitsOfSeenTokens()
    {
        float[] logits = Apply(new SamplingOptions { RepetitionPenalty = 1.5 });
        float[] expected = [(float)(2.0 / 1.5), (float)(-1.0 * 1.5), 0.5f, (float)(3.0 / 1.5), 0f, -2f];
        Assert.Equal(expected, logits);
    }

    [Fact]
    public void RepetitionPenaltyBelowOne_EncouragesRepeats()
    {
        float[] logits = Apply(new SamplingOptions { RepetitionPenalty = 0.5 });
        float[] expected = [4f, -0.5f, 0.5f, 6f, 0f, -2f];
        Assert.Equal(expected, logits);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.0)] // documented: 0 is treated as off, not as a division by zero
    public void RepetitionPenaltyOneOrZero_ChangesNothing(double penalty)
    {
        Assert.Equal(s_logits, Apply(new SamplingOptions { RepetitionPenalty = penalty }));
    }

    [Fact]
    public void FrequencyAndPresence_SubtractCountTimesFrequencyPlusPresence_OverGeneratedTokensOnly()
    {
        float[] logits = Apply(new SamplingOptions { FrequencyPenalty = 0.25, PresencePenalty = 0.5 });
        // Token 0 was only in the prompt: untouched. 1: once (−0.75). 3: twice (−1.0). 4: once (−0.75).
        float[] expected = [2f, -1.75f, 0.5f, 2f, -0.75f, -2f];
        Assert.Equal(expected, logits);
    }

    [Fact]
    public void NegativeFrequencyAndPresence_RaiseRepeatedTokens()
    {
        float[] logits = Apply(new SamplingOptions { FrequencyPenalty = -0.5, PresencePenalty = -1 });
        float[] expected = [2f, 0.5f, 0.5f, 5f, 1.5f, -2f];
        Assert.Equal(expected, logits);
    }

    [Fact]
    public void AllPenalties_RepetitionFirstThenFrequencyAndPresence()
    {
        float[] logits = Apply(new SamplingOptions { RepetitionPenalty = 1.5, FrequencyPenalty = 0.25, PresencePenalty = 0.5 });
        float[] expected =
        [
            (float)(2.0 / 1.5), // prompt only: repetition
            (float)(-1.0 * 1.5 - (1 * 0.25 + 0.5)), // prompt and generated once
            0.5f, // never seen
            (float)(3.0 / 1.5 - (2 * 0.25 + 0.5)), // generated twice
            (float)(0.0 - (1 * 0.25 + 0.5)), // logit 0 stays 0 under repetition, then generated once
            -2f,
        ];
        Assert.Equal(expected, logits);
    }
}
