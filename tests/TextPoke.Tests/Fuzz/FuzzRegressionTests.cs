using TextPoke.Tests.Support;

namespace TextPoke.Tests.Fuzz;

/// <summary>
/// Every input a fuzzing campaign (scripts/fuzz) found crashing a reader is kept in tests/fuzz-regressions/TARGET and
/// replayed here through the commands that read it: each must end in a normal result or a one-line error (exit 0, 1
/// or 2), never in the catch-all "cannot be processed" that an unanticipated exception produces.
/// </summary>
public class FuzzRegressionTests
{
    static readonly string Root = Path.Combine(Repo.Root, "tests", "fuzz-regressions");

    public static TheoryData<string, string> Inputs()
    {
        var data = new TheoryData<string, string>();
        foreach (var dir in Directory.Exists(Root) ? Directory.GetDirectories(Root) : [])
            foreach (var file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
                data.Add(Path.GetFileName(dir), Path.GetFileName(file));
        return data;
    }

    static readonly Dictionary<string, string[][]> Commands = new()
    {
        ["elf"] = [["check"], ["simulate", "--boot", "--keep-going"], ["keys"], ["sites", "--table", "alt"]],
        ["decode"] = [["decode"], ["decode", "--json"]],
    };

    [Theory]
    [MemberData(nameof(Inputs))]
    public void FoundByFuzzing_EndsInAResultOrAOneLineError(string target, string file)
    {
        string path = Path.Combine(Root, target, file);
        Assert.True(Commands.ContainsKey(target), $"no replay for target {target}");
        foreach (var command in Commands[target])
        {
            var r = CliRun.Run([command[0], path, .. command[1..]]);
            Assert.InRange(r.Exit, 0, 2);
            Assert.DoesNotContain("cannot be processed", r.Err);
        }
    }

    [Fact]
    public void TheRegressionsAreThere() => Assert.True(Inputs().Count >= 21, "tests/fuzz-regressions holds the campaign's crashes");
}
