using System.CommandLine;
using System.Text.RegularExpressions;
using TextPoke.Cli;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Architecture;

/// <summary>
/// docs/commands.md against --help: every command has a section whose usage block names each of its options (by its
/// name or an alias) and nothing else, so the reference cannot drift from the program; the README shows each command.
/// </summary>
public partial class CommandsDocTests
{
    [GeneratedRegex(@"(?<![\w-])(--?[a-z][a-z-]*)")]
    private static partial Regex OptionToken();

    static readonly string[] HelpOptions = ["--help", "-h", "-?", "/?", "/h"];

    static string Doc => File.ReadAllText(Path.Combine(Repo.Root, "docs", "commands.md"));

    [Fact]
    public void EveryCommandsUsage_NamesExactlyItsOptions()
    {
        var problems = Problems(Doc);
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    static List<string> Problems(string doc)
    {
        var root = TextPokeCli.BuildCommands(TextWriter.Null, TextWriter.Null);
        var problems = new List<string>();
        foreach (var command in root.Subcommands)
        {
            var section = Regex.Match(doc, $@"^## {Regex.Escape(command.Name)}\n\n```\n(.*?)\n```", RegexOptions.Multiline | RegexOptions.Singleline);
            if (!section.Success)
            {
                problems.Add($"{command.Name}: no '## {command.Name}' section with a usage block");
                continue;
            }
            var usage = section.Groups[1].Value;
            var tokens = OptionToken().Matches(usage).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
            var options = command.Options.Where(o => !o.Aliases.Append(o.Name).Any(HelpOptions.Contains)).ToList();
            foreach (var option in options)
                if (!tokens.Contains(option.Name) && !option.Aliases.Any(tokens.Contains))
                    problems.Add($"{command.Name}: {option.Name} is missing from the usage in docs/commands.md");
            var known = options.SelectMany(o => o.Aliases.Append(o.Name)).ToHashSet(StringComparer.Ordinal);
            foreach (var token in tokens.Where(t => !known.Contains(t)))
                problems.Add($"{command.Name}: docs/commands.md names {token}, which the command does not have");
        }
        return problems;
    }

    [Fact]
    public void TheReadme_ShowsEveryCommand()
    {
        var readme = File.ReadAllText(Path.Combine(Repo.Root, "README.md"));
        var root = TextPokeCli.BuildCommands(TextWriter.Null, TextWriter.Null);
        Assert.Equal([], root.Subcommands.Select(c => c.Name).Where(n => !readme.Contains($"**{n}**", StringComparison.Ordinal)).ToArray());
    }

    /// <summary>The test can fail: a usage block missing an option, or naming one the command lacks, is reported.</summary>
    [Fact]
    public void AUsageWithAWrongOption_IsCaught()
    {
        var doc = Doc;
        Assert.Contains("[--strict] ", doc);
        Assert.Equal(["check: --strict is missing from the usage in docs/commands.md"], Problems(doc.Replace("[--strict] ", "", StringComparison.Ordinal)));
        Assert.Equal(["demo: docs/commands.md names --jsn, which the command does not have"],
            Problems(doc.Replace("textpoke demo [--json]", "textpoke demo [--json] [--jsn]", StringComparison.Ordinal)));
    }
}
