using System.Text;
using TextPoke.Checks;
using TextPoke.Emulation;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.X86;

namespace TextPoke.Cli;

/// <summary>Human-readable output: kernel-style lines first, then explanations and a summary.</summary>
static class TextOutput
{
    const int Width = 100;

    static void Header(TextWriter o, KernelImage image, ImageSymbols symbols)
    {
        o.WriteLine($"image    {image.Path}: {image.Describe()}");
        if (image.Banner != null) o.WriteLine($"banner   {image.Banner}");
        o.WriteLine($"symbols  {symbols.Describe()}");
        foreach (var note in symbols.Notes) o.WriteLine($"note     {note}");
    }

    public static void Check(TextWriter o, CheckResult result)
    {
        Header(o, result.Image, result.Symbols);
        var jump = result.Jump;
        if (jump != null)
        {
            o.WriteLine();
            if (jump.Bounds != null)
                o.WriteLine($"__jump_table  [{jump.Bounds.Start:x16}, {jump.Bounds.Stop:x16}) {jump.Bounds.Length} bytes in " +
                    $"{jump.Bounds.Section?.Name ?? "no section"}, bounds from {jump.Bounds.How}");
            if (jump.Era != null)
                o.WriteLine($"  layout      {jump.Era.Name} ({jump.Era.Kernels}): {jump.EraEvidence}");
            if (jump.Absent != null)
                o.WriteLine($"  not checked {jump.Absent}");
            foreach (var f in jump.Findings) Finding(o, f);
        }
        foreach (var f in result.Module) Finding(o, f);
        foreach (var t in result.Tables.Where(t => t.Findings.Count > 0))
        {
            o.WriteLine();
            o.WriteLine($"{t.Title}  [{t.Bounds!.Start:x16}, {t.Bounds.Stop:x16}) {t.Layout}");
            foreach (var f in t.Findings) Finding(o, f);
        }
        o.WriteLine();
        o.WriteLine("summary");
        if (jump != null) o.WriteLine($"  {JumpSummary(jump)}");
        // Tables the image simply does not have share one line: a kernel without CFI or call thunks need not list each.
        var absent = result.Tables.Where(t => t.Status == TableStatus.Absent && t.Absent == SiteTables.AbsentText).ToList();
        var empty = result.Tables.Where(t => t.Status == TableStatus.Empty && t.Findings.Count == 0).ToList();
        foreach (var t in result.Tables.Except(absent).Except(empty)) o.WriteLine($"  {TableSummary(t)}");
        if (empty.Count > 0) o.WriteLine($"  {"empty",-15} {string.Join(", ", empty.Select(t => t.Name))} (0 entries)");
        if (absent.Count > 0) o.WriteLine($"  {"absent",-15} {string.Join(", ", absent.Select(t => t.Name))} (no section, no start/stop symbols)");
        o.WriteLine(ResultLine(result));
    }

    /// <summary>Only the findings of a check (the kernel's lines, rule and explanation of each), then its result line.</summary>
    public static void Findings(TextWriter o, CheckResult result)
    {
        foreach (var f in result.Findings) Finding(o, f);
        o.WriteLine(ResultLine(result));
    }

    /// <summary>The last line of a check: clean only when every table the image has was read and judged.</summary>
    public static string ResultLine(CheckResult result)
    {
        int count = result.Failing.Count();
        int bugs = result.Findings.Count(f => f.Severity == Severity.Bug);
        int notices = result.Findings.Count(f => f.Severity == Severity.Notice);
        var unread = result.NotChecked.Select(t => t.Name).ToList();
        string notChecked = unread.Count == 0 ? "" : $"; not checked: {string.Join(", ", unread)}";
        string noticeText = notices == 0 || result.Strict ? ""
            : $" ({notices} notice{(notices == 1 ? "" : "s")}: reported above, cannot change behaviour; --strict fails on them)";
        return result.Verdict switch
        {
            CheckVerdict.Clean => $"result: clean, 0 findings{noticeText}",
            CheckVerdict.NotChecked => $"result: not checked, 0 findings in the tables read, but {unread.Count} table{(unread.Count == 1 ? "" : "s")} " +
                $"the image has or may have could not be read: {string.Join(", ", unread)}",
            _ => $"result: {count} finding{(count == 1 ? "" : "s")}{(bugs > 0 ? $", {bugs} of them will crash or corrupt the kernel" : "")}{notChecked}" +
                $"{noticeText}",
        };
    }

    static string TableSummary(TableReport t)
    {
        string name = t.Name.PadRight(15);
        if (t.Absent != null) return $"{name} {t.Title}: {t.Absent}";
        string counts = string.Join(", ", t.Counts.Where(c => c.Key != "entries").Select(c => $"{c.Value} {c.Key}"));
        return $"{name} {t.Title}: {t.Entries} entries ({t.Layout}){(counts.Length > 0 ? $": {counts}" : "")}; {t.Findings.Count} " +
            $"finding{(t.Findings.Count == 1 ? "" : "s")}";
    }

    static string JumpSummary(JumpLabelReport jump)
    {
        if (jump.Stats == null) return $"{"jump",-15} __jump_table: not checked: {jump.Absent}";
        var s = jump.Stats;
        return $"{"jump",-15} __jump_table: {s.Entries} entries, {s.Keys} keys: {s.Nop} NOP, {s.Jump} JMP, {s.Other} other; {s.TwoByte} 2-byte, " +
            $"{s.FiveByte} 5-byte; " +
               $"{s.InitText} in init text; {s.NopMarked} with objtool's NOP mark; {s.Findings} finding{(s.Findings == 1 ? "" : "s")}";
    }

    public static void Finding(TextWriter o, Finding f)
    {
        o.WriteLine();
        if (f.KernelLines.Count == 0)
            o.WriteLine($"textpoke: {f.Title} at {f.Location ?? (f.Address is { } a ? $"{a:x16}" : f.Key ?? "the table")}");
        foreach (var line in f.KernelLines) o.WriteLine(line);
        o.WriteLine($"    [{f.Rule}, {f.Severity.ToString().ToLowerInvariant()}] {f.Title}");
        foreach (var line in Wrap(f.Explanation, Width - 4)) o.WriteLine($"    {line}");
    }

    static IEnumerable<string> Wrap(string text, int width)
    {
        var line = new StringBuilder();
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.Length > 0 && line.Length + 1 + word.Length > width)
            {
                yield return line.ToString();
                line.Clear();
            }
            if (line.Length > 0) line.Append(' ');
            line.Append(word);
        }
        if (line.Length > 0) yield return line.ToString();
    }

    public static void Keys(TextWriter o, KernelImage image, ImageSymbols symbols, JumpLabelReport report)
    {
        Header(o, image, symbols);
        if (report.Absent != null && report.Keys.Length == 0) { o.WriteLine($"no jump table: {report.Absent}"); return; }
        o.WriteLine();
        int nameWidth = Math.Max(4, report.Keys.Select(k => k.Name.Length).DefaultIfEmpty(4).Max());
        o.WriteLine($"{"KEY".PadRight(nameWidth)}  {"ADDRESS",-16}  {"INITIAL",-7}  {"SECTION",-20}  {"SITES",5}  {"NOP",5}  {"JMP",5}  {"OTHER",5}  " +
            $"{"BROKEN",6}");
        foreach (var k in report.Keys.OrderBy(k => k.Name, StringComparer.Ordinal))
        {
            string initial = k.InitialValue switch { true => "on", false => "off", null => k.External ? "extern" : "?" };
            o.WriteLine($"{k.Name.PadRight(nameWidth)}  {(k.Address == 0 ? "" : k.Address.ToString("x16")),-16}  {initial,-7}  {k.Section ?? "-",-20}  " +
                $"{k.Sites,5}  {k.NopSites,5}  {k.JumpSites,5}  {k.OtherSites,5}  {k.BrokenSites,6}");
        }
        o.WriteLine();
        o.WriteLine($"{report.Keys.Length} keys, {report.Sites.Length} sites, {report.Findings.Count} findings");
    }

    public static void Sites(TextWriter o, KernelImage image, ImageSymbols symbols, JumpLabelReport report, IReadOnlyList<JumpSite> sites)
    {
        Header(o, image, symbols);
        o.WriteLine();
        var rows = sites.Select(s => (Site: s, Where: symbols.Names.FormatPS(s.Entry.Code, image.ModuleName), Target: symbols.Names.FormatPS(s.Entry.Target,
            image.ModuleName))).ToList();
        int w = Math.Max(8, rows.Select(r => r.Where.Length).DefaultIfEmpty(8).Max());
        int t = Math.Max(6, rows.Select(r => r.Target.Length).DefaultIfEmpty(6).Max());
        o.WriteLine($"{"ADDRESS",-16}  {"LOCATION".PadRight(w)}  SIZE  {"STATE",-5}  {"EXPECT",-6}  {"TARGET".PadRight(t)}  KEY");
        foreach (var (s, where, target) in rows)
        {
            string state = s.State switch { SiteState.Nop => "NOP", SiteState.Jump => "JMP", SiteState.Other => "other", _ => "none" };
            string expect = s.ExpectJump switch { true => "JMP", false => "NOP", null => "?" };
            var key = report.Keys[s.KeyIndex];
            string flags = (s.Entry.Branch ? " likely" : "") + (s.InitText ? " init" : "");
            o.WriteLine($"{s.Entry.Code:x16}  {where.PadRight(w)}  {(s.Size == 0 ? "?" : s.Size.ToString()),4}  {state,-5}  {expect,-6}  " +
                $"{target.PadRight(t)}  {key.Name}{flags}");
        }
        o.WriteLine();
        o.WriteLine($"{sites.Count} of {report.Sites.Length} sites");
    }

    public static void BootSimulation(TextWriter o, KernelImage image, ImageSymbols symbols, CpuModel cpu, CpuFeatureNames names, BootPatcher boot,
        string? emit, bool verbose)
    {
        Header(o, image, symbols);
        var shown = cpu.Features.Order().Select(b => names.Shown(b) ?? names.Name(b).Replace("X86_FEATURE_", "").Replace("X86_BUG_",
            "bug:").ToLowerInvariant()).ToList();
        o.WriteLine($"cpu      {cpu.Description}{(cpu.Uniprocessor ? ", one CPU" : "")}: {cpu.Features.Count} features " +
            $"({string.Join(" ", shown.Take(24))}{(shown.Count > 24 ? " ..." : "")})");
        o.WriteLine($"era      {boot.Era ?? "no .altinstructions"}; NOPs {boot.NopSet}; feature names from {names.Source}");
        foreach (var step in boot.Steps)
        {
            string what = step.Skipped != null ? (step.Sites > 0 ? $"{step.Sites} sites, " : "") + step.Skipped
                : $"{step.Sites} sites, {step.Changed} rewritten";
            o.WriteLine($"{step.Name,-13} {step.Function + "()",-27} {what}");
            if (verbose)
                foreach (var p in boot.Patches.Where(p => p.Step == step.Name))
                    o.WriteLine($"  {symbols.Names.FormatPS(p.Address),-48} {X86Code.Hex(p.Old)} -> {X86Code.Hex(p.New)}" +
                        (p.Key != null ? $"  ({p.Key})" : ""));
        }
        foreach (var e in boot.Events)
        {
            o.WriteLine();
            string kind = e.Kind switch { BootEventKind.Bug => "BUG", BootEventKind.Warning => "WARNING", _ => "note" };
            o.WriteLine($"{kind} in {boot.Steps.First(s => s.Name == e.Step).Function}(){(e.Location.Length > 0 ? $" at {e.Location}" : "")}:");
            foreach (var line in e.KernelLines) o.WriteLine($"  {line}");
            o.WriteLine($"  ({e.Explanation})");
        }
        if (emit != null) { o.WriteLine(); o.WriteLine($"wrote    {emit}: the ELF with {boot.Patches.Count} boot-time writes applied"); }
        o.WriteLine();
        if (boot.Bugs == 0 && boot.Warnings == 0) o.WriteLine($"result: booted: no BUG and no WARNING; {boot.Patches.Count} sites rewritten");
        else o.WriteLine($"result: {boot.Bugs} BUG{(boot.Bugs == 1 ? "" : "s")}, {boot.Warnings} WARNING{(boot.Warnings == 1 ? "" : "s")}" +
            (boot.Halted ? "; the emulated boot stopped at the first BUG, as the real one does (--keep-going to continue)" : ""));
    }

    public static void Simulation(TextWriter o, KernelImage image, ImageSymbols symbols, JumpLabelCore core, string scenario, Dictionary<ulong,
        List<KeyUser>> users, bool verbose)
    {
        Header(o, image, symbols);
        var report = core.Vmlinux.Report;
        o.WriteLine($"emulate  {report.Era!.Name} patcher ({report.Era.Kernels}); kernel/jump_label.c refcounting of " +
            $"{(core.ModernRefcount ? "v6.10+ (static_key_dec_not_one, also in 6.1.y/6.6.y)" : "v4.20..v6.9")}; " +
                    $"{(core.State == SystemState.Running ? "SYSTEM_RUNNING (after boot)" : "SYSTEM_SCHEDULING (initcalls)")}; {report.Sites.Length} " +
                        $"entries, {report.Keys.Length} keys");
        o.WriteLine($"scenario {scenario}");
        if (core.Vmlinux.Bugs == null) o.WriteLine("note     no __bug_table in the image: BUG/WARN lines use the line numbers of Debian's 6.1.y source and " +
            "no RIP");
        foreach (var e in core.Events)
        {
            switch (e.Kind)
            {
                case EventKind.Operation when verbose:
                    o.WriteLine($"> {e.Operation}");
                    break;
                case EventKind.Patched when verbose:
                    o.WriteLine($"textpoke: patched {e.SiteLocation}: {e.Detail}");
                    break;
                case EventKind.Skipped when verbose:
                case EventKind.Note:
                    o.WriteLine($"textpoke: {e.Operation}{(e.SiteLocation != null ? $" {e.SiteLocation}" : "")}: {e.Detail}");
                    break;
                case EventKind.Warning:
                case EventKind.Bug:
                    o.WriteLine();
                    o.WriteLine($"> {e.Operation}");
                    foreach (var line in e.Lines) o.WriteLine(line);
                    o.WriteLine("emulated call path (outermost first):");
                    for (int i = 0; i < e.CallPath.Count; i++)
                    {
                        string frame = i == 0 && e.Key != null ? $"{e.CallPath[i]}(&{e.Key})" : e.CallPath[i];
                        if (i == e.CallPath.Count - 1 && e.SiteLocation != null) frame += $"   site {e.SiteLocation}, key {e.Key}";
                        o.WriteLine($"  {frame}");
                    }
                    if (e.Detail != null) o.WriteLine($"  ({e.Detail})");
                    break;
            }
        }
        var flipped = users.Where(u => u.Value.Count > 0).ToList();
        var troubled = core.Events.Where(e => e.Kind is EventKind.Bug or EventKind.Warning && e.Key != null).Select(e => e.Key!).Distinct().ToList();
        foreach (var keyName in troubled)
        {
            var key = core.FindKey(keyName)!;
            if (!users.TryGetValue(key.Address, out var list)) continue;
            o.WriteLine();
            o.WriteLine($"who changes {keyName}:");
            if (list.Count == 0) o.WriteLine("  no code in the image takes its address directly (it may be changed through a pointer, a sysctl or debugfs)");
            foreach (var u in list.OrderByDescending(u => u.Flips).ThenBy(u => u.Function, StringComparer.Ordinal))
            {
                string what = u.Through != null ? $"{u.Operation ?? "takes the address of"}({u.Through}, which holds &{keyName})"
                    : u.Operation != null ? $"{u.Operation}(&{keyName})" : "takes its address";
                // The path from the code to where every boot runs it: "runs at boot: work queued by X <- called by Y <- ...".
                string boot = u.BootPath is not { } path ? "runs on demand" : path.Count == 1 ? "runs at boot (init text)"
                    : "runs at boot: " + string.Join(" <- ", path.Skip(1));
                string callers = u.Callers.Count == 0 ? "no direct callers" : "called from " + string.Join(", ", u.Callers.Take(6).Select(c => c.Function
                    + (c.InitText ? " (init)" : ""))) + (u.Callers.Count > 6 ? ", ..." : "");
                o.WriteLine($"  {u.Location,-40} {what}; {callers}; {boot}");
            }
        }
        o.WriteLine();
        int bugs = core.Bugs, warnings = core.Warnings;
        if (bugs == 0 && warnings == 0) o.WriteLine("result: no BUG and no WARNING: every site switched as the kernel expects");
        else o.WriteLine($"result: {bugs} BUG{(bugs == 1 ? "" : "s")}, {warnings} WARNING{(warnings == 1 ? "" : "s")}" +
            (core.Halted ? "; the emulated kernel stopped at the first BUG, as the real one does (--keep-going to continue)" : ""));
    }

    public static void TableSites(TextWriter o, KernelImage image, ImageSymbols symbols, TableReport table, IReadOnlyList<TableSite> sites)
    {
        Header(o, image, symbols);
        o.WriteLine();
        o.WriteLine($"{table.Title}: {table.Entries} entries ({table.Layout})");
        var rows = sites.Select(s => (Site: s, Where: symbols.Names.FormatPS(s.Address, image.ModuleName))).ToList();
        int w = Math.Max(8, rows.Select(r => r.Where.Length).DefaultIfEmpty(8).Max());
        o.WriteLine($"{"ADDRESS",-16}  {"LOCATION".PadRight(w)}  {"STATE",-22}  TARGET");
        foreach (var (s, where) in rows)
        {
            string target = s.Target is { } t ? symbols.Names.FormatPS(t, image.ModuleName) : "";
            o.WriteLine($"{s.Address:x16}  {where.PadRight(w)}  {s.State,-22}  {target}{(s.Note != null ? $"  {s.Note}" : "")}".TrimEnd());
        }
        o.WriteLine();
        o.WriteLine($"{sites.Count} of {table.Sites.Count} sites");
    }

    /// <summary>verify and boot --verify: what was compared, every range that is not explained (all with -v), the breakdown.</summary>
    public static void Verify(TextWriter o, string imagePath, Live.VerifyResult v, bool verbose)
    {
        o.WriteLine($"memory   {v.Memory}; KASLR slide 0x{v.Slide:x}");
        o.WriteLine($"cpu      {v.CpuSource}; {(v.Uniprocessor ? "one CPU online" : "SMP")}");
        o.WriteLine($"compared {v.BytesCompared:N0} bytes of kernel text [{v.TextStart:x16}, {v.TextEnd:x16}) with {imagePath} after the emulated boot; " +
            $"{v.DifferingBytes:N0} bytes differ in {v.Ranges.Count:N0} ranges");
        foreach (var note in v.Notes) o.WriteLine($"note     {note}");
        foreach (var r in v.Ranges)
        {
            if (r.Verdict == Live.RangeVerdict.Explained && !verbose) continue;
            string what = r.Verdict switch
            {
                Live.RangeVerdict.Explained => "explained", Live.RangeVerdict.Inconsistent => "INCONSISTENT", _ => "UNEXPLAINED",
            };
            o.WriteLine();
            o.WriteLine($"{what,-12} {r.Location} [{r.Address:x16}] {r.Length} byte{(r.Length == 1 ? "" : "s")} ({r.Mechanism}): {r.Detail}");
            o.WriteLine($"    live      {X86Code.Hex(r.Live)}");
            o.WriteLine($"    expected  {X86Code.Hex(r.Expected)}");
            if (r.LiveCode.Count > 0)
            {
                o.WriteLine("    live code:");
                foreach (var line in r.LiveCode) o.WriteLine($"      {line}");
                o.WriteLine("    expected code:");
                foreach (var line in r.ExpectedCode) o.WriteLine($"      {line}");
            }
        }
        o.WriteLine();
        var by = string.Join(", ", v.ByMechanism.Select(m => $"{m.Mechanism} {m.Ranges}"));
        o.WriteLine($"explained {v.Explained} of {v.Ranges.Count} differing ranges{(by.Length > 0 ? $" ({by})" : "")}");
        if (v.Unexplained + v.Inconsistent == 0)
            o.WriteLine($"result: all {v.Ranges.Count} differing ranges explained");
        else
            o.WriteLine($"result: {v.Unexplained} unexplained, {v.Inconsistent} inconsistent with their live state");
    }
}
