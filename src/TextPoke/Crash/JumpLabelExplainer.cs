using System.Globalization;
using System.Text.RegularExpressions;
using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Messages;
using TextPoke.Symbols;
using TextPoke.X86;

namespace TextPoke.Crash;

/// <summary>What textpoke can say about a "jump_label: Fatal kernel bug, unexpected op" report, given the image.</summary>
public sealed record JumpLabelExplanation(string Location, ulong? Address, string? Key, bool? KeyInitiallyOn, string? Branch,
    string LoggedBytes, string ExpectedBytes, int Size, int Type, string? DiskBytes, bool? BadOnDisk, string? Enabler, string? EnablerCaller,
    IReadOnlyList<string> Lines);

/// <summary>
/// Looks the site of a jump_label BUG up in the image: which entry and key, what the image holds on disk there, whether
/// the bad instruction was already in the file (the build left the site unpatched) or not (the text changed at run
/// time, or this is not the booted image), and which function enabled the key (from the call trace).
/// </summary>
public static class JumpLabelExplainer
{
    // Frames of the jump-label machinery itself; the first frame after them is the code that changed the key.
    static readonly HashSet<string> Machinery = new(StringComparer.Ordinal)
    {
        "__jump_label_patch", "arch_jump_label_transform_queue", "arch_jump_label_transform", "jump_label_transform", "__jump_label_transform",
        "__jump_label_update", "jump_label_update", "__jump_label_mod_update", "static_key_slow_inc_cpuslocked", "static_key_slow_inc",
        "static_key_enable_cpuslocked", "static_key_enable", "static_key_disable_cpuslocked", "static_key_disable",
        "__static_key_slow_dec_cpuslocked", "__static_key_slow_dec", "static_key_slow_dec", "static_key_slow_dec_cpuslocked",
        "jump_label_add_module", "jump_label_module_notify", "arch_jump_label_transform_apply", "__jump_label_set_jump_code",
        "arch_jump_label_transform_static",
    };

    public static bool Applies(CrashReport report) =>
        report.Lines.Any(l => KernelMessages.ParseUnexpectedOp(l) != null || KernelMessages.ParseUnexpectedOpOld(l) != null);

    public static JumpLabelExplanation? Explain(CrashReport report, KernelImage? image, ImageSymbols? symbols)
    {
        SymbolOffset at;
        string logged, expected;
        int siteSize, type;
        string what;
        bool early = false;
        if (report.Lines.Select(KernelMessages.ParseUnexpectedOp).FirstOrDefault(x => x != null) is var (at1, logged1, expected1, size1, type1))
        {
            (at, logged, expected, siteSize, type) = (at1, logged1, expected1, size1, type1);
            what = $"the kernel was switching the jump-label site at {at} to {(type == 1 ? "JMP" : "NOP")} (type:{type}) and expected " +
                $"{string.Join(' ', expected.Split(' ').Take(siteSize))} there; it found {string.Join(' ', logged.Split(' ').Take(siteSize))}.";
        }
        else if (report.Lines.Select(KernelMessages.ParseUnexpectedOpOld).FirstOrDefault(x => x != null) is var (at2, logged2, line))
        {
            // v4.20..v5.13 (__jump_label_set_jump_code, lines of v5.10): the line number is the expectation that failed.
            (at, logged, siteSize) = (at2, logged2, 5);
            (type, expected, what, early) = line switch
            {
                45 => (0, "0f 1f 44 00 00", $"jump_label_init() (or a module's load) was rewriting the jump-label site at {at} to the ideal NOP, which it " +
                    "does only when the CPU's ideal NOP5 is not the compiler's (K8 NOPs, e.g. QEMU's qemu64), and expected the compiler's NOP 0f 1f 44 00 " +
                    $"00 there (line 45); it found {logged}. At boot this runs in setup_arch(), before the console exists: the machine stops silently " +
                    "and the report is only in the log buffer.", true),
                47 => (1, "the ideal NOP5", $"the kernel was switching the jump-label site at {at} to JMP and expected the ideal NOP5 there (line 47); it " +
                    $"found {logged}.", false),
                49 => (0, "the JMP to the branch target", $"the kernel was switching the jump-label site at {at} to NOP and expected its JMP there " +
                    $"(line 49); it found {logged}.", false),
                _ => (-1, "?", $"the jump-label site at {at} held {logged}, which the line-{line} check of this kernel's jump_label.c did not expect.", false),
            };
        }
        else return null;
        var (function, offset, size) = at;
        string location = at.ToString();
        // The reliable frames, or all of them when there are none (an early BUG's trace is all '?' frames: no unwinder yet).
        var frames = report.Frames.Select(f => ConsoleLog.Function(f.Function)).ToList();
        if (!early && report.Frames.Any(f => f.Reliable)) frames = report.Frames.Where(f => f.Reliable).Select(f => ConsoleLog.Function(f.Function)).ToList();
        int firstUser = frames.FindIndex(f => !Machinery.Contains(f) && !f.StartsWith("early_", StringComparison.Ordinal) && f != "__jump_label_set_jump_code");
        string? enabler = firstUser >= 0 ? frames[firstUser] : null;
        string? caller = firstUser >= 0 && firstUser + 1 < frames.Count ? frames[firstUser + 1] : null;
        var lines = new List<string> { what };
        if (enabler != null && early)
            lines.Add($"it happened in {enabler}{(caller != null ? $", called from {caller}" : "")}: the boot-time check of every site, not a key change.");
        else if (enabler != null)
            lines.Add($"the key was changed by {enabler}{(caller != null ? $", called from {caller}" : "")} (first frames of the call trace outside the " +
                $"jump-label code).");

        ulong? address = null;
        string? key = null, branch = null, disk = null;
        bool? on = null, bad = null;
        if (image != null && symbols != null && symbols.TryFind(function, out ulong start, out _))
        {
            address = start + offset;
            if (symbols.Names.Lookup(address.Value) is { } hit && hit.Size != size)
                lines.Add($"warning: {function} is 0x{hit.Size:x} bytes in {image.Path}, the log says 0x{size:x}: this is probably not the image that booted.");
            var report2 = JumpLabelCheck.Run(image, symbols);
            var site = report2.Sites.FirstOrDefault(s => s.Entry.Code == address.Value);
            var bytes = new byte[siteSize];
            image.Read(address.Value, bytes);
            disk = X86Code.Hex(bytes);
            bad = disk == string.Join(' ', logged.Split(' ').Take(siteSize));
            if (site.Entry.Code == address.Value)
            {
                var k = report2.Keys[site.KeyIndex];
                key = k.Name;
                on = k.InitialValue;
                branch = site.Entry.Branch ? "static_branch_likely" : "static_branch_unlikely";
                lines.Add($"it is entry {site.Entry.Index} of __jump_table: key {k.Name} (" +
                    $"{(on switch { true => "initially on", false => "initially off", null => "state unknown" })}, {k.Section}), " +
                    $"{branch}{(site.Entry.NopMark ? ", with objtool's NOP mark" : "")}.");
            }
            else lines.Add($"warning: {location} ({address:x16}) is not a jump-label site in {image.Path}.");
            lines.Add(bad == true
                ? $"on disk the image holds {disk} at {location}: the bad instruction is in the file — the build (objtool) left the site unpatched, or the " +
                    $"image was modified. `textpoke check` finds {report2.Findings.Count} broken jump-label site{(report2.Findings.Count == 1 ? "" : "s")} " +
                    $"in it; `textpoke fix` repairs them."
                : $"on disk the image holds {disk} at {location}, the expected bytes: the text was changed at run time (something else patched it), or this " +
                    $"is not the image that booted.");
        }
        else if (image != null)
            lines.Add($"{function} is not a symbol of {image.Path}: give the kernel that booted (--vmlinux) to look the site up.");
        return new JumpLabelExplanation(location, address, key, on, branch, logged, expected, siteSize, type, disk, bad, enabler, caller, lines);
    }
}
