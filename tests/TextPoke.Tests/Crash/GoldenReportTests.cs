using TextPoke.Crash;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Crash;

/// <summary>
/// A golden log per report kind: tests/golden holds the kinds the syzkaller corpus never showed (written from the
/// kernel's format strings); each decodes to exactly its expected report, and every rule is exercised by a log there or
/// in the corpus with title, type and corrupted flag all agreeing.
/// </summary>
public class GoldenReportTests
{
    static readonly string Golden = Path.Combine(Repo.Root, "tests", "golden");

    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var c in CorpusScore.Read(Golden)) data.Add(c.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void GoldenLog_DecodesToItsExpectedReport(string name)
    {
        var c = CorpusScore.Read(Golden).Single(x => x.Name == name);
        var report = ConsoleLog.Parse(c.Log).FirstOrDefault();
        Assert.NotNull(report);
        Assert.Equal(c.Title, report.Title);
        Assert.Equal(c.Type ?? "", CrashTypes.Of(report.Title));
        Assert.Equal(c.Corrupted, report.Corrupted);
        Assert.Equal(c.Frame, report.Frame);
    }

    [Fact]
    public void EveryReportKind_HasALogThatDecodesExactly()
    {
        var covered = new HashSet<int>();
        foreach (var c in CorpusScore.Read(Golden).Concat(CorpusScore.Read(Path.Combine(Repo.Data, "syzkaller-linux-reports"))))
        {
            var report = ConsoleLog.Parse(c.Log).FirstOrDefault();
            if (c.Title != null && report != null && report.Title == c.Title && CrashTypes.Of(report.Title) == (c.Type ?? "") &&
                report.Corrupted == c.Corrupted)
                covered.Add(report.Rule);
        }
        var missing = Enumerable.Range(0, ConsoleLog.Rules.Count).Where(i => !covered.Contains(i))
            .Select(i => $"rule {i}: {ConsoleLog.Rules[i].Header} -> {ConsoleLog.Rules[i].Format}").ToArray();
        Assert.Equal([], missing);
    }
}
