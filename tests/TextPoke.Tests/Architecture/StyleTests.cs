using System.Text.RegularExpressions;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Architecture;

/// <summary>
/// Conventions the team agreed on (.editorconfig): lines of at most 160 columns in the C# sources, and nothing that
/// points outside the checkout (a machine's folders, the shared folder beside it) in sources, scripts or docs.
/// </summary>
public partial class StyleTests
{
    public const int MaxLineLength = 160;

    static IEnumerable<string> Files(params string[] patterns) =>
        new[] { "src", "tests", "bench", "scripts", "docs" }
            .Select(d => Path.Combine(Repo.Root, d)).Where(Directory.Exists)
            .SelectMany(d => patterns.SelectMany(p => Directory.EnumerateFiles(d, p, SearchOption.AllDirectories)))
            .Where(f => !Skipped.Any(s => f.Contains($"{Path.DirectorySeparatorChar}{s}{Path.DirectorySeparatorChar}", StringComparison.Ordinal)));

    // Build output, and the test data copied from elsewhere (kept byte for byte).
    static readonly string[] Skipped = ["obj", "bin", "data"];

    /// <summary>file:line of every line longer than the limit.</summary>
    public static IEnumerable<string> LongLines(string path, IEnumerable<string> lines) =>
        lines.Select((l, i) => (l, i)).Where(x => x.l.Length > MaxLineLength).Select(x => $"{path}:{x.i + 1}: {x.l.Length} columns");

    [Fact]
    public void NoSourceLineIsLongerThan160Columns()
    {
        var longLines = Files("*.cs").SelectMany(f => LongLines(Path.GetRelativePath(Repo.Root, f), File.ReadLines(f))).ToList();
        Assert.True(longLines.Count == 0, string.Join("\n", longLines.Take(40)));
        Assert.Equal(["x.cs:2: 161 columns"], LongLines("x.cs", ["short", new string('x', 161), new string('y', 160)]));
    }

    // The folder beside the checkout is spelled with a class ([s]) so that this file does not name it either.
    [GeneratedRegex(@"\.\./[s]hared\b|(?<![\w.~-])/(?:work|root|home)/[\w.-]+")]
    private static partial Regex OutsidePath();

    /// <summary>What in a text points outside the checkout: the shared folder, or a machine's home or work folders.</summary>
    public static IEnumerable<string> Outside(string path, IEnumerable<string> lines) =>
        lines.Select((l, i) => (l, i)).Where(x => OutsidePath().IsMatch(x.l)).Select(x => $"{path}:{x.i + 1}: {OutsidePath().Match(x.l).Value}");

    [Fact]
    public void NothingPointsOutsideTheCheckout()
    {
        var found = Files("*.cs", "*.md", "*.sh", "fetch-kernels", "setup", "build-clang-kernel", "gen-cpufeatures", "run", "fuzz")
            .Concat([Path.Combine(Repo.Root, "README.md"), Path.Combine(Repo.Root, "test"), Path.Combine(Repo.Root, "textpoke")])
            .Distinct()
            .SelectMany(f => Outside(Path.GetRelativePath(Repo.Root, f), File.ReadLines(f))).ToList();
        Assert.True(found.Count == 0, string.Join("\n", found));
        // (The bad examples are assembled, so this file names no outside path itself.)
        string shared = string.Join('/', "..", "s" + "hared", "corpus"), machine = "/" + string.Join('/', "work", "main", "src");
        Assert.Equal(2, Outside("x.md", [$"see {shared}", $"in {machine}", "in ~/.cache/textpoke", "tests/data/seed"]).Count());
    }

    /// <summary>Fuzz findings are binary files built from seeds; a compile directory in their DWARF must not name this machine.</summary>
    [Fact]
    public void FuzzRegressions_NameNoMachinePath()
    {
        var found = Directory.EnumerateFiles(Path.Combine(Repo.Root, "tests", "fuzz-regressions"), "*", SearchOption.AllDirectories)
            .Where(f => OutsidePath().IsMatch(System.Text.Encoding.Latin1.GetString(File.ReadAllBytes(f))))
            .Select(f => Path.GetRelativePath(Repo.Root, f)).ToList();
        Assert.True(found.Count == 0, string.Join("\n", found));
    }
}
