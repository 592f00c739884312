using System.Globalization;
using System.Text.RegularExpressions;

namespace TextPoke.Crash;

/// <summary>
/// Finds kernel reports in a console log. Console prefixes (timestamps, [T1]/[C0] caller ids, &lt;N&gt; log levels) are
/// stripped; a report starts at a header line and runs to its end marker or to the next report; titles follow the
/// conventions of bug trackers (syzkaller's: "kernel BUG in FUNC", "WARNING in FUNC", ...), kept as a table of rules.
/// </summary>
public static partial class ConsoleLog
{
    /// <summary>A title rule: a header regex, the title format ({0} = the guilty function), the report type.</summary>
    public sealed record TitleRule(Regex Header, string Format, string Type, bool FunctionFromHeader = false);

    [GeneratedRegex(@"^(?:[^\[]*?(?=\[\s*\d+\.\d{6}\]))?(?:<\d+>)?(?:\[\s*\d+\.\d+\])?(?:\[\s*[TC]\d+\])?\s?")]
    private static partial Regex Prefix();

    const string Func = @"([A-Za-z0-9_.$]+)\+0x[0-9a-f]+/0x[0-9a-f]+";

    /// <summary>The rules, most specific first. Extend here, not with ifs.</summary>
    public static readonly IReadOnlyList<TitleRule> Rules =
    [
        new(new Regex(@"^kernel BUG at ([^:]+):(\d+)!"), "kernel BUG in {0}", "BUG"),
        // Kernels before 5.0 ("x86/fault: Reword initial BUG message for unhandled page faults"); later ones print the next line's.
        new(new Regex(@"^BUG: unable to handle kernel NULL pointer dereference"), "BUG: unable to handle kernel NULL pointer dereference in {0}", "NULL-POINTER-DEREFERENCE"),
        new(new Regex(@"^BUG: kernel NULL pointer dereference, address"), "BUG: unable to handle kernel NULL pointer dereference in {0}", "NULL-POINTER-DEREFERENCE"),
        new(new Regex(@"^BUG: unable to handle (?:page fault|kernel paging request)"), "BUG: unable to handle kernel paging request in {0}", "BUG"),
        new(new Regex(@"^BUG: KASAN: ([a-z\- ]+?) in " + Func), "KASAN: {1} in {0}", "KASAN", FunctionFromHeader: true),
        new(new Regex(@"^BUG: KFENCE: ([a-z\-]+) in " + Func), "KFENCE: {1} in {0}", "KFENCE", FunctionFromHeader: true),
        new(new Regex(@"^(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )?BUG: memory leak$"), "memory leak in {0}", "LEAK"),
        new(new Regex(@"^BUG: soft lockup"), "BUG: soft lockup in {0}", "HANG"),
        new(new Regex(@"^(?:NMI )?watchdog: BUG: soft lockup"), "BUG: soft lockup in {0}", "HANG"),
        // Bracketed lockdep headers of 4.x kernels (4.5 prints them); 5.x prints "WARNING: ..." (rules below).
        new(new Regex(@"^\[ INFO: possible (?:circular locking dependency|recursive locking|irq lock inversion dependency) detected \]"), "possible deadlock in {0}", "LOCKDEP"),
        new(new Regex(@"^\[ INFO: inconsistent lock state \]"), "inconsistent lock state in {0}", "LOCKDEP"),
        new(new Regex(@"^\[ BUG: bad unlock balance detected! \]"), "BUG: bad unlock balance in {0}", "LOCKDEP"),
        new(new Regex(@"^\[ INFO: suspicious RCU usage\. \]"), "INFO: suspicious RCU usage in {0}", "LOCKDEP"),
        // arm/arm64 wording of a page fault.
        new(new Regex(@"^Unable to handle kernel paging request"), "BUG: unable to handle kernel paging request in {0}", "BUG"),
        // UBSAN of 4.x and early 5.x kernels named only the location; later ones name the check ("UBSAN: shift-out-of-bounds in").
        new(new Regex(@"^UBSAN: Undefined behaviour in "), "UBSAN: undefined-behaviour in {0}", "UBSAN"),
        new(new Regex(@"^BUG: scheduling while atomic"), "BUG: scheduling while atomic in {0}", "ATOMIC_SLEEP"),
        new(new Regex(@"^BUG: sleeping function called from invalid context"), "BUG: sleeping function called from invalid context in {0}", "ATOMIC_SLEEP"),
        new(new Regex(@"^BUG: ([^\n]+?)(?: in " + Func + ")?$"), "BUG: {1}", "BUG"),
        new(new Regex(@"^WARNING: CPU: \d+ PID: \d+ at [^ ]+ " + Func), "WARNING in {0}", "WARNING", FunctionFromHeader: true),
        new(new Regex(@"^WARNING: (?:possible circular locking dependency|possible recursive locking|possible irq lock inversion dependency)"), "possible deadlock in {0}", "LOCKDEP"),
        new(new Regex(@"^WARNING: inconsistent lock state"), "inconsistent lock state in {0}", "LOCKDEP"),
        new(new Regex(@"^WARNING: bad unlock balance detected!"), "WARNING: bad unlock balance in {0}", "LOCKDEP"),
        new(new Regex(@"^WARNING: suspicious RCU usage"), "WARNING: suspicious RCU usage in {0}", "LOCKDEP"),
        new(new Regex(@"^general protection fault"), "general protection fault in {0}", "BUG"),
        new(new Regex(@"^Oops: "), "Oops in {0}", "BUG"),
        new(new Regex(@"^UBSAN: ([a-z\-]+(?: [a-z\-]+)*) in "), "UBSAN: {1} in {0}", "UBSAN"),
        new(new Regex(@"^INFO: task .* blocked for more than \d+ seconds"), "INFO: task hung in {0}", "HANG"),
        new(new Regex(@"^(?:rcu: )?INFO: rcu_(?:sched|preempt|bh) (?:self-)?detected (?:stall|expedited stalls)"), "INFO: rcu detected stall in {0}", "HANG"),
        new(new Regex(@"^divide error: "), "divide error in {0}", "BUG"),
        new(new Regex(@"^invalid opcode: "), "invalid opcode in {0}", "BUG"),
        new(new Regex(@"^WARNING: ([^\n]+?)$"), "WARNING: {1}", "WARNING"),
        // Panic messages whose tail varies from run to run (exit codes, device names) have fixed titles.
        new(new Regex(@"^Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: ([A-Za-z_][A-Za-z0-9_]*)"), "kernel panic: stack is corrupted in {1}", "PANIC", FunctionFromHeader: true),
        new(new Regex(@"^Kernel panic - not syncing: (Attempted to kill init!|Couldn't open N_TTY ldisc|panic_on_warn set)"), "kernel panic: {1}", "PANIC", FunctionFromHeader: true),
        new(new Regex(@"^Kernel panic - not syncing: (.*)$"), "kernel panic: {1}", "PANIC", FunctionFromHeader: true),
    ];

    [GeneratedRegex(@"^CPU: (\d+) (?:UID: \d+ )?PID: (\d+) Comm: (\S+) (?:(?:Not tainted|Tainted: \S+(?: [A-Z]+)?) )?\s*(\S+)")]
    private static partial Regex CpuLine();
    // "RIP: 0010:func+off/size" today; 4.x kernels printed "RIP: 0010:[<addr>]  [<addr>] func+off/size" and a separate "IP:" line.
    [GeneratedRegex(@"^(?:RIP: [0-9a-f]{4}:|IP: )(?:\[<[0-9a-f]+>\]\s+)?(?:\[<[0-9a-f]+>\] )?([A-Za-z_][^\s]*)")]
    private static partial Regex RipLine();
    // A frame: " func+0xoff/0xsize [module]", "? " when unreliable; 4.x kernels put "[<addr>] " and "<IRQ>"/"<EOI>" before
    // it, kmemleak and symbolized logs " file:line" after it.
    [GeneratedRegex(@"^\s*(?:<(?:IRQ|EOI|NMI)>\s+)?(?:\[<(?<address>[0-9a-f]+)>\] )?(\? )?" + @"([A-Za-z0-9_.$]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)(?: \[([A-Za-z0-9_\-]+)\])?(?: \S+:\d+)?\s*$")]
    private static partial Regex FrameLine();
    [GeneratedRegex(@"^(?:---\[ end trace [0-9a-f]+ \]---|---\[ end Kernel panic)")]
    private static partial Regex EndLine();

    /// <summary>Strips the console prefix of one line.</summary>
    public static string Strip(string line) => Prefix().Replace(line.TrimEnd('\r'), "", 1);

    /// <summary>
    /// Function names as titles show them: compiler suffixes dropped (.cold, .isra.0, .constprop.0, .part.0, .llvm.N).
    /// </summary>
    public static string Function(string symbol)
    {
        int dot = symbol.IndexOf('.');
        var name = dot > 0 ? symbol[..dot] : symbol;
        // System-call entry points are named after the call: SyS_pause, __x64_sys_pause, __se_sys_pause -> pause.
        foreach (var prefix in (ReadOnlySpan<string>)["__x64_sys_", "__ia32_sys_", "__se_sys_", "__do_sys_", "SyS_", "sys_"])
            if (name.StartsWith(prefix, StringComparison.Ordinal) && name.Length > prefix.Length) return name[prefix.Length..];
        return name;
    }

    /// <summary>Every report in a log, in order.</summary>
    public static List<CrashReport> Parse(IReadOnlyList<string> rawLines)
    {
        var lines = rawLines.Select(Strip).ToList();
        bool panicked = lines.Any(l => l.StartsWith("Kernel panic - not syncing", StringComparison.Ordinal));
        var starts = new List<(int Line, TitleRule Rule, Match Match)>();
        for (int i = 0; i < lines.Count; i++)
        {
            foreach (var rule in Rules)
            {
                var m = rule.Header.Match(lines[i]);
                if (!m.Success) continue;
                // A panic after a report belongs to it.
                // The die banner ("Oops: 0000 [#1]", "invalid opcode: 0000 [#1]") that follows a BUG or page-fault
                // header within a few lines is part of that report.
                if (starts.Count > 0 && i - starts[^1].Line <= 12 && (lines[i].StartsWith("invalid opcode", StringComparison.Ordinal) || lines[i].StartsWith("Oops: ", StringComparison.Ordinal))
                    && !lines.Skip(starts[^1].Line).Take(i - starts[^1].Line).Any(EndLine().IsMatch)) break;
                if (rule.Type == "PANIC" && starts.Count > 0) break;
                starts.Add((i, rule, m));
                break;
            }
        }
        var reports = new List<CrashReport>();
        for (int s = 0; s < starts.Count; s++)
        {
            var (start, rule, match) = starts[s];
            // The report's first line: a "cut here" line or a pr_crit line just before the header belongs to it.
            int first = start;
            while (first > 0 && (lines[first - 1].Contains("[ cut here ]") || lines[first - 1].StartsWith("jump_label: Fatal kernel bug", StringComparison.Ordinal)
                || lines[first - 1].StartsWith("unexpected static_call insn opcode", StringComparison.Ordinal)) && first > (s > 0 ? starts[s - 1].Line : -1) + 1)
                first--;
            int limit = s + 1 < starts.Count ? starts[s + 1].Line : lines.Count;
            int end = start;
            for (int i = start; i < limit; i++)
            {
                end = i;
                if (EndLine().IsMatch(lines[i])) break;
            }
            reports.Add(Build(lines, first, start, end, rule, match, panicked));
        }
        return reports;
    }

    static CrashReport Build(List<string> lines, int first, int start, int end, TitleRule rule, Match match, bool panicked)
    {
        int? cpu = null, pid = null;
        string? comm = null, version = null, rip = null, code = null;
        var frames = new List<CrashFrame>();
        bool inTrace = false;
        int interruptEnd = -1; // the line of the last "</IRQ>" / "<EOI>": the interrupted task's frames follow it
        for (int i = start; i <= end; i++)
        {
            var l = lines[i];
            if (cpu == null && CpuLine().Match(l) is { Success: true } c)
            {
                cpu = int.Parse(c.Groups[1].Value, CultureInfo.InvariantCulture);
                pid = int.Parse(c.Groups[2].Value, CultureInfo.InvariantCulture);
                comm = c.Groups[3].Value;
                version = c.Groups[4].Value;
                // "Tainted: G        W          6.1.0-53-amd64": the taint letters are spaced out; the version is the
                // first word after them that starts with a digit.
                if (!char.IsAsciiDigit(version[0]) && l.IndexOf("Tainted: ", StringComparison.Ordinal) is var t and >= 0
                    && l[(t + 9)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(w => char.IsAsciiDigit(w[0])) is { } v)
                    version = v;
            }
            if (rip == null && RipLine().Match(l) is { Success: true } r) rip = r.Groups[1].Value;
            if (code == null && l.StartsWith("Code: ", StringComparison.Ordinal)) code = l[6..];
            // "Call Trace:" in oopses; kmemleak prints "  backtrace:" (frames carry file:line when the kernel symbolizes).
            if (l.StartsWith("Call Trace:", StringComparison.Ordinal) || l.Trim() == "backtrace:") { inTrace = true; continue; }
            if (!inTrace) continue;
            var trimmed = l.TrimStart();
            if (trimmed.StartsWith("</IRQ>", StringComparison.Ordinal) || trimmed.StartsWith("<EOI>", StringComparison.Ordinal)) interruptEnd = i;
            if (l.Trim() is "<TASK>" or "</TASK>" or "<IRQ>" or "</IRQ>" or "<EOI>" or "<NMI>" or "</NMI>") continue;
            var f = FrameLine().Match(l);
            if (f.Success)
                frames.Add(new CrashFrame(f.Groups[2].Value, ulong.Parse(f.Groups[3].Value, NumberStyles.HexNumber), ulong.Parse(f.Groups[4].Value, NumberStyles.HexNumber),
                    f.Groups[5].Success ? f.Groups[5].Value : null, !f.Groups[1].Success, i)
                {
                    Address = f.Groups["address"].Success && ulong.TryParse(f.Groups["address"].Value, NumberStyles.HexNumber, null, out ulong a) ? a : null,
                });
            // The trap's register dump inside a trace (RIP:, RSP:, RAX:, Code: ... between the frames of a WARN with
            // panic_on_warn) does not end it.
            else if (frames.Count > 0 && !RegisterLine().IsMatch(l)) inTrace = false;
        }
        string? lockSite = null;
        if (rule.Type == "LOCKDEP")
            for (int i = start; i <= end && lockSite == null; i++)
                if (LockSiteLine().Match(lines[i]) is { Success: true } ls) lockSite = ls.Groups[1].Value;
        string? header = rule.FunctionFromHeader && rule.Type != "PANIC" ? match.Groups[rule.Format.Contains("{1}") ? 2 : 1].Value : null;
        if (header != null && Uninteresting(header)) header = frames.FirstOrDefault(f => f.Reliable && !Uninteresting(f.Function))?.Function ?? header;
        // An RCU stall is reported from the timer interrupt: the guilty function is in the interrupted task's frames.
        string? stalled = rule.Format.StartsWith("INFO: rcu detected stall", StringComparison.Ordinal) && interruptEnd >= 0
            ? frames.FirstOrDefault(f => f.Line >= interruptEnd && f.Reliable && !Uninteresting(f.Function))?.Function : null;
        string? guilty = header != null ? header
            : stalled ?? lockSite ?? (rip != null && !Uninteresting(rip) ? (rip.IndexOf('+') is var plus && plus > 0 ? rip[..plus] : rip)
            : frames.FirstOrDefault(f => f.Reliable && !Uninteresting(f.Function))?.Function);
        string? function = guilty == null ? null : Function(guilty);
        WarningKind? warningKind = null;
        if (rule.Type == "WARNING" && rule.FunctionFromHeader)
        {
            string reporter = match.Groups[1].Value;
            warningKind = WarningKinds.FirstOrDefault(k => k.Reporters.Any(r => reporter.StartsWith(r, StringComparison.Ordinal)));
            if (warningKind != null)
            {
                // The guilty function is the first caller of the reporter: past its last frame in the trace.
                // (With panic_on_warn the trace first shows the panic and the trap: past those too.)
                int from = Math.Max(frames.FindLastIndex(f => warningKind.Reporters.Any(r => f.Function.StartsWith(r, StringComparison.Ordinal))),
                    frames.FindLastIndex(f => f.Function is "invalid_op" or "asm_exc_invalid_op" or "exc_invalid_op" or "do_invalid_op" or "handle_bug" or "fixup_bug")) + 1;
                var caller = frames.Skip(from).FirstOrDefault(f => f.Reliable && !Uninteresting(f.Function) && !warningKind.Skip.Any(x => f.Function.StartsWith(x, StringComparison.Ordinal)));
                function = caller == null ? null : Function(caller.Function);
            }
        }
        bool corrupted = function == null && rule.Type != "PANIC" || frames.Count == 0 && rule.Type is not ("PANIC" or "HANG");
        // {0} is the guilty function, {1} the header's first group (a KASAN kind, a panic message).
        string detail = match.Groups.Count > 1 ? match.Groups[1].Value.Trim() : "";
        string title = warningKind != null ? string.Format(CultureInfo.InvariantCulture, warningKind.Format, function ?? "corrupted")
            : string.Format(CultureInfo.InvariantCulture, rule.Format, rule.Type == "PANIC" ? function ?? "" : function ?? "corrupted", detail);
        if (rule.Type == "KASAN") title = KasanTitle(lines, start, end, match.Groups[1].Value, function);
        return new CrashReport
        {
            Title = title, Type = rule.Type, StartLine = first, EndLine = end,
            Corrupted = corrupted, CorruptedReason = !corrupted ? null : function == null ? "no guilty function" : "no call trace",
            Panicked = panicked, Frame = function, Cpu = cpu, Pid = pid, Comm = comm, KernelVersion = version, Rip = rip, Code = code,
            Frames = frames, Lines = lines.Skip(first).Take(end - first + 1).ToList(),
        };
    }

    /// <summary>A WARNING raised by a reporting helper on behalf of its caller: its title names the caller.</summary>
    public sealed record WarningKind(string[] Reporters, string Format, string[] Skip);

    /// <summary>Reporting helpers whose WARNINGs are titled by kind (bug trackers' "WARNING: ODEBUG bug in FUNC"...).</summary>
    public static readonly IReadOnlyList<WarningKind> WarningKinds =
    [
        new(["debug_print_object"], "WARNING: ODEBUG bug in {0}", ["debug_", "__debug_", "call_rcu", "__call_rcu", "init_timer", "__init_timer"]),
        new(["kmalloc_slab", "kmalloc_order", "warn_alloc", "kvmalloc_node", "__alloc_pages"], "WARNING: kmalloc bug in {0}",
            ["kmalloc", "__kmalloc", "kvmalloc", "warn_alloc", "__alloc_pages", "alloc_pages", "should_fail", "__should_fail"]),
        new(["usercopy_warn", "__check_object_size", "check_object_size"], "WARNING: bad usercopy in {0}", ["usercopy_", "__check_object", "check_object"]),
        new(["proc_register"], "WARNING: proc registration bug in {0}", ["proc_", "__proc_"]),
        new(["kobject_"], "WARNING: kobject bug in {0}", ["kobject_"]),
        new(["lock_release", "lock_acquire", "__lock_acquire", "lockdep_", "register_lock_class", "hlock_class", "check_flags"], "WARNING: locking bug in {0}",
            ["lock_", "__lock_", "lockdep_", "up_", "up_read", "up_write", "__up_", "mutex_", "__mutex_"]),
    ];

    [GeneratedRegex(@" at: (?:\[<[0-9a-f]+>\] )?([A-Za-z0-9_.$]+)\+0x[0-9a-f]+/0x[0-9a-f]+")]
    private static partial Regex LockSiteLine();

    /// <summary>
    /// Frames that are never the guilty function: the reporting, scheduling, locking and memory-copy helpers every
    /// report passes through (prefixes of the function name).
    /// </summary>
    public static readonly IReadOnlyList<string> NotGuilty =
    [
        "dump_stack", "__dump_stack", "show_stack", "print_", "__warn", "warn_slowpath", "report_bug", "panic", "__might_sleep",
        "___might_sleep", "__might_fault", "might_fault", "schedule", "__schedule", "io_schedule", "preempt_schedule",
        "mutex_lock", "__mutex_lock", "mutex_unlock", "down_", "__down", "rwsem_", "_raw_", "do_raw_", "spin_", "lock_acquire",
        "__lock_acquire", "lock_release", "lockdep_", "check_", "validate_chain", "kasan_", "__kasan_", "__asan_", "asan_",
        "memcpy", "memmove", "memset", "memcmp", "strlen", "strcpy", "strncpy", "copy_user", "_copy_", "__copy_",
        "wait_for_completion", "__wait_for_common", "wait_for_common", "flush_work", "synchronize_", "kmalloc", "__kmalloc",
        "kmem_cache_", "kfree", "do_error_trap", "do_invalid_op", "invalid_op", "do_trap", "exc_", "asm_exc_", "handle_bug",
        "bad_page", "fixup_bug", "ubsan_", "__ubsan_", "refcount_", "__list_", "list_",
        "__sanitizer_", "__x86_indirect_thunk", "__x86_return_thunk", "nmi_", "native_", "io_serial_", "unwind_",
        "kmemleak_", "kzalloc", "kcalloc", "kmemdup", "kstrdup", "krealloc", "kvmalloc", "kvzalloc", "__kvmalloc", "vmalloc",
        "vzalloc", "__vmalloc", "sock_kmalloc", "__do_kmalloc", "slab_alloc", "alloc_pages", "__alloc_pages", "__get_free_pages",
        "alloc_inode", "new_slab", "sk_prot_alloc", "sk_alloc", "create_object", "kvasprintf", "kasprintf", "pcpu_", "__pcpu_",
        "debug_objects_", "kobject_",
        "call_rwsem_", "__wait_rcu_gp", "wait_on_page", "trace_hardirqs", "stack_trace_", "save_stack", "__save_stack",
    ];

    static bool Uninteresting(string symbol) => NotGuilty.Any(p => symbol.StartsWith(p, StringComparison.Ordinal));

    [GeneratedRegex(@"^\s*(?:[A-Z][A-Z0-9]{1,3}:|Code:|RIP |RSP )")]
    private static partial Regex RegisterLine();

    [GeneratedRegex(@"^(Read|Write) of size \d+")]
    private static partial Regex KasanAccess();

    /// <summary>"KASAN: KIND Read|Write in FUNC": the access direction comes from the "Read of size N at addr" line.</summary>
    static string KasanTitle(List<string> lines, int start, int end, string kind, string? function)
    {
        if (kind == "double-free or invalid-free") return $"KASAN: invalid-free in {function ?? "corrupted"}";
        string? access = null;
        for (int i = start; i <= end && i < start + 10 && access == null; i++)
            if (KasanAccess().Match(lines[i]) is { Success: true } m) access = m.Groups[1].Value;
        return access == null ? $"KASAN: {kind} in {function ?? "corrupted"}" : $"KASAN: {kind} {access} in {function ?? "corrupted"}";
    }

    /// <summary>Alternative titles under which the same bug is known ("bad-access in FUNC", "hang in FUNC"...).</summary>
    public static IEnumerable<string> AltTitles(CrashReport report)
    {
        if (report.Frame == null) yield break;
        string type = CrashTypes.Of(report.Title);
        if (type == "HANG") yield return $"hang in {report.Frame}";
        if (type is "MEMORY_SAFETY_BUG" or "NULL-POINTER-DEREFERENCE" or "DoS" || type.StartsWith("KASAN", StringComparison.Ordinal))
            yield return $"bad-access in {report.Frame}";
    }
}
