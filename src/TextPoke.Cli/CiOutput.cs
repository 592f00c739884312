using System.Text.Json;
using System.Text.Json.Serialization;
using System.Xml;
using TextPoke.Checks;
using TextPoke.Crash;
using TextPoke.Dwarf;

namespace TextPoke.Cli;

/// <summary>
/// One checked file for the CI formats: its path, its findings, the tables it could not read, or the error that stopped
/// it; <see cref="Source"/> maps an address to its source lines when the image (or the kernel given for it) has DWARF.
/// </summary>
sealed record CheckedFile(string Path, IReadOnlyList<Finding> Findings, IReadOnlyList<(string Name, string Why)> NotChecked, string? Error = null,
    bool Strict = false, Func<ulong, IReadOnlyList<SourceFrame>>? Source = null)
{
    public static CheckedFile Of(CheckResult result, Func<ulong, IReadOnlyList<SourceFrame>>? source = null) =>
        new(result.Image.Path, result.Findings.ToList(), result.NotChecked.ToList(), null, result.Strict, source);
}

// SARIF 2.1.0 (OASIS), the subset code-scanning services read: tool.driver with its rules, results with a rule id,
// level, message and locations, and the run's invocation with notifications for what could not be checked.
public sealed record SarifLog([property: JsonPropertyName("$schema")] string Schema, string Version, IReadOnlyList<SarifRun> Runs);
public sealed record SarifRun(SarifTool Tool, IReadOnlyList<SarifInvocation> Invocations, IReadOnlyList<SarifResult> Results);
public sealed record SarifTool(SarifDriver Driver);
public sealed record SarifDriver(string Name, IReadOnlyList<SarifRule> Rules);
public sealed record SarifRule(string Id, SarifText ShortDescription, SarifText FullDescription, SarifText Help,
    SarifConfiguration DefaultConfiguration, IReadOnlyDictionary<string, string> Properties);
public sealed record SarifConfiguration(string Level);
public sealed record SarifText(string Text);
public sealed record SarifInvocation(bool ExecutionSuccessful, IReadOnlyList<SarifNotification> ToolExecutionNotifications);
public sealed record SarifNotification(string Level, SarifText Message, IReadOnlyList<SarifLocation> Locations);
public sealed record SarifResult(string RuleId, int RuleIndex, string Level, SarifText Message, IReadOnlyList<SarifLocation> Locations,
    IReadOnlyList<SarifLocation>? RelatedLocations, IReadOnlyDictionary<string, string?> Properties);
public sealed record SarifLocation(SarifPhysicalLocation PhysicalLocation, IReadOnlyList<SarifLogicalLocation>? LogicalLocations,
    SarifText? Message = null, int? Id = null);
public sealed record SarifPhysicalLocation(SarifArtifact ArtifactLocation, SarifRegion? Region = null);
public sealed record SarifArtifact(string Uri, string? UriBaseId = null);
public sealed record SarifRegion(int StartLine, int? EndLine = null);
public sealed record SarifLogicalLocation(string FullyQualifiedName, string Kind);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SarifLog))]
public sealed partial class SarifContext : JsonSerializerContext
{
    // Kernel lines keep their '+', '<' and '>' as they are (valid JSON either way; readable in a code-scanning UI).
    static readonly Lazy<SarifContext> Relaxed = new(() => new SarifContext(new System.Text.Json.JsonSerializerOptions
    {
        WriteIndented = true,
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    }));

    public static string Serialize(SarifLog log) => System.Text.Json.JsonSerializer.Serialize(log, Relaxed.Value.SarifLog);
}

/// <summary>check's findings in the formats CI systems show natively: SARIF 2.1.0 (code scanning) and JUnit XML (test reports).</summary>
static class CiOutput
{
    public const string SarifSchema = "https://json.schemastore.org/sarif-2.1.0.json";

    static string Level(Severity s) => s switch { Severity.Bug => "error", Severity.Warning => "warning", _ => "note" };

    static string FileUri(string path) => new Uri(Path.GetFullPath(path)).AbsoluteUri;

    // The top-level directories of a kernel tree: a DWARF path is cut to start at the first of them.
    static readonly HashSet<string> KernelTopLevel = new(StringComparer.Ordinal)
    {
        "arch", "block", "certs", "crypto", "drivers", "fs", "include", "init", "io_uring", "ipc", "kernel", "lib", "mm", "net", "rust",
        "samples", "scripts", "security", "sound", "tools", "usr", "virt",
    };

    /// <summary>
    /// A source file named by DWARF as a SARIF artifact, relative to the kernel tree (base id SRCROOT) so code-scanning
    /// services resolve it in the checked-out sources: the path is cut before its first kernel top-level directory, which
    /// drops a build's absolute or out-of-tree prefix (Debian's DWARF names "debian/build/build_amd64_none_amd64/
    /// kernel/sched/core.c"). A path with no such directory stays as it is, absolute ones as file URIs.
    /// </summary>
    internal static SarifArtifact SourceArtifact(string file)
    {
        var parts = file.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
        int top = Array.FindIndex(parts, p => KernelTopLevel.Contains(p));
        if (top < 0 && Path.IsPathRooted(file)) return new SarifArtifact(new Uri(file).AbsoluteUri);
        return new SarifArtifact(string.Join('/', parts.Skip(Math.Max(top, 0)).Select(Uri.EscapeDataString)), "SRCROOT");
    }

    static SarifRule Rule(RuleInfo r) => new(r.Id, new SarifText(r.Summary),
        new SarifText(r.KernelOutput.Length == 0 ? $"{r.Summary}. The kernel prints nothing when this trips." :
            $"{r.Summary}. The kernel prints: {r.KernelOutput}"),
        new SarifText($"Table {r.Table}; severity {r.Severity.ToString().ToLowerInvariant()}. Rules, invariants and the kernel's lines: docs/checks.md."),
        new SarifConfiguration(Level(r.Severity)), new Dictionary<string, string> { ["table"] = r.Table });

    /// <summary>
    /// Where DWARF puts an address: the C line of the function that holds it (the outermost frame of the inline chain)
    /// and, as related locations numbered from <paramref name="firstId"/>, every inlined frame inside it; null when no
    /// frame has a file and line.
    /// </summary>
    static (SarifPhysicalLocation Function, List<SarifLocation> Inlined)? FromSource(IEnumerable<SourceFrame> frames, int firstId)
    {
        var known = frames.Where(fr => fr.File != null && fr.Line > 0).ToList();
        if (known.Count == 0) return null;
        var inlined = known.Take(known.Count - 1).Select((fr, i) => new SarifLocation(
            new SarifPhysicalLocation(SourceArtifact(fr.File!), new SarifRegion(fr.Line)), null,
            new SarifText($"inlined {fr.Function ?? "code"} ({fr.Location})"), firstId + i)).ToList();
        return (new SarifPhysicalLocation(SourceArtifact(known[^1].File!), new SarifRegion(known[^1].Line)), inlined);
    }

    /// <summary>
    /// One result location: with DWARF, the site's function line and its inlined frames (<see cref="FromSource"/>);
    /// without, the image itself. The site's symbol+off/size is its logical location either way.
    /// </summary>
    static (SarifLocation Location, IReadOnlyList<SarifLocation>? Related) Locate(string imagePath, ulong? siteAddress, string? site,
        Func<ulong, IReadOnlyList<SourceFrame>>? source)
    {
        IReadOnlyList<SarifLogicalLocation>? logical = site == null ? null : [new SarifLogicalLocation(site, "function")];
        if (siteAddress is not { } address || source == null || FromSource(source(address), 1) is not { } found)
            return (new SarifLocation(new SarifPhysicalLocation(new SarifArtifact(FileUri(imagePath))), logical), null);
        return (new SarifLocation(found.Function, logical), found.Inlined.Count == 0 ? null : found.Inlined);
    }

    static Dictionary<string, int> Indexes(List<SarifRule> rules) =>
        rules.Select((r, i) => (r.Id, i)).ToDictionary(x => x.Id, x => x.i, StringComparer.Ordinal);

    public static void Sarif(TextWriter o, IReadOnlyList<CheckedFile> files)
    {
        // Every rule textpoke has, in the catalogue's order; an id it lacks (none today) still gets a rule of its own.
        var rules = RuleCatalogue.All.Select(Rule).ToList();
        foreach (var g in files.SelectMany(f => f.Findings).Where(f => RuleCatalogue.Find(f.Rule) == null).GroupBy(f => f.Rule))
            rules.Add(Rule(new RuleInfo(g.Key, g.First().Table, g.First().Severity, g.First().Title, "")));
        var index = Indexes(rules);
        var results = files.SelectMany(file => file.Findings.Select(f =>
        {
            var (location, related) = Locate(file.Path, f.Address, f.Location, file.Source);
            return new SarifResult(f.Rule, index[f.Rule], Level(f.Severity),
                new SarifText(f.KernelLines.Count > 0 ? string.Join("\n", f.KernelLines) : f.Title), [location], related,
                new Dictionary<string, string?>
                {
                    ["title"] = f.Title, ["table"] = f.Table, ["address"] = f.Address is { } a ? $"0x{a:x16}" : null, ["key"] = f.Key,
                    ["explanation"] = f.Explanation, ["image"] = FileUri(file.Path),
                });
        })).ToList();
        var notifications = files.SelectMany(file =>
            (file.Error != null ? [("error", file.Error)] : file.NotChecked.Select(t => ("error", $"{t.Name} not checked: {t.Why}")))
            .Select(n => new SarifNotification(n.Item1, new SarifText(n.Item2),
                [new SarifLocation(new SarifPhysicalLocation(new SarifArtifact(FileUri(file.Path))), null)]))).ToList();
        WriteSarif(o, rules, results, notifications);
    }

    static void WriteSarif(TextWriter o, List<SarifRule> rules, List<SarifResult> results, List<SarifNotification> notifications) =>
        o.WriteLine(SarifContext.Serialize(new SarifLog(SarifSchema, "2.1.0",
            [new SarifRun(new SarifTool(new SarifDriver("textpoke", rules)), [new SarifInvocation(notifications.Count == 0, notifications)], results)])));

    /// <summary>
    /// Something an emulated kernel printed (simulate's BUGs and WARNs, simulate --boot's): its rule, severity, the
    /// kernel's lines, the site, and properties such as the key, operation and call path.
    /// </summary>
    public sealed record EmulatedEvent(string Rule, string Summary, Severity Severity, IReadOnlyList<string> Lines, ulong? Address, string? Location,
        IReadOnlyDictionary<string, string?> Properties);

    /// <summary>simulate's events as SARIF: one rule per kind of event, one result per BUG or WARN at its site.</summary>
    public static void SarifEvents(TextWriter o, string imagePath, IReadOnlyList<EmulatedEvent> events, Func<ulong, IReadOnlyList<SourceFrame>>? source)
    {
        var rules = events.GroupBy(e => e.Rule).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => new SarifRule(g.Key, new SarifText(g.First().Summary),
            new SarifText($"{g.First().Summary}: textpoke ran the kernel's own patching code on the image and it printed these lines."),
            new SarifText("The emulation follows the kernel's code for the image's era; the properties carry the operation and call path."),
            new SarifConfiguration(Level(g.First().Severity)), new Dictionary<string, string>())).ToList();
        var index = Indexes(rules);
        var results = events.Select(e =>
        {
            var (location, related) = Locate(imagePath, e.Address, e.Location, source);
            var properties = new Dictionary<string, string?>(e.Properties)
            {
                ["address"] = e.Address is { } a ? $"0x{a:x16}" : null, ["image"] = FileUri(imagePath),
            };
            return new SarifResult(e.Rule, index[e.Rule], Level(e.Severity), new SarifText(e.Lines.Count > 0 ? string.Join("\n", e.Lines) : e.Summary),
                [location], related, properties);
        }).ToList();
        WriteSarif(o, rules, results, []);
    }

    /// <summary>simulate's events as JUnit: one test case for the image and scenario, failing with every BUG and WARN.</summary>
    public static void JUnitEvents(TextWriter o, string suite, string name, IReadOnlyList<EmulatedEvent> events)
    {
        var body = string.Concat(events.Select(e => $"{e.Severity.ToString().ToLowerInvariant()} {e.Rule} {e.Location}\n" +
            string.Concat(e.Lines.Select(l => "  " + l + "\n"))));
        int bugs = events.Count(e => e.Severity == Severity.Bug);
        JUnit(o, suite, suite.Replace(' ', '.'), [events.Count == 0 ? new TestCase(name)
            : new TestCase(name, $"{bugs} BUG{(bugs == 1 ? "" : "s")}, {events.Count - bugs} WARN{(events.Count - bugs == 1 ? "" : "s")}", events[0].Rule,
                body)]);
    }

    /// <summary>One decoded report for SARIF: where it is in the log, and its guilty frame resolved to source (with DWARF).</summary>
    public sealed record DecodedReport(CrashReport Report, IReadOnlyList<string> Explanation, SymbolizedFrame? Guilty, string? LogPath = null);

    /// <summary>
    /// decode's reports as SARIF: one rule per report type present (crash.bug, crash.warning, crash.kasan, ...), one
    /// error result per report (a warning for WARNING reports) whose message is its title; located at the guilty
    /// function's C line when --vmlinux has DWARF (the report's lines in the log as a related location), else at its
    /// lines in the log.
    /// </summary>
    public static void SarifDecode(TextWriter o, string logPath, IReadOnlyList<DecodedReport> reports, IReadOnlyList<string>? failures = null)
    {
        static string Id(CrashReport r) => "crash." + (r.Type.Length == 0 ? "unknown" : r.Type.ToLowerInvariant().Replace('_', '-'));
        static string LevelOf(CrashReport r) => r.Type == "WARNING" ? "warning" : "error";
        var rules = reports.GroupBy(r => Id(r.Report)).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => new SarifRule(g.Key,
            new SarifText($"a kernel report of type {g.First().Report.Type}"),
            new SarifText($"The console log holds a kernel report of type {g.First().Report.Type} (syzkaller's report types)."),
            new SarifText("The report's title names the guilty function; the result's properties carry the report's lines. See docs/crash-rules.md."),
            new SarifConfiguration(LevelOf(g.First().Report)), new Dictionary<string, string> { ["type"] = g.First().Report.Type })).ToList();
        var index = Indexes(rules);
        var results = reports.Select(d =>
        {
            var r = d.Report;
            string path = d.LogPath ?? logPath, log = path == "-" ? "stdin" : FileUri(path);
            var inLog = new SarifLocation(new SarifPhysicalLocation(new SarifArtifact(log), new SarifRegion(r.StartLine + 1, r.EndLine + 1)),
                r.Frame == null ? null : [new SarifLogicalLocation(r.Frame, "function")]);
            // With DWARF the report sits at the guilty function's C line, its lines in the log the first related location.
            var source = d.Guilty == null ? null : FromSource(d.Guilty.Chain, 2);
            SarifLocation[] locations = source is { } at ? [inLog with { PhysicalLocation = at.Function }] : [inLog];
            var related = source?.Inlined.Prepend(inLog with { Message = new SarifText("the report in the console log"), Id = 1 }).ToList();
            return new SarifResult(Id(r), index[Id(r)], LevelOf(r), new SarifText(r.Title), locations, related,
                new Dictionary<string, string?>
                {
                    ["type"] = r.Type, ["category"] = CrashTypes.Of(r.Title), ["corrupted"] = r.Corrupted ? r.CorruptedReason ?? "yes" : null,
                    ["lines"] = string.Join("\n", r.Lines), ["explanation"] = d.Explanation.Count == 0 ? null : string.Join("\n", d.Explanation),
                });
        }).ToList();
        WriteSarif(o, rules, results, (failures ?? []).Select(f => new SarifNotification("error", new SarifText(f), [])).ToList());
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
