using TextPoke.Crash;
using TextPoke.Tests.Support;
using Xunit.Abstractions;

namespace TextPoke.Tests.Crash;

/// <summary>
/// syzkaller's report corpus (tests/data/syzkaller-linux-reports): per-field agreement and the headline. The
/// threshold is the headline reached so far; it may only go up.
/// </summary>
public class SyzkallerCorpusTests(ITestOutputHelper output)
{
    const double HeadlineThreshold = 99.5;
    // Alternative titles (not part of the headline) are held to their own floor.
    const double AltThreshold = 98.9;

    [Fact]
    public void Corpus_HeadlineAtLeastTheReachedThreshold()
    {
        var cases = CorpusScore.Read(Path.Combine(Repo.Data, "syzkaller-linux-reports"));
        Assert.True(cases.Count > 500, $"{cases.Count} corpus files");
        var score = CorpusScore.Score(cases);
        output.WriteLine(score.Table());
        foreach (var miss in score.Misses.Take(40)) output.WriteLine(miss);
        Assert.True(score.HeadlinePercent >= HeadlineThreshold, $"headline {score.HeadlinePercent:F1}% < {HeadlineThreshold}%\n{score.Table()}");
        Assert.True(100.0 * score.Alt / score.Files >= AltThreshold,
            $"alternative titles {100.0 * score.Alt / score.Files:F1}% < {AltThreshold}%\n{score.Table()}");
    }

    // Each half of the fixed split (CorpusScore.IsValidation) is held to its own floor.
    const double HalfThreshold = 99.0;

    [Fact]
    public void Corpus_DevelopmentAndValidationHalves_BothHold()
    {
        var cases = CorpusScore.Read(Path.Combine(Repo.Data, "syzkaller-linux-reports"));
        var validation = cases.Where(CorpusScore.IsValidation).ToList();
        var development = cases.Where(c => !CorpusScore.IsValidation(c)).ToList();
        Assert.InRange(validation.Count, cases.Count * 2 / 5, cases.Count * 3 / 5);
        foreach (var (name, half) in new[] { ("development", development), ("validation", validation) })
        {
            var score = CorpusScore.Score(half);
            output.WriteLine($"{name}: {score.Headline}/{score.Files} = {score.HeadlinePercent:F1}%");
            Assert.True(score.HeadlinePercent >= HalfThreshold, $"{name} half {score.HeadlinePercent:F1}% < {HalfThreshold}%\n{score.Table()}");
        }
    }
}
