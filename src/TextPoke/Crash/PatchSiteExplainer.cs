using TextPoke.Checks;
using TextPoke.Emulation;
using TextPoke.Images;
using TextPoke.Messages;
using TextPoke.Symbols;
using TextPoke.X86;

namespace TextPoke.Crash;

/// <summary>
/// The other self-patching failures the kernel reports, looked up in the image as the jump-label explainer does:
/// "unexpected static_call insn opcode" (static_call_init / static_call_update BUG), "ftrace failed to modify"
/// (ftrace_bug), "missing return thunk" (apply_returns WARN) and the BUG_ONs of arch/x86/kernel/alternative.c. For each:
/// the table entry, what the image holds on disk at the site, whether that already is the bad instruction (the build
/// left it so) or not (the text changed at run time, or this is not the image that booted), and what `check` says of
/// the whole table.
/// </summary>
public static class PatchSiteExplainer
{
    static bool AlternativeBug(string line) => KernelMessages.ParseBug(line) is { File: "arch/x86/kernel/alternative.c" };

    public enum Kind { StaticCall, Ftrace, ReturnThunk, Alternatives }

    /// <summary>Which failure a report (with the lines just before it, where WARN messages are printed) is, if any.</summary>
    public static Kind? Applies(CrashReport report, IReadOnlyList<string> before)
    {
        var lines = before.Concat(report.Lines).ToList();
        if (lines.Any(l => KernelMessages.ParseStaticCallInsn(l) != null)) return Kind.StaticCall;
        if (lines.Any(KernelMessages.IsFtraceFailed)) return Kind.Ftrace;
        if (lines.Any(l => KernelMessages.ParseReturnThunk(l) != null)) return Kind.ReturnThunk;
        if (report.Lines.Any(AlternativeBug)) return Kind.Alternatives;
        return null;
    }

    public static IReadOnlyList<string> Explain(CrashReport report, IReadOnlyList<string> before, KernelImage image, ImageSymbols symbols)
    {
        var lines = before.Concat(report.Lines).ToList();
        switch (Applies(report, before))
        {
            case Kind.StaticCall:
            {
                var (logged, at) = lines.Select(KernelMessages.ParseStaticCallInsn).First(x => x != null)!.Value;
                return Site(image, symbols, "static_calls", at, 5,
                    disk => disk[0] == logged, $"opcode 0x{logged:x}",
                    "static_call_init() (or a later static_call_update()) validates a site before rewriting it: a call site must hold CALL, the 5-byte NOP " +
                        "or `xor %eax,%eax`, a tail-call site JMP32, RET or Jcc.d32");
            }
            case Kind.Ftrace:
            {
                int at = lines.FindIndex(KernelMessages.IsFtraceFailed);
                var site = lines.Skip(at).Select(KernelMessages.ParseFtraceSite).FirstOrDefault(x => x != null);
                string? actualHex = lines.Skip(at).Select(KernelMessages.ParseFtraceActual).FirstOrDefault(x => x != null);
                if (site == null) return ["the ftrace_bug report does not name its site ([<address>] func+off/size)"];
                return Site(image, symbols, "mcount", site.Value, 5,
                    disk => actualHex != null && X86Code.Hex(disk) == actualHex, actualHex != null ? $"bytes {actualHex}" : "bytes the log does not show",
                    "ftrace_init() turns every `call __fentry__` into the 5-byte NOP (and later back into calls) after checking the site holds what it " +
                        "expects; a mismatch is ftrace_bug(), and ftrace is disabled");
            }
            case Kind.ReturnThunk:
            {
                var (at, logged) = lines.Select(KernelMessages.ParseReturnThunk).First(x => x != null)!.Value;
                return Site(image, symbols, "return_sites", at, 5,
                    disk => X86Code.Hex(disk) == logged, $"bytes {logged}",
                    "apply_returns() rewrites every `jmp __x86_return_thunk` objtool listed in .return_sites; a site that does not jump there is left alone " +
                        "with this warning, so that return is not mitigated");
            }
            case Kind.Alternatives:
                return Alternatives(image, symbols);
            default:
                return [];
        }
    }

    static IReadOnlyList<string> Site(KernelImage image, ImageSymbols symbols, string table, SymbolOffset at, int length,
        Func<byte[], bool> sameAsLogged, string loggedText, string mechanism)
    {
        var (function, offset, size) = at;
        string location = at.ToString();
        var result = new List<string> { $"{mechanism}." };
        if (!symbols.TryFind(function, out ulong start, out _))
        {
            result.Add($"{function} is not a symbol of {image.Path}: give the kernel that booted (--vmlinux) to look the site up.");
            return result;
        }
        ulong address = start + offset;
        if (symbols.Names.Lookup(address) is { } hit && hit.Size != size)
            result.Add($"warning: {function} is 0x{hit.Size:x} bytes in {image.Path}, the log says 0x{size:x}: this is probably not the image that booted.");
        var definition = SiteTables.All.Single(t => t.Name == table);
        var report = SiteTables.Run(definition, new TableContext(image, symbols));
        var entry = report.Sites.FirstOrDefault(s => s.Address == address);
        if (report.Absent != null) result.Add($"{definition.Title}: {report.Absent}.");
        else if (entry.Address == address)
            result.Add($"{location} is an entry of {definition.Title}: on disk it is {entry.State}{(entry.Note != null ? $" ({entry.Note})" : "")}" +
                $"{(entry.Target is { } t ? $", to {symbols.Names.FormatPS(t)}" : "")}.");
        else result.Add($"warning: {location} ({address:x16}) is not an entry of {definition.Title} in {image.Path}.");
        var disk = new byte[length];
        image.Read(address, disk);
        bool same = sameAsLogged(disk);
        result.Add(same
            ? $"on disk the image holds {X86Code.Hex(disk)} at {location}, the {loggedText} the kernel complained about: the bad instruction is in the file " +
                $"— the build left the site so (objtool or the link step), or the image was modified. `textpoke check --tables {table}` finds " +
                $"{report.Findings.Count} broken site{(report.Findings.Count == 1 ? "" : "s")} in this table."
            : $"on disk the image holds {X86Code.Hex(disk)} at {location}, not the {loggedText} the kernel saw: the text was changed at run time (something " +
                $"else patched it), or this is not the image that booted.");
        return result;
    }

    // A BUG_ON in alternative.c: emulate the boot-time patching and name the entries that hit one.
    static IReadOnlyList<string> Alternatives(KernelImage image, ImageSymbols symbols)
    {
        var names = CpuFeatureNames.Load(image, symbols);
        var boot = BootPatcher.Run(image, symbols, CpuModel.Parse("qemu64", names), names, keepGoing: true);
        var bugs = boot.Events.Where(e => e.Kind == BootEventKind.Bug && e.Step is "alternatives" or "paravirt" or "retpolines").ToList();
        if (bugs.Count == 0)
            return ["apply_alternatives/apply_paravirt hit a BUG_ON, but emulating the boot patching of this image on a qemu64 CPU (textpoke simulate " +
                "--boot) hits none: the table was changed at run time, the CPU's features lead elsewhere (try simulate --boot --cpu host), or this is not " +
                "the image that booted."];
        var result = new List<string> { $"textpoke simulate --boot finds {bugs.Count} entr{(bugs.Count == 1 ? "y" : "ies")} of this image that BUG during " +
            $"boot-time patching:" };
        foreach (var b in bugs.Take(5)) result.Add($"  {b.Location}: {b.Explanation}");
        if (bugs.Count > 5) result.Add($"  ... {bugs.Count - 5} more");
        return result;
    }
}
