using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using TextPoke.Cli;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Cli;

/// <summary>docs/json.md is checked against the records of the JSON contract (src/TextPoke.Cli/JsonModel.cs).</summary>
public class JsonModelTests
{
    static IEnumerable<Type> ContractTypes() =>
        typeof(JsonModelContext).Assembly.GetTypes().Where(t => t.Namespace == "TextPoke.Cli" && t.IsPublic && t.Name.EndsWith("Json",
            StringComparison.Ordinal));

    /// <summary>Every field of every record, as it is written (camelCase), with the record that has it.</summary>
    public static IEnumerable<(string Record, string Field)> Fields() =>
        ContractTypes().SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.DeclaringType == t && p.Name != "EqualityContract")
            .Select(p => (t.Name, JsonNamingPolicy.CamelCase.ConvertName(p.Name))));

    /// <summary>The fields a document names: "field" in its JSON examples, `field` in its prose.</summary>
    public static HashSet<string> Documented(string text) =>
        Regex.Matches(text, @"""([A-Za-z][A-Za-z0-9]*)""(?=\s*[:,}\]]| \()|`([A-Za-z][A-Za-z0-9]*)`")
            .Select(m => m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value).ToHashSet(StringComparer.Ordinal);

    [Fact]
    public void EveryFieldOfTheContract_IsInDocsJsonMd()
    {
        var documented = Documented(File.ReadAllText(Path.Combine(Repo.Root, "docs", "json.md")));
        var missing = Fields().Where(f => !documented.Contains(f.Field)).Select(f => $"{f.Record}.{f.Field}").Distinct().ToList();
        Assert.True(missing.Count == 0, "docs/json.md does not mention: " + string.Join(", ", missing));
        Assert.True(Fields().Count() > 150);
    }

    [Fact]
    public void AFieldTheDocumentDoesNotName_IsFound()
    {
        var documented = Documented("{ \"image\": {}, \"tables\": [ { \"name\", \"size\" (2 or 5) } ] } and `clean`; \"running\" is a value");
        Assert.Equal(new HashSet<string> { "image", "tables", "name", "size", "clean" }, documented);
    }
}
