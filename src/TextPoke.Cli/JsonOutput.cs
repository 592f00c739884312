using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using TextPoke.Checks;
using TextPoke.Emulation;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tables;
using TextPoke.X86;

namespace TextPoke.Cli;

/// <summary>Machine-readable output. The shapes are documented in docs/json.md; keep them stable.</summary>
static class JsonOutput
{
    internal static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    static string Hex(ulong value) => $"0x{value:x16}";

    static object Image(KernelImage image, ImageSymbols symbols) => new
    {
        path = image.Path,
        kind = image.Kind.ToString().ToLowerInvariant(),
        description = image.Describe(),
        banner = image.Banner,
        module = image.ModuleName,
        symbols = new { source = symbols.Names.Source.ToString().ToLowerInvariant(), description = symbols.Describe(), count = symbols.Names.Count,
            notes = symbols.Notes },
    };

    internal static object FindingJson(Finding f) => new
    {
        table = f.Table, rule = f.Rule, severity = f.Severity, title = f.Title,
        address = f.Address is { } a ? Hex(a) : null, location = f.Location,
        key = f.Key, keyAddress = f.KeyAddress is { } k ? Hex(k) : null,
        kernelLines = f.KernelLines, explanation = f.Explanation,
        actualBytes = f.ActualBytes, expectedBytes = f.ExpectedBytes, size = f.Size, type = f.Type,
    };

    static object? JumpTableJson(JumpLabelReport? jump) => jump == null ? null
        : TableJson(JumpLabelCheck.TableName, jump.Status, jump.Bounds, jump.Era?.Name, jump.Era?.Kernels, jump.EraEvidence, jump.Absent, jump.Stats,
            jump.Findings);

    static object TableJson(TableReport t) => TableJson(t.Name, t.Status, t.Bounds, t.Layout, null, t.Evidence, t.Absent,
        t.Absent != null ? null : new Dictionary<string, int>(t.Counts) { ["entries"] = t.Entries, ["findings"] = t.Findings.Count }, t.Findings);

    /// <summary>One table, the jump table or any other, in the same shape.</summary>
    static object TableJson(string name, TableStatus status, TableBounds? bounds, string? layout, string? kernels, string? evidence, string? absent,
        object? stats, IEnumerable<Finding> findings) => new
    {
        name,
        status,
        present = bounds != null,
        start = bounds is { } b ? Hex(b.Start) : null,
        stop = bounds is { } b2 ? Hex(b2.Stop) : null,
        boundsFrom = bounds?.How,
        section = bounds?.Section?.Name,
        layout,
        kernels,
        layoutEvidence = evidence,
        notChecked = absent,
        stats,
        findings = findings.Select(FindingJson),
    };

    public static void Check(TextWriter o, CheckResult result)
    {
        var doc = new
        {
            image = Image(result.Image, result.Symbols),
            tables = new[] { JumpTableJson(result.Jump) }.Where(t => t != null).Concat(result.Tables.Select(TableJson)),
            moduleFindings = result.Module.Select(FindingJson),
            findings = result.Findings.Count(),
            result = result.Verdict,
            notChecked = result.NotChecked.Select(t => t.Name),
            clean = result.Clean,
        };
        o.WriteLine(JsonSerializer.Serialize(doc, Options));
    }

    public static void Keys(TextWriter o, KernelImage image, ImageSymbols symbols, JumpLabelReport report)
    {
        var doc = new
        {
            image = Image(image, symbols),
            notChecked = report.Absent,
            keys = report.Keys.Select(k => new
            {
                name = k.Name, address = k.Address == 0 ? null : Hex(k.Address), initialValue = k.InitialValue, external = k.External,
                section = k.Section, sites = k.Sites, nop = k.NopSites, jmp = k.JumpSites, other = k.OtherSites, broken = k.BrokenSites,
            }),
        };
        o.WriteLine(JsonSerializer.Serialize(doc, Options));
    }

    public static void Sites(TextWriter o, KernelImage image, ImageSymbols symbols, JumpLabelReport report, IReadOnlyList<JumpSite> sites)
    {
        var doc = new
        {
            image = Image(image, symbols),
            sites = sites.Select(s => new
            {
                address = Hex(s.Entry.Code),
                location = symbols.Names.FormatPS(s.Entry.Code, image.ModuleName),
                function = symbols.Names.FunctionAt(s.Entry.Code),
                size = s.Size == 0 ? (int?)null : s.Size,
                state = s.State,
                expected = s.ExpectJump switch { true => "jump", false => "nop", null => null },
                target = Hex(s.Entry.Target),
                targetLocation = symbols.Names.FormatPS(s.Entry.Target, image.ModuleName),
                key = report.Keys[s.KeyIndex].Name,
                keyAddress = report.Keys[s.KeyIndex].Address == 0 ? null : Hex(report.Keys[s.KeyIndex].Address),
                branch = s.Entry.Branch ? "likely" : "unlikely",
                nopMark = s.Entry.NopMark,
                initText = s.InitText,
            }),
        };
        o.WriteLine(JsonSerializer.Serialize(doc, Options));
    }

    public static void BootSimulation(TextWriter o, KernelImage image, ImageSymbols symbols, CpuModel cpu, CpuFeatureNames names, BootPatcher boot,
        string? emit)
    {
        var doc = new
        {
            image = Image(image, symbols),
            cpu = new { spec = cpu.Description, uniprocessor = cpu.Uniprocessor, features = cpu.Features.Order().Select(names.Name), namesFrom = names.Source },
            era = boot.Era,
            nops = boot.NopSet,
            steps = boot.Steps.Select(s => new { name = s.Name, function = s.Function, sites = s.Sites, rewritten = s.Changed, skipped = s.Skipped }),
            events = boot.Events.Select(e => new
            {
                kind = e.Kind.ToString().ToLowerInvariant(), step = e.Step, address = e.Address == 0 ? null : Hex(e.Address), location = e.Location.Length == 0
                    ? null : e.Location,
                lines = e.KernelLines, explanation = e.Explanation,
            }),
            patches = boot.Patches.Select(p => new { step = p.Step, address = Hex(p.Address), location = symbols.Names.FormatPS(p.Address),
                old = X86Code.Hex(p.Old), @new = X86Code.Hex(p.New), key = p.Key }),
            bugs = boot.Bugs,
            warnings = boot.Warnings,
            halted = boot.Halted,
            emitted = emit,
        };
        o.WriteLine(JsonSerializer.Serialize(doc, Options));
    }

    public static void Simulation(TextWriter o, KernelImage image, ImageSymbols symbols, JumpLabelCore core, string scenario, Dictionary<ulong,
        List<KeyUser>> users)
    {
        var doc = new
        {
            image = Image(image, symbols),
            layout = core.Vmlinux.Report.Era!.Name,
            kernels = core.Vmlinux.Report.Era.Kernels,
            modernRefcount = core.ModernRefcount,
            systemState = core.State == SystemState.Running ? "running" : "scheduling",
            scenario,
            events = core.Events.Select(e => new
            {
                kind = e.Kind, operation = e.Operation, key = e.Key, site = e.Site is { } s ? Hex(s) : null, location = e.SiteLocation,
                lines = e.Lines, callPath = e.CallPath, detail = e.Detail,
            }),
            bugs = core.Bugs,
            warnings = core.Warnings,
            halted = core.Halted,
            keyUsers = users.Where(u => core.Keys.Any(k => k.Address == u.Key)).Select(u => new
            {
                key = core.Keys.First(k => k.Address == u.Key).Name,
                keyAddress = Hex(u.Key),
                users = u.Value.Select(x => new
                {
                    function = x.Function, address = Hex(x.Address), location = x.Location, operation = x.Operation, flips = x.Flips,
                    initText = x.InitText, runsAtBoot = x.RunsAtBoot,
                    callers = x.Callers.Select(c => new { function = c.Function, location = c.Location, initText = c.InitText }),
                }),
            }),
        };
        o.WriteLine(JsonSerializer.Serialize(doc, Options));
    }

    public static void TableSites(TextWriter o, KernelImage image, ImageSymbols symbols, TableReport table, IReadOnlyList<TableSite> sites)
    {
        var doc = new
        {
            image = Image(image, symbols),
            table = table.Name,
            layout = table.Layout,
            sites = sites.Select(s => new
            {
                address = Hex(s.Address), location = symbols.Names.FormatPS(s.Address, image.ModuleName), state = s.State,
                target = s.Target is { } t ? Hex(t) : null, targetLocation = s.Target is { } t2 ? symbols.Names.FormatPS(t2, image.ModuleName) : null,
                    note = s.Note,
            }),
        };
        o.WriteLine(JsonSerializer.Serialize(doc, Options));
    }
}
