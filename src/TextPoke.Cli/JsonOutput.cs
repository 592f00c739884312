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
    static string Hex(ulong value) => $"0x{value:x16}";

    static void Write<T>(TextWriter o, T document) => o.WriteLine(JsonModelContext.Serialize(document));

    internal static ImageJson Image(KernelImage image, ImageSymbols symbols) => new(
        image.Path, image.Kind.ToString().ToLowerInvariant(), image.Describe(), image.Banner, image.ModuleName,
        new SymbolsJson(symbols.Names.Source.ToString().ToLowerInvariant(), symbols.Describe(), symbols.Names.Count, symbols.Notes));

    internal static FindingJson Finding(Finding f) => new(
        f.Table, f.Rule, f.Severity, f.Title, f.Address is { } a ? Hex(a) : null, f.Location, f.Key, f.KeyAddress is { } k ? Hex(k) : null,
        f.KernelLines, f.Explanation, f.ActualBytes, f.ExpectedBytes, f.Size, f.Type);

    static TableJson? JumpTable(JumpLabelReport? jump) => jump == null ? null
        : Table(JumpLabelCheck.TableName, jump.Status, jump.Bounds, jump.Era?.Name, jump.Era?.Kernels, jump.EraEvidence, jump.Absent,
            jump.Stats is { } s ? new Dictionary<string, int>
            {
                ["entries"] = s.Entries, ["keys"] = s.Keys, ["nop"] = s.Nop, ["jump"] = s.Jump, ["other"] = s.Other, ["twoByte"] = s.TwoByte,
                ["fiveByte"] = s.FiveByte, ["initText"] = s.InitText, ["nopMarked"] = s.NopMarked, ["findings"] = s.Findings,
            } : null,
            jump.Findings);

    static TableJson Table(TableReport t) => Table(t.Name, t.Status, t.Bounds, t.Layout, null, t.Evidence, t.Absent,
        t.Absent != null ? null : new Dictionary<string, int>(t.Counts) { ["entries"] = t.Entries, ["findings"] = t.Findings.Count }, t.Findings);

    /// <summary>One table, the jump table or any other, in the same shape.</summary>
    static TableJson Table(string name, TableStatus status, TableBounds? bounds, string? layout, string? kernels, string? evidence, string? absent,
        IReadOnlyDictionary<string, int>? stats, IEnumerable<Finding> findings) => new(
        name, status, bounds != null, bounds is { } b ? Hex(b.Start) : null, bounds is { } b2 ? Hex(b2.Stop) : null, bounds?.How, bounds?.Section?.Name,
        layout, kernels, evidence, absent, stats, findings.Select(Finding).ToList());

    internal static CheckJson CheckDocument(CheckResult result) => new(
        Image(result.Image, result.Symbols),
        new[] { JumpTable(result.Jump) }.OfType<TableJson>().Concat(result.Tables.Select(Table)).ToList(),
        result.Module.Select(Finding).ToList(),
        result.Findings.Count(),
        result.Verdict,
        result.NotChecked.Select(t => t.Name).ToList(),
        result.Clean);

    public static void Check(TextWriter o, CheckResult result) => Write(o, CheckDocument(result));

    public static void Keys(TextWriter o, KernelImage image, ImageSymbols symbols, JumpLabelReport report) => Write(o, new KeysJson(
        Image(image, symbols), report.Absent,
        report.Keys.Select(k => new KeyJson(k.Name, k.Address == 0 ? null : Hex(k.Address), k.InitialValue, k.External, k.Section, k.Sites, k.NopSites,
            k.JumpSites, k.OtherSites, k.BrokenSites)).ToList()));

    public static void Sites(TextWriter o, KernelImage image, ImageSymbols symbols, JumpLabelReport report, IReadOnlyList<JumpSite> sites) => Write(o,
        new SitesJson(
        Image(image, symbols),
        sites.Select(s => new SiteJson(
            Hex(s.Entry.Code),
            symbols.Names.FormatPS(s.Entry.Code, image.ModuleName),
            symbols.Names.FunctionAt(s.Entry.Code),
            s.Size == 0 ? null : s.Size,
            s.State,
            s.ExpectJump switch { true => "jump", false => "nop", null => null },
            Hex(s.Entry.Target),
            symbols.Names.FormatPS(s.Entry.Target, image.ModuleName),
            report.Keys[s.KeyIndex].Name,
            report.Keys[s.KeyIndex].Address == 0 ? null : Hex(report.Keys[s.KeyIndex].Address),
            s.Entry.Branch ? "likely" : "unlikely",
            s.Entry.NopMark,
            s.InitText)).ToList()));

    public static void BootSimulation(TextWriter o, KernelImage image, ImageSymbols symbols, CpuModel cpu, CpuFeatureNames names, BootPatcher boot,
        string? emit) => Write(o, new BootSimulationJson(
        Image(image, symbols),
        new CpuJson(cpu.Description, cpu.Uniprocessor, cpu.Features.Order().Select(names.Name).ToList(), names.Source),
        boot.Era,
        boot.NopSet,
        boot.Steps.Select(s => new BootStepJson(s.Name, s.Function, s.Sites, s.Changed, s.Skipped)).ToList(),
        boot.Events.Select(e => new BootEventJson(e.Kind.ToString().ToLowerInvariant(), e.Step, e.Address == 0 ? null : Hex(e.Address),
            e.Location.Length == 0 ? null : e.Location, e.KernelLines, e.Explanation)).ToList(),
        boot.Patches.Select(p => new BootPatchJson(p.Step, Hex(p.Address), symbols.Names.FormatPS(p.Address), X86Code.Hex(p.Old), X86Code.Hex(p.New),
            p.Key)).ToList(),
        boot.Bugs, boot.Warnings, boot.Halted, emit));

    public static void Simulation(TextWriter o, KernelImage image, ImageSymbols symbols, JumpLabelCore core, string scenario, Dictionary<ulong,
        List<KeyUser>> users) => Write(o, new SimulationJson(
        Image(image, symbols),
        core.Vmlinux.Report.Era!.Name,
        core.Vmlinux.Report.Era.Kernels,
        core.ModernRefcount,
        core.State == SystemState.Running ? "running" : "scheduling",
        scenario,
        core.Events.Select(e => new SimulationEventJson(e.Kind, e.Operation, e.Key, e.Site is { } s ? Hex(s) : null, e.SiteLocation, e.Lines,
            e.CallPath, e.Detail)).ToList(),
        core.Bugs, core.Warnings, core.Halted,
        users.Where(u => core.Keys.Any(k => k.Address == u.Key)).Select(u => new KeyUsersJson(
            core.Keys.First(k => k.Address == u.Key).Name,
            Hex(u.Key),
            u.Value.Select(x => new KeyUserJson(x.Function, Hex(x.Address), x.Location, x.Operation, x.Flips, x.InitText, x.RunsAtBoot, x.BootPath, x.Through,
                x.Callers.Select(c => new KeyCallerJson(c.Function, c.Location, c.InitText)).ToList())).ToList())).ToList()));

    public static void TableSites(TextWriter o, KernelImage image, ImageSymbols symbols, TableReport table, IReadOnlyList<TableSite> sites) =>
        Write(o, new TableSitesJson(
            Image(image, symbols), table.Name, table.Layout,
            sites.Select(s => new TableSiteJson(Hex(s.Address), symbols.Names.FormatPS(s.Address, image.ModuleName), s.State,
                s.Target is { } t ? Hex(t) : null, s.Target is { } t2 ? symbols.Names.FormatPS(t2, image.ModuleName) : null, s.Note)).ToList()));

    public static void Decode(TextWriter o, DecodeJson document) => Write(o, document);

    public static void Boot(TextWriter o, BootJson document) => Write(o, document);

    public static void ModuleTree(TextWriter o, ModuleTreeJson document) => Write(o, document);

    internal static VerifyJson VerifyDocument(KernelImage image, ImageSymbols symbols, Live.VerifyResult v) => new(
        Image(image, symbols), v.Memory, $"0x{v.Slide:x}", v.CpuSource, v.Features, v.Uniprocessor, Hex(v.TextStart), Hex(v.TextEnd), v.BytesCompared,
        v.BytesUnreadable,
        v.DifferingBytes, v.Explained, v.Inconsistent, v.Unexplained, v.ByMechanism.Select(m => new MechanismCountJson(m.Mechanism, m.Ranges)).ToList(),
        v.Notes, v.Ranges.Select(r => new DifferingRangeJson(Hex(r.Address), r.Length, r.Location, r.Verdict.ToString().ToLowerInvariant(), r.Mechanism,
            r.Detail, X86Code.Hex(r.Live), X86Code.Hex(r.Expected), r.LiveCode, r.ExpectedCode)).ToList());

    public static void Verify(TextWriter o, KernelImage image, ImageSymbols symbols, Live.VerifyResult v) => Write(o, VerifyDocument(image, symbols, v));
}
