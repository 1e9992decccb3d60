// SamplingOptions.Validate: every range of the Workers AI schemas is accepted, NaN, infinities and out-of-range values
// are reported by name.

using Sirocco.Engine.Sampling;

namespace Sirocco.Engine.Tests.Sampling;

public class SamplingOptionsTests
{
    [Fact]
    public void Defaults_AreValid_WithWorkersAiTemperatureAndEverythingElseOff()
    {
        var options = new SamplingOptions();
        Assert.Empty(options.Validate());
        Assert.Equal(0.6, options.Temperature);
        Assert.Equal(1, options.TopP);
        Assert.Equal(0, options.TopK);
        Assert.Equal(1, options.RepetitionPenalty);
        Assert.Equal(0, options.FrequencyPenalty);
        Assert.Equal(0, options.PresencePenalty);
        Assert.Null(options.Seed);
        Assert.True(SamplingOptions.Greedy.IsGreedy);
        Assert.False(options.IsGreedy);
    }

    [Fact]
    public void SchemaExtremes_AreValid()
    {
        var low = new SamplingOptions
        {
            Temperature = 0, TopP = 0, TopK = 0, RepetitionPenalty = 0, FrequencyPenalty = -2, PresencePenalty = -2, Seed = 1,
        };
        var high = new SamplingOptions
        {
            Temperature = 5, TopP = 2, TopK = 50, RepetitionPenalty = 2, FrequencyPenalty = 2, PresencePenalty = 2,
            Seed = 9_999_999_999,
        };
        Assert.Empty(low.Validate());
        Assert.Empty(high.Validate());
    }

    public static TheoryData<SamplingOptions, string> Invalid => new()
    {
        { new SamplingOptions { Temperature = double.NaN }, "Temperature" },
        { new SamplingOptions { Temperature = -0.1 }, "Temperature" },
        { new SamplingOptions { Temperature = double.PositiveInfinity }, "Temperature" },
        { new SamplingOptions { Temperature = 5.01 }, "Temperature" },
        { new SamplingOptions { TopP = double.NaN }, "TopP" },
        { new SamplingOptions { TopP = -0.5 }, "TopP" },
        { new SamplingOptions { TopP = 2.5 }, "TopP" },
        { new SamplingOptions { TopK = -1 }, "TopK" },
        { new SamplingOptions { RepetitionPenalty = double.NaN }, "RepetitionPenalty" },
        { new SamplingOptions { RepetitionPenalty = -1 }, "RepetitionPenalty" },
        { new SamplingOptions { RepetitionPenalty = 2.5 }, "RepetitionPenalty" },
        { new SamplingOptions { FrequencyPenalty = double.NaN }, "FrequencyPenalty" },
        { new SamplingOptions { FrequencyPenalty = -2.1 }, "FrequencyPenalty" },
        { new SamplingOptions { PresencePenalty = double.NegativeInfinity }, "PresencePenalty" },
        { new SamplingOptions { PresencePenalty = 3 }, "PresencePenalty" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Validate_ReportsTheOffendingProperty(SamplingOptions options, string property)
    {
        var problem = Assert.Single(options.Validate());
        Assert.StartsWith(property + " ", problem);
    }

    [Fact]
    public void Validate_ReportsEveryProblemWithTheValueFound()
    {
        var problems = new SamplingOptions { Temperature = -1, TopK = -3 }.Validate();
        Assert.Equal(2, problems.Count);
        Assert.Contains("found -1", problems[0]);
        Assert.Contains("found -3", problems[1]);
    }
}
