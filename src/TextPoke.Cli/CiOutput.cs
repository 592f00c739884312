using System.Text.Json;
using System.Text.Json.Serialization;
using System.Xml;
using TextPoke.Checks;

namespace TextPoke.Cli;

/// <summary>One checked file for the CI formats: its path, its findings, the tables it could not read, or the error that stopped it.</summary>
sealed record CheckedFile(string Path, IReadOnlyList<Finding> Findings, IReadOnlyList<(string Name, string Why)> NotChecked, string? Error = null,
    bool Strict = false)
{
    public static CheckedFile Of(CheckResult result) => new(result.Image.Path, result.Findings.ToList(), result.NotChecked.ToList(), null, result.Strict);
}

// SARIF 2.1.0 (OASIS), the subset code-scanning services read: tool.driver with its rules, results with a rule id,
// level, message and locations, and the run's invocation with notifications for what could not be checked.
public sealed record SarifLog([property: JsonPropertyName("$schema")] string Schema, string Version, IReadOnlyList<SarifRun> Runs);
public sealed record SarifRun(SarifTool Tool, IReadOnlyList<SarifInvocation> Invocations, IReadOnlyList<SarifResult> Results);
public sealed record SarifTool(SarifDriver Driver);
public sealed record SarifDriver(string Name, IReadOnlyList<SarifRule> Rules);
public sealed record SarifRule(string Id, SarifText ShortDescription, SarifConfiguration DefaultConfiguration);
public sealed record SarifConfiguration(string Level);
public sealed record SarifText(string Text);
public sealed record SarifInvocation(bool ExecutionSuccessful, IReadOnlyList<SarifNotification> ToolExecutionNotifications);
public sealed record SarifNotification(string Level, SarifText Message, IReadOnlyList<SarifLocation> Locations);
public sealed record SarifResult(string RuleId, int RuleIndex, string Level, SarifText Message, IReadOnlyList<SarifLocation> Locations,
    IReadOnlyDictionary<string, string?> Properties);
public sealed record SarifLocation(SarifPhysicalLocation PhysicalLocation, IReadOnlyList<SarifLogicalLocation>? LogicalLocations);
public sealed record SarifPhysicalLocation(SarifArtifact ArtifactLocation);
public sealed record SarifArtifact(string Uri);
public sealed record SarifLogicalLocation(string FullyQualifiedName, string Kind);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SarifLog))]
public sealed partial class SarifContext : JsonSerializerContext;

/// <summary>check's findings in the formats CI systems show natively: SARIF 2.1.0 (code scanning) and JUnit XML (test reports).</summary>
static class CiOutput
{
    static string Level(Severity s) => s switch { Severity.Bug => "error", Severity.Warning => "warning", _ => "note" };

    static Uri FileUri(string path) => new(Path.GetFullPath(path));

    public static void Sarif(TextWriter o, IReadOnlyList<CheckedFile> files)
    {
        var rules = files.SelectMany(f => f.Findings).GroupBy(f => f.Rule).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new SarifRule(g.Key, new SarifText(g.First().Title), new SarifConfiguration(Level(g.First().Severity)))).ToList();
        var index = rules.Select((r, i) => (r.Id, i)).ToDictionary(x => x.Id, x => x.i, StringComparer.Ordinal);
        var results = files.SelectMany(file => file.Findings.Select(f => new SarifResult(
            f.Rule, index[f.Rule], Level(f.Severity),
            new SarifText(f.KernelLines.Count > 0 ? string.Join("\n", f.KernelLines) : f.Title),
            [new SarifLocation(new SarifPhysicalLocation(new SarifArtifact(FileUri(file.Path).AbsoluteUri)),
                f.Location == null ? null : [new SarifLogicalLocation(f.Location, "function")])],
            new Dictionary<string, string?>
            {
                ["title"] = f.Title, ["table"] = f.Table, ["address"] = f.Address is { } a ? $"0x{a:x16}" : null, ["key"] = f.Key,
                ["explanation"] = f.Explanation,
            }))).ToList();
        var notifications = files.SelectMany(file =>
            (file.Error != null ? [("error", file.Error)] : file.NotChecked.Select(t => ("error", $"{t.Name} not checked: {t.Why}")))
            .Select(n => new SarifNotification(n.Item1, new SarifText(n.Item2),
                [new SarifLocation(new SarifPhysicalLocation(new SarifArtifact(FileUri(file.Path).AbsoluteUri)), null)]))).ToList();
        var log = new SarifLog("https://json.schemastore.org/sarif-2.1.0.json", "2.1.0",
        [
            new SarifRun(new SarifTool(new SarifDriver("textpoke", rules)),
                [new SarifInvocation(notifications.Count == 0, notifications)], results),
        ]);
        o.WriteLine(JsonSerializer.Serialize(log, SarifContext.Default.SarifLog));
    }

    /// <summary>One JUnit test case: passed, failed (message, type, body) or in error (message).</summary>
    public sealed record TestCase(string Name, string? Failure = null, string? FailureType = null, string? Body = null, string? Error = null);

    /// <summary>
    /// One test suite, one test case per checked file (a kernel, a module): a failure carries every finding with the
    /// kernel's own lines; a file with tables it could not read, or that could not be opened, is an error.
    /// </summary>
    public static void JUnit(TextWriter o, IReadOnlyList<CheckedFile> files)
    {
        // Notices (entries the kernel never acts on) do not fail a test case unless --strict made them failing.
        static bool Fails(CheckedFile f) => f.Findings.Any(x => f.Strict || x.Severity != Severity.Notice);
        var cases = files.Select(file =>
        {
            if (file.Error != null) return new TestCase(file.Path, Error: file.Error);
            if (Fails(file))
            {
                int bugs = file.Findings.Count(f => f.Severity == Severity.Bug);
                var body = new System.Text.StringBuilder();
                foreach (var f in file.Findings)
                {
                    body.Append($"{f.Severity.ToString().ToLowerInvariant()} {f.Rule} {f.Location}: {f.Title}\n");
                    foreach (var line in f.KernelLines) body.Append("  ").Append(line).Append('\n');
                }
                foreach (var (name, why) in file.NotChecked) body.Append($"not checked: {name}: {why}\n");
                return new TestCase(file.Path,
                    $"{file.Findings.Count} finding{(file.Findings.Count == 1 ? "" : "s")}, {bugs} of them will crash or corrupt the kernel",
                    file.Findings[0].Rule, body.ToString());
            }
            if (file.NotChecked.Count > 0) return new TestCase(file.Path, Error: "not checked: " + string.Join("; ", file.NotChecked.Select(t =>
                $"{t.Name}: {t.Why}")));
            return new TestCase(file.Path);
        }).ToList();
        JUnit(o, "textpoke check", "textpoke.check", cases);
    }

    /// <summary>The common testsuites/testsuite/testcase/failure|error shape GitLab, Jenkins and Buildkite read.</summary>
    public static void JUnit(TextWriter o, string suite, string className, IReadOnlyList<TestCase> cases)
    {
        // XML cannot hold most control characters: untrusted text is escaped first, as on a terminal, and what XML 1.0
        // still refuses (U+FFFE, U+FFFF, lone surrogates) is written as \uNNNN, so hostile text never stops the writer.
        static string X(string s)
        {
            s = InertWriter.Escape(s);
            if (s.All(XmlConvert.IsXmlChar)) return s;
            var sb = new System.Text.StringBuilder(s.Length);
            for (int i = 0; i < s.Length; i++)
            {
                char c = s[i];
                if (XmlConvert.IsXmlChar(c)) sb.Append(c);
                else if (i + 1 < s.Length && XmlConvert.IsXmlSurrogatePair(s[i + 1], c)) sb.Append(c).Append(s[++i]);
                else sb.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
            }
            return sb.ToString();
        }
        static string N(int n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        int failures = cases.Count(c => c.Error == null && c.Failure != null), errors = cases.Count(c => c.Error != null);
        var settings = new XmlWriterSettings { Indent = true, OmitXmlDeclaration = true };
        var sb = new System.Text.StringBuilder();
        using (var w = XmlWriter.Create(sb, settings))
        {
            w.WriteStartElement("testsuites");
            foreach (var element in new[] { "suites", "suite" })
            {
                if (element == "suite") w.WriteStartElement("testsuite");
                w.WriteAttributeString("name", suite);
                w.WriteAttributeString("tests", N(cases.Count));
                w.WriteAttributeString("failures", N(failures));
                w.WriteAttributeString("errors", N(errors));
            }
            foreach (var c in cases)
            {
                w.WriteStartElement("testcase");
                w.WriteAttributeString("classname", className);
                w.WriteAttributeString("name", X(c.Name));
                if (c.Error != null)
                {
                    w.WriteStartElement("error");
                    w.WriteAttributeString("message", X(c.Error));
                    w.WriteEndElement();
                }
                else if (c.Failure != null)
                {
                    w.WriteStartElement("failure");
                    w.WriteAttributeString("message", X(c.Failure));
                    if (c.FailureType != null) w.WriteAttributeString("type", X(c.FailureType));
                    if (c.Body != null) w.WriteString(X(c.Body));
                    w.WriteEndElement();
                }
                w.WriteEndElement();
            }
            w.WriteEndElement();
            w.WriteEndElement();
        }
        o.WriteLine("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        o.WriteLine(sb.ToString());
    }
}
