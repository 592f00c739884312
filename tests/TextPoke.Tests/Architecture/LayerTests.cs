using System.Text.RegularExpressions;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Architecture;

/// <summary>
/// The library's layers (docs/architecture.md): a folder of src/TextPoke may use only folders of a lower layer. The
/// test reads the sources: every `using TextPoke.X`, every qualified `TextPoke.X.` and every `X.Name` that starts
/// with a layer's name counts as a use of X.
/// </summary>
public partial class LayerTests
{
    /// <summary>Layer of each folder, bottom up; the same as the table in docs/architecture.md.</summary>
    public static readonly IReadOnlyDictionary<string, int> Layers = new Dictionary<string, int>
    {
        ["X86"] = 0,
        ["Images"] = 1,
        ["Dwarf"] = 2, ["Symbols"] = 2, ["Messages"] = 2,
        ["Tables"] = 3,
        ["Checks"] = 4,
        ["Emulation"] = 5,
        ["Crash"] = 6, ["Live"] = 6,
        ["Boot"] = 7, ["Demo"] = 7,
        ["Operations"] = 8,
    };

    [GeneratedRegex(@"(?<![\w.])(?:TextPoke\.)?(X86|Images|Dwarf|Symbols|Messages|Tables|Checks|Emulation|Crash|Boot|Demo|Operations)\.[A-Z]")]
    private static partial Regex Qualified();

    [GeneratedRegex(@"^\s*using\s+(?:static\s+)?TextPoke\.(\w+)")]
    private static partial Regex Using();

    static string Source => Path.Combine(Repo.Root, "src", "TextPoke");

    /// <summary>Every (folder, used folder, file:line) the sources show.</summary>
    public static IEnumerable<(string From, string To, string Where)> Uses(string root)
    {
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(root, file);
            if (relative.StartsWith("obj", StringComparison.Ordinal) || relative.StartsWith("bin", StringComparison.Ordinal)) continue;
            string from = relative.Split(Path.DirectorySeparatorChar)[0];
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                string line = lines[i];
                int comment = line.IndexOf("//", StringComparison.Ordinal);
                string code = comment >= 0 && !line.TrimStart().StartsWith("///", StringComparison.Ordinal) ? line[..comment] : line;
                if (Using().Match(code) is { Success: true } u) yield return (from, u.Groups[1].Value, $"{relative}:{i + 1}");
                foreach (Match m in Qualified().Matches(code)) yield return (from, m.Groups[1].Value, $"{relative}:{i + 1}");
            }
        }
    }

    [Fact]
    public void NoFolderUsesAHigherOrEqualLayer()
    {
        var folders = Directory.EnumerateDirectories(Source).Select(Path.GetFileName).Where(d => d is not ("bin" or "obj")).ToList();
        Assert.All(folders, f => Assert.True(Layers.ContainsKey(f!), $"src/TextPoke/{f} has no layer: add it to docs/architecture.md and to this test"));
        var wrong = Uses(Source)
            .Where(u => u.From != u.To && Layers.ContainsKey(u.From) && Layers.ContainsKey(u.To) && Layers[u.To] >= Layers[u.From])
            .Select(u => $"{u.Where}: {u.From} (layer {Layers[u.From]}) uses {u.To} (layer {Layers[u.To]})")
            .ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    /// <summary>The rule must be able to fail: a Checks file that uses Emulation is caught, at its line.</summary>
    [Fact]
    public void AnUpwardUse_IsFound()
    {
        string dir = Repo.Scratch("layers");
        Directory.CreateDirectory(Path.Combine(dir, "Checks"));
        File.WriteAllLines(Path.Combine(dir, "Checks", "Bad.cs"),
            ["namespace TextPoke.Checks;", "// Emulation.JumpLabelCore is only named in a comment here",
                "class Bad { object X = Emulation.KernelMessages.Bug; }"]);
        var uses = Uses(dir).ToList();
        Assert.Equal([("Checks", "Emulation", Path.Combine("Checks", "Bad.cs") + ":3")], uses);
    }

    [Fact]
    public void ArchitectureDocument_ListsEveryLayer()
    {
        var doc = File.ReadAllText(Path.Combine(Repo.Root, "docs", "architecture.md"));
        foreach (var (folder, layer) in Layers)
            Assert.Matches(new Regex($@"\|\s*{layer}\s*\|[^\n]*`{folder}/`"), doc);
    }
}
