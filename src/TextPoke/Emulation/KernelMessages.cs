namespace TextPoke.Emulation;

/// <summary>One printk format the kernel uses, with where it lives.</summary>
public sealed record KernelMessage(string Id, string Format, string Source, string Versions);

/// <summary>
/// Every kernel message textpoke reproduces, in one place, byte for byte (including the kernel's quirks).
/// Rendering substitutes the arguments the way vsprintf would; textpoke prints the real address where the kernel
/// hashes %p.
/// </summary>
public static class KernelMessages
{
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
        $"jump_label: Fatal kernel bug, unexpected op at {location} [{address:x16}] ({X86.X86Code.Hex(site5)} != {X86.X86Code.Hex(expected5)})) size:{size} type:{type}";

    /// <summary>"jump_label: Fatal kernel bug, unexpected op at %pS [%p] (%5ph) %d" (v4.14..v5.13).</summary>
    public static string UnexpectedOpOld(string location, ulong address, ReadOnlySpan<byte> site5, int line) =>
        $"jump_label: Fatal kernel bug, unexpected op at {location} [{address:x16}] ({X86.X86Code.Hex(site5)}) {line}";

    public static string Bug(string file, int line) => $"kernel BUG at {file}:{line}!";

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
