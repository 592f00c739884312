using System.Globalization;
using System.Text.RegularExpressions;
using TextPoke.X86;

namespace TextPoke.Messages;

/// <summary>One printk format the kernel uses, with where it lives.</summary>
public sealed record KernelMessage(string Id, string Format, string Source, string Versions);

/// <summary>A "%pS" location as the kernel prints it: symbol+0xoffset/0xsize.</summary>
public readonly record struct SymbolOffset(string Function, ulong Offset, ulong Size)
{
    public override string ToString() => $"{Function}+0x{Offset:x}/0x{Size:x}";

    internal static SymbolOffset From(Match m, int group) => new(m.Groups[group].Value,
        ulong.Parse(m.Groups[group + 1].Value, NumberStyles.HexNumber), ulong.Parse(m.Groups[group + 2].Value, NumberStyles.HexNumber));
}

/// <summary>
/// Every kernel message textpoke reproduces or recognises, in one place, byte for byte (including the kernel's quirks):
/// the checker and the boot patcher print them with the formatters here, and the crash decoder recognises them with the
/// parsers next to them, so the line predicted and the line recognised cannot drift apart. Rendering substitutes the
/// arguments the way vsprintf would; textpoke prints the real address where the kernel hashes %p. This layer sits
/// below Checks, Emulation and Crash and uses none of them.
/// </summary>
public static partial class KernelMessages
{
    // A %pS: symbol (with the characters kallsyms names hold), +0xoffset, /0xsize.
    const string PS = @"([A-Za-z0-9_.$]+)\+0x([0-9a-f]{1,16})/0x([0-9a-f]{1,16})";

    /// <summary>arch/x86/kernel/jump_label.c:__jump_label_patch, v5.15..v6.12 (pr_crit, then BUG() at line 73). Note the doubled "))".</summary>
    public static readonly KernelMessage JumpLabelUnexpectedOp = new(
        "jump_label.unexpected_op",
        "jump_label: Fatal kernel bug, unexpected op at %pS [%p] (%5ph != %5ph)) size:%d type:%d",
        "arch/x86/kernel/jump_label.c:__jump_label_patch (pr_crit, BUG() at line 73)", "v5.15..v6.12");

    /// <summary>arch/x86/kernel/jump_label.c:bug_at, v4.14..v5.13: the last argument is the __LINE__ of the expectation.</summary>
    public static readonly KernelMessage JumpLabelUnexpectedOpOld = new(
        "jump_label.unexpected_op_old",
        "jump_label: Fatal kernel bug, unexpected op at %pS [%p] (%5ph) %d",
        "arch/x86/kernel/jump_label.c:bug_at", "v4.14..v5.13");

    /// <summary>include/asm-generic/bug.h via lib/bug.c: report_bug prints this for BUG()/BUG_ON().</summary>
    public static readonly KernelMessage KernelBug = new("bug.kernel_bug", "kernel BUG at %s:%u!", "lib/bug.c:report_bug", "all");

    /// <summary>kernel/jump_label.c:jump_label_can_update, v5.15..v6.12.</summary>
    public static readonly KernelMessage JumpLabelCantPatch = new(
        "jump_label.cant_patch", "can't patch jump_label at %pS", "kernel/jump_label.c:jump_label_can_update (WARN_ONCE)", "v4.20..v6.12");

    public const string X86JumpLabelFile = "arch/x86/kernel/jump_label.c";

    /// <summary>Line of BUG() in __jump_label_patch, v5.15, v5.19, v6.1, v6.6, v6.12.</summary>
    public const int JumpLabelPatchBugLine = 73;
    /// <summary>Line of BUG_ON(insn.length != 2 &amp;&amp; insn.length != 5) in arch_jump_entry_size, v5.15..v6.12.</summary>
    public const int JumpEntrySizeBugLine = 25;

    /// <summary>"jump_label: Fatal kernel bug, unexpected op at ... size:%d type:%d" (v5.15..v6.12).</summary>
    public static string UnexpectedOp(string location, ulong address, ReadOnlySpan<byte> site5, ReadOnlySpan<byte> expected5, int size, int type) =>
        $"jump_label: Fatal kernel bug, unexpected op at {location} [{address:x16}] ({X86.X86Code.Hex(site5)} != {X86.X86Code.Hex(expected5)})) size:{size} " +
            $"type:{type}";

    /// <summary>"jump_label: Fatal kernel bug, unexpected op at %pS [%p] (%5ph) %d" (v4.14..v5.13).</summary>
    public static string UnexpectedOpOld(string location, ulong address, ReadOnlySpan<byte> site5, int line) =>
        $"jump_label: Fatal kernel bug, unexpected op at {location} [{address:x16}] ({X86.X86Code.Hex(site5)}) {line}";

    public static string Bug(string file, int line) => $"kernel BUG at {file}:{line}!";

    [GeneratedRegex(@"kernel BUG at ([^\s:]+):(\d{1,9})!")]
    private static partial Regex BugPattern();

    /// <summary>The file and line of a "kernel BUG at FILE:LINE!" line, or null.</summary>
    public static (string File, int Line)? ParseBug(string line) =>
        BugPattern().Match(line) is { Success: true } m ? (m.Groups[1].Value, int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)) : null;

    [GeneratedRegex(@"jump_label: Fatal kernel bug, unexpected op at " + PS
        + @"(?: \[[A-Za-z0-9_\-]+\])? \[[^\]]*\] \(([0-9a-f ]+) != ([0-9a-f ]+)\)\) size:(\d) type:(\d)")]
    private static partial Regex UnexpectedOpPattern();

    [GeneratedRegex(@"jump_label: Fatal kernel bug, unexpected op at " + PS + @"(?: \[[A-Za-z0-9_\-]+\])? \[[^\]]*\] \(([0-9a-f ]+)\) (\d{1,5})\s*$")]
    private static partial Regex UnexpectedOpOldPattern();

    /// <summary>The site, its bytes and the __LINE__ of a v4.14..v5.13 "unexpected op ... (%5ph) %d" line, or null.</summary>
    public static (SymbolOffset Site, string Actual, int Line)? ParseUnexpectedOpOld(string line) =>
        UnexpectedOpOldPattern().Match(line) is { Success: true } m
            ? (SymbolOffset.From(m, 1), m.Groups[4].Value, int.Parse(m.Groups[5].Value, CultureInfo.InvariantCulture))
            : null;

    /// <summary>The site, its bytes, the expected bytes, size and type of a v5.15+ "unexpected op" line (module name allowed), or null.</summary>
    public static (SymbolOffset Site, string Actual, string Expected, int Size, int Type)? ParseUnexpectedOp(string line) =>
        UnexpectedOpPattern().Match(line) is { Success: true } m
            ? (SymbolOffset.From(m, 1), m.Groups[4].Value, m.Groups[5].Value, int.Parse(m.Groups[6].Value, CultureInfo.InvariantCulture),
                int.Parse(m.Groups[7].Value, CultureInfo.InvariantCulture))
            : null;

    // --- arch/x86/kernel/static_call.c __static_call_validate (v5.10..v6.12): pr_err + BUG() ---------------------------

    public static readonly KernelMessage StaticCallUnexpectedInsn = new(
        "static_call.unexpected_insn", "unexpected static_call insn opcode 0x%x at %pS", "arch/x86/kernel/static_call.c:__static_call_validate (BUG())",
        "v5.10..v6.12");

    public static string StaticCallInsn(byte opcode, string location) => $"unexpected static_call insn opcode 0x{opcode:x} at {location}";

    [GeneratedRegex(@"unexpected static_call insn opcode 0x([0-9a-f]{1,2}) at " + PS)]
    private static partial Regex StaticCallInsnPattern();

    public static (byte Opcode, SymbolOffset Site)? ParseStaticCallInsn(string line) =>
        StaticCallInsnPattern().Match(line) is { Success: true } m ? (byte.Parse(m.Groups[1].Value, NumberStyles.HexNumber), SymbolOffset.From(m, 2)) : null;

    // --- arch/x86/kernel/alternative.c apply_returns (v5.19..v6.12): WARN_ONCE -----------------------------------------

    public static readonly KernelMessage MissingReturnThunk = new(
        "alternative.missing_return_thunk", "missing return thunk: %pS-%pS: %*ph", "arch/x86/kernel/alternative.c:apply_returns (WARN_ONCE)", "v5.19..v6.12");

    public static string ReturnThunk(string site, string destination, ReadOnlySpan<byte> bytes) =>
        $"missing return thunk: {site}-{destination}: {X86Code.Hex(bytes)}";

    [GeneratedRegex(@"missing return thunk: " + PS + @"-(\S+): ([0-9a-f ]+)")]
    private static partial Regex ReturnThunkPattern();

    public static (SymbolOffset Site, string Bytes)? ParseReturnThunk(string line) =>
        ReturnThunkPattern().Match(line) is { Success: true } m ? (SymbolOffset.From(m, 1), m.Groups[5].Value.Trim()) : null;

    // --- kernel/trace/ftrace.c ftrace_bug (all versions) ----------------------------------------------------------------

    public static readonly KernelMessage FtraceFailedToModify = new(
        "ftrace.failed_to_modify", "ftrace failed to modify \n[<%p>] %pS\n actual:   %*phC\n expected: %*phC", "kernel/trace/ftrace.c:ftrace_bug",
            "v4.14..v6.12");

    public const string FtraceBugHeader = "------------[ ftrace bug ]------------";
    public const string FtraceFailed = "ftrace failed to modify ";

    /// <summary>The lines ftrace_bug() prints for -EINVAL: the site and its actual and expected bytes (colon-separated).</summary>
    public static string[] FtraceBug(ulong address, string location, ReadOnlySpan<byte> actual, ReadOnlySpan<byte> expected) =>
    [
        FtraceBugHeader,
        FtraceFailed,
        $"[<{address:x16}>] {location}",
        $" actual:   {Colons(actual)}",
        $" expected: {Colons(expected)}",
    ];

    static string Colons(ReadOnlySpan<byte> bytes) => X86Code.Hex(bytes).Replace(' ', ':');

    public static bool IsFtraceFailed(string line) => line.StartsWith(FtraceFailed, StringComparison.Ordinal);

    [GeneratedRegex(@"^\[<([0-9a-f]+)>\] " + PS)]
    private static partial Regex FtraceSitePattern();

    [GeneratedRegex(@"^ actual:\s+([0-9a-f]{2}(?::[0-9a-f]{2})*)")]
    private static partial Regex FtraceActualPattern();

    public static SymbolOffset? ParseFtraceSite(string line) => FtraceSitePattern().Match(line) is { Success: true } m ? SymbolOffset.From(m, 2) : null;

    /// <summary>The bytes of an " actual:" line, space-separated, or null.</summary>
    public static string? ParseFtraceActual(string line) => FtraceActualPattern().Match(line) is { Success: true } m ? m.Groups[1].Value.Replace(':', ' ')
        : null;

    /// <summary>kernel/trace/ftrace.c ftrace_init (v4.14..v6.12): no __mcount_loc entries.</summary>
    public const string FtraceNoFunctions = "ftrace: No functions to be traced?";

    // --- arch/x86/kernel/unwind_orc.c unwind_init (v4.14..v6.12): orc_warn, then the unwinder is disabled -----------------

    public const string OrcBadOrMissing = "WARNING: WARNING: Bad or missing .orc_unwind table.  Disabling unwinder.";
    public const string OrcCorrupt = "WARNING: WARNING: Corrupt .orc_unwind table.  Disabling unwinder.";

    // --- arch/x86/kernel/module.c __write_relocate_add (v5.8..v6.12): pr_err, then the module load fails -------------------

    public static string ModuleUnknownRelocation(string? module, uint type) => $"{module}: Unknown rela relocation: {type}";

    public static string ModuleRelocationNonzero(uint type, ulong location, ulong value) =>
        $"x86/modules: Skipping invalid relocation target, existing value is nonzero for type {type}, loc {location:x16}, val {value:x}";

    public static string CantPatch(string location) => $"can't patch jump_label at {location}";

    /// <summary>
    /// The WARN()s of kernel/jump_label.c that the emulation can trip: the function holding the WARN, which WARN of that
    /// function it is (in source order, not counting STATIC_KEY_CHECK_USE), and its line in Debian's 6.1.y source
    /// (6.1.192). The image's own __bug_table gives the real line and location; these lines are the fallback.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, (string Function, int Index, int Line)> JumpLabelWarnings = new Dictionary<string, (string, int, int)>
    {
        ["enable-refcount"] = ("static_key_enable_cpuslocked", 0, 200),      // WARN_ON_ONCE(atomic_read(&key->enabled) != 1)
        ["disable-refcount"] = ("static_key_disable_cpuslocked", 0, 231),    // WARN_ON_ONCE(atomic_read(&key->enabled) != 0)
        ["inc-in-progress"] = ("static_key_slow_inc_cpuslocked", 0, 177),    // WARN_ON_ONCE(!static_key_fast_inc_not_disabled(key))
        ["dec-negative"] = ("static_key_dec_not_one", 0, 273),               // WARN_ON_ONCE(v < 0)
        ["dec-underflow"] = ("static_key_dec_not_one", 1, 279),              // WARN_ON_ONCE(v == 0)
        ["dec-negative-count"] = ("__static_key_slow_dec_cpuslocked", 0, 0), // v4.20..v6.9: WARN(val < 0, "jump label: negative count!\n")
        ["cant-patch"] = ("__jump_label_update", 0, 479),                    // WARN_ONCE(!jump_entry_is_init(entry), "can't patch jump_label at %pS")
    };
}

/// <summary>Console lines around WARN()/BUG() (lib/bug.c, kernel/panic.c __warn) and the arch die path.</summary>
public static class ConsoleLines
{
    /// <summary>include/asm-generic/bug.h CUT_HERE.</summary>
    public const string CutHere = "------------[ cut here ]------------";

    /// <summary>kernel/panic.c __warn: "WARNING: CPU: %d PID: %d at %pS" with the file:line of the WARN.</summary>
    public static string Warning(int cpu, int pid, string file, int line, string location) => $"WARNING: CPU: {cpu} PID: {pid} at {file}:{line} {location}";

    /// <summary>arch/x86/kernel/dumpstack.c show_ip: "RIP: %04x:%pS".</summary>
    public static string Rip(string location) => $"RIP: 0010:{location}";

    /// <summary>kernel/jump_label.c __static_key_slow_dec_cpuslocked, v4.20..v6.9: WARN(val &lt; 0, ...).</summary>
    public const string NegativeCount = "jump label: negative count!";
}
