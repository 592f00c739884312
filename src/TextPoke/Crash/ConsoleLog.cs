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
    /// <summary>
    /// A title rule: a header regex, the title format ({0} = the guilty function, {1} = the header's first group), the
    /// report type, and what the rule's report looks like (<see cref="RuleTraits"/>). <paramref name="Skip"/>: more
    /// helper frames to pass over for this kind of report (substrings); <paramref name="FramesAfter"/>: the guilty
    /// function is the first frame after the line containing this text; <paramref name="Requires"/>: a line the report
    /// must hold for this rule (else the next rule with the same header applies); <paramref name="Absorbs"/>: a header
    /// that belongs to this report rather than starting one; <paramref name="Frames"/>: where the guilty frame comes from.
    /// </summary>
    public sealed record TitleRule(Regex Header, string Format, string Type, RuleTraits Traits = RuleTraits.None, string[]? Skip = null,
        string? FramesAfter = null, Regex? Requires = null, Regex? Absorbs = null, FrameSource Frames = FrameSource.Stack)
    {
        public bool FunctionFromHeader => Traits.HasFlag(RuleTraits.FunctionFromHeader);
        public bool Fixed => Traits.HasFlag(RuleTraits.Fixed);
        public bool AlwaysCorrupted => Traits.HasFlag(RuleTraits.AlwaysCorrupted);
        public bool TraceFollowsHeader => Traits.HasFlag(RuleTraits.TraceFollowsHeader);
        public bool NoStackTrace => Traits.HasFlag(RuleTraits.NoStackTrace);
        public bool OnlyFramesAfter => Traits.HasFlag(RuleTraits.OnlyFramesAfter);
        public bool MessageOnNextLine => Traits.HasFlag(RuleTraits.MessageOnNextLine);
        public bool NamedByTrace => Traits.HasFlag(RuleTraits.NamedByTrace);
    }

    /// <summary>What a report kind looks like, as the rule table states it.</summary>
    [Flags]
    public enum RuleTraits
    {
        None = 0,
        /// <summary>The guilty function is named in the header itself ("WARNING: CPU: 0 PID: 1 at FILE FUNC+off/size").</summary>
        FunctionFromHeader = 1,
        /// <summary>The title names no function, so a missing trace does not make the report corrupted.</summary>
        Fixed = 2,
        /// <summary>The header alone means the real report was lost ("Fatal exception"): always corrupted.</summary>
        AlwaysCorrupted = 4,
        /// <summary>The frames follow the header without a "Call Trace:" line (KFENCE, KMSAN).</summary>
        TraceFollowsHeader = 8,
        /// <summary>This kind of report prints no call trace: none missing does not make it corrupted.</summary>
        NoStackTrace = 16,
        /// <summary>Only frames after the FramesAfter line may name it (a report without them is corrupted).</summary>
        OnlyFramesAfter = 32,
        /// <summary>The message of the title is on the line after the header (Rust panics of 6.x kernels).</summary>
        MessageOnNextLine = 64,
        /// <summary>Named after the first frame of its trace outside the runtime (Skip), not a header function.</summary>
        NamedByTrace = 128,
    }

    /// <summary>Where a report kind's guilty frame comes from, when not simply the first interesting frame of its stack.</summary>
    public enum FrameSource
    {
        /// <summary>The first frame of the stack that is not a helper (the rule's header function first, where it names one).</summary>
        Stack,
        /// <summary>A stall or runaway recursion: the work above the first dispatch point of the interrupted context.</summary>
        Stall,
        /// <summary>An RCU stall: as <see cref="Stall"/>, cut at the interrupt entry, RCU's own frames passed over.</summary>
        RcuStall,
        /// <summary>A hung task: what it waits for (the hang extractor alone names it).</summary>
        Hang,
        /// <summary>The work function of the "last function:" line (workqueue leaked lock or atomic).</summary>
        WorkqueueLastFunction,
        /// <summary>The stack that took the lock the wrong way, its lock site without one.</summary>
        InconsistentLock,
        /// <summary>Its own stack, never a held lock's site.</summary>
        SuspiciousRcu,
    }

    [GeneratedRegex(@"^(?:[^\[]*?(?=\[\s*\d+\.\d{6}\]))?(?:<\d+>)?(?:\[\s*\d+\.\d+\])?(?:\[\s*[TC]\d+\])?\s?")]
    private static partial Regex Prefix();

    /// <summary>Stands for a line of another task inside a report (printk caller ids): skipped, not a blank line.</summary>
    static readonly string OtherTask = new string(new[] { (char)0 });

    [GeneratedRegex(@"^(?:[^\[]*?(?=\[\s*\d+\.\d{6}\]))?(?:<\d+>)?\[\s*\d+\.\d+\]\[\s*([TC]\d+)\]")]
    private static partial Regex CallerId();

    const string Func = @"([A-Za-z0-9_.$]+)\+0x[0-9a-f]+/0x[0-9a-f]+";

    /// <summary>The rules, most specific first. Extend here, not with ifs.</summary>
    /// <summary>Rust's panic machinery and standard libraries, which a Rust panic passes through on its way to BUG().</summary>
    static readonly string[] RustRuntime = ["__rustc::", "rust_begin_unwind", "core::", "alloc::", "std::", "rust_helper_", "kernel::panic"];

    public static readonly IReadOnlyList<TitleRule> Rules =
    [
        // Rust code panicking in the kernel: "rust_kernel: panicked at FILE:LINE:COL:" and the message on the next line
        // (older kernels: "panicked at 'MESSAGE', FILE"), then the BUG that rust_helper_BUG raises, which is the same
        // report. Named after the first Rust frame outside the panic machinery.
        new(new Regex(@"^rust_kernel: panicked at '(.+)', \S+$"), "{1} in {0}", "BUG", RuleTraits.NamedByTrace, Absorbs: new Regex(@"^kernel BUG at rust/"),
            Skip: RustRuntime),
        new(new Regex(@"^rust_kernel: panicked at \S+:\d+:\d+:$"), "{1} in {0}", "BUG", RuleTraits.MessageOnNextLine | RuleTraits.NamedByTrace,
            Absorbs: new Regex(@"^kernel BUG at rust/"), Skip: RustRuntime),
        new(new Regex(@"^kernel BUG at mm/usercopy\.c"), "BUG: bad usercopy in {0}", "BUG", Skip: ["usercopy", "__check"]),
        new(new Regex(@"^kernel BUG at lib/list_debug\.c"), "BUG: corrupted list in {0}", "BUG"),
        // Socket-buffer helpers BUG_ON for their callers (syzkaller skips "^skb_" here).
        new(new Regex(@"^kernel BUG at ([^:]+):(\d+)!"), "kernel BUG in {0}", "BUG", Skip: ["skb_"]),
        // Kernels before 5.0 ("x86/fault: Reword initial BUG message for unhandled page faults"); later ones print the next line's.
        new(new Regex(@"^BUG: unable to handle kernel NULL pointer dereference"), "BUG: unable to handle kernel NULL pointer dereference in {0}",
            "NULL-POINTER-DEREFERENCE"),
        new(new Regex(@"^BUG: kernel NULL pointer dereference, address"), "BUG: unable to handle kernel NULL pointer dereference in {0}",
            "NULL-POINTER-DEREFERENCE"),
        new(new Regex(@"^BUG: (?:unable to handle (?:page fault|kernel paging request)|Unable to handle kernel data access)"),
            "BUG: unable to handle kernel paging request in {0}", "BUG"),
        new(new Regex(@"^BUG: KASAN: ([a-z\-]+) on address"), "KASAN: {1}", "KASAN", RuleTraits.Fixed),
        // Frees are reported from the allocator: the caller of kfree names it.
        new(new Regex(@"^BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in " + Func), "KASAN: invalid-free in {0}", "KASAN",
            RuleTraits.FunctionFromHeader,
            Skip: ["kmem_", "slab_", "kfree", "vunmap", "vfree"]),
        new(new Regex(@"^BUG: KASAN: ([a-z\- ]+?) in " + Func), "KASAN: {1} in {0}", "KASAN", RuleTraits.FunctionFromHeader),
        // KFENCE and KMSAN print the frames right after the header, without "Call Trace:".
        new(new Regex(@"^BUG: KFENCE: ([a-z\- ]+?) in " + Func), "KFENCE: {1} in {0}", "KFENCE", RuleTraits.FunctionFromHeader | RuleTraits.TraceFollowsHeader),
        new(new Regex(@"^BUG: KMSAN: kernel-usb-infoleak"), "KMSAN: kernel-usb-infoleak in {0}", "KMSAN", RuleTraits.TraceFollowsHeader,
            Skip: ["usb_submit_urb", "usb_start_wait_urb",
            "usb_bulk_msg", "usb_interrupt_msg", "usb_control_msg"]),
        // syzkaller skips socket-buffer allocation, netlink plumbing and generic crypto here: encryption routines are
        // where the uninitialised value is used, not where the bug is.
        new(new Regex(@"^BUG: KMSAN: ([a-z\-]+) in "), "KMSAN: {1} in {0}", "KMSAN", RuleTraits.TraceFollowsHeader,
            Skip: ["alloc_skb", "netlink_ack", "netlink_rcv_skb", "_encrypt", "crypto_", "cipher_", "drbg_", "rng_"]),
        new(new Regex(@"^BUG: KCSAN: (.*)$"), "KCSAN: {1}", "KCSAN", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )?BUG: memory leak$"), "memory leak in {0}", "LEAK",
            // The allocation path (allocators and their wrappers) is not the leak: whoever asked for the memory is.
            Skip: ["kmemleak", "kmalloc", "kcalloc", "kzalloc", "vmalloc", "mmap", "kmem", "slab", "alloc", "create_object", "idr_get",
                "list_lru_init", "kasprintf", "kvasprintf", "pcpu_create", "strdup", "strndup", "memdup"]),
        new(new Regex(@"^BUG: soft lockup"), "BUG: soft lockup in {0}", "HANG", Frames: FrameSource.Stall),
        new(new Regex(@"^(?:NMI )?watchdog: BUG: soft lockup"), "BUG: soft lockup in {0}", "HANG", Frames: FrameSource.Stall),
        // kernel/watchdog.c (watchdog_hardlockup_check; watchdog_hld.c before 6.5): a CPU that took no timer interrupt,
        // then its registers (or another CPU's backtrace of it). Named after where it spins.
        new(new Regex(@"^(?:(?:NMI )?watchdog: )?(?:CPU\d+: )?Watchdog detected hard LOCKUP on cpu \d+$"), "watchdog detected hard LOCKUP in {0}", "HANG"),
        // Bracketed lockdep headers of 4.x kernels (4.5 prints them); 5.x prints "WARNING: ..." (rules below).
        new(new Regex(@"^\[ INFO: possible (?:circular locking dependency|recursive locking|irq lock inversion dependency) detected \]"),
            "possible deadlock in {0}", "LOCKDEP"),
        new(new Regex(@"^\[ INFO: inconsistent lock state \]"), "inconsistent lock state in {0}", "LOCKDEP", Frames: FrameSource.InconsistentLock),
        // Named after where the IRQ-safe lock was taken in IRQ context.
        new(new Regex(@"^(?:\[ )?(?:INFO|WARNING): (?:SOFT|HARD)IRQ-safe -> (?:SOFT|HARD)IRQ-unsafe lock order detected"), "possible deadlock in {0}",
            "LOCKDEP", FramesAfter: "-irq-safe at:"),
        new(new Regex(@"^(?:\[ )?(?:BUG|WARNING): lock held when returning to user space"), "BUG: lock held when returning to user space in {0}", "LOCKDEP",
            RuleTraits.NoStackTrace),
        new(new Regex(@"^\[ BUG: held lock freed! \]|^BUG: held lock freed!"), "BUG: held lock freed in {0}", "LOCKDEP"),
        // Named after the function that released the lock it did not hold (the line after "is trying to release lock").
        new(new Regex(@"^\[ BUG: bad unlock balance detected! \]|^BUG: bad unlock balance detected!"), "BUG: bad unlock balance in {0}", "LOCKDEP",
            FramesAfter: "is trying to release lock"),
        new(new Regex(@"^\[ INFO: suspicious RCU usage\. \]"), "INFO: suspicious RCU usage in {0}", "LOCKDEP", Frames: FrameSource.SuspiciousRcu),
        // arm/arm64 wording of a page fault.
        new(new Regex(@"^Unable to handle kernel paging request"), "BUG: unable to handle kernel paging request in {0}", "BUG"),
        new(new Regex(@"^Unable to handle kernel NULL pointer dereference"), "BUG: unable to handle kernel NULL pointer dereference in {0}",
            "NULL-POINTER-DEREFERENCE"),
        new(new Regex(@"^Unhandled fault: "), "Unhandled fault in {0}", "BUG"),
        new(new Regex(@"^Internal error: "), "Internal error in {0}", "BUG"),
        // UBSAN of 4.x and early 5.x kernels named only the location; later ones name the check ("UBSAN: shift-out-of-bounds in").
        new(new Regex(@"^UBSAN: Undefined behaviour in "), "UBSAN: undefined-behaviour in {0}", "UBSAN", Skip: ["ubsan", "overflow"]),
        new(new Regex(@"^BUG: spinlock (lockup suspected|already unlocked|recursion|bad magic|wrong owner|wrong CPU)"), "BUG: spinlock {1} in {0}", "LOCKDEP",
            Skip: ["spin_"]),
        new(new Regex(@"^BUG: rwlock (lockup suspected|already unlocked|recursion|bad magic|wrong owner|wrong CPU)"), "BUG: rwlock {1} in {0}", "LOCKDEP",
            Skip: ["_lock", "_unlock"]),
        new(new Regex(@"^BUG: using (__this_cpu_[a-z_]+\(\)|smp_processor_id\(\)) in preemptible"), "BUG: using {1} in preemptible code in {0}", "LOCKDEP",
            Skip: ["dump_stack", "preemption", "preempt", "check_preemption", "debug_", "processor_id", "this_cpu"]),
        new(new Regex(@"^BUG: workqueue leaked lock or atomic"), "BUG: workqueue leaked lock or atomic in {0}", "LOCKDEP", RuleTraits.NoStackTrace,
            Frames: FrameSource.WorkqueueLastFunction),
        new(new Regex(@"^BUG: Bad page map"), "BUG: Bad page map", "BUG", RuleTraits.Fixed),
        new(new Regex(@"^BUG: (?:TASK )?stack guard page was hit"), "BUG: stack guard page was hit in {0}", "BUG", RuleTraits.NoStackTrace,
            Frames: FrameSource.Stall),
        // Raised while freeing the page: the culprit is whoever freed it.
        // A page freed with bad state is the fault of whoever owned it: named after the allocation stack page_owner
        // recorded; without page_owner the report cannot say who, and is corrupted.
        new(new Regex(@"^BUG: Bad page state"), "BUG: Bad page state in {0}", "BUG", RuleTraits.OnlyFramesAfter, FramesAfter: "page last allocated via",
            Skip: ["set_page_owner", "post_alloc_hook", "prep_new_page", "get_page_from_freelist", "alloc_pages", "folio_alloc", "alloc_folio",
                "__filemap_get_folio", "pagecache_get_page", "page_pool_alloc", "alloc_page_buffers", "page_frag_alloc"]),
        new(new Regex(@"^BUG: Bad rss-counter state"), "BUG: Bad rss-counter state", "BUG", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^BUG: non-zero nr_(ptes|pmds) on freeing mm"), "BUG: non-zero nr_{1} on freeing mm", "BUG", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        // The second half of the header (printed separately) was lost or garbled.
        new(new Regex(@"^BUG: (?:unable to handle kernel|Unable to handle kernel)"), "BUG: unable to handle kernel", "BUG",
            RuleTraits.Fixed | RuleTraits.AlwaysCorrupted),
        new(new Regex(@"^BUG: Dentry .* still in use \(\d+\) \[(unmount) of"), "BUG: Dentry still in use in {1}", "BUG", RuleTraits.Fixed),
        new(new Regex(@"^BUG kmalloc-.*: Object already free"), "BUG: Object already free", "BUG", RuleTraits.Fixed),
        // Report formats of syzkaller's pkg/report (linux.go, report.go) that name no function: network devices whose
        // references never drop, VFS use-after-free checks of old kernels, the workqueue watchdog, secure-monitor
        // (trusty) panics, and the fuzzer's own failures (SYZFAIL, SYZFATAL, Go runtime errors, Go panics).
        new(new Regex(@"^unregister_netdevice: waiting for .* to become free"), "unregister_netdevice: waiting for DEV to become free", "BUG",
            RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^VFS: Close: file count is 0"), "VFS: Close: file count is zero (use-after-free)", "BUG", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^VFS: Busy inodes after unmount"), "VFS: Busy inodes after unmount (use-after-free)", "BUG",
            RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^BUG: workqueue lockup"), "BUG: workqueue lockup", "BUG", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^trusty: panic \(.*?\):(?: DEBUG)? ASSERT FAILED at \(.*?\): (.+)$"), "trusty: ASSERT FAILED: {1}", "BUG",
            RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^trusty: panic.* ASSERT FAILED.*: *(.*)$"), "trusty: ASSERT FAILED: {1}", "BUG", RuleTraits.Fixed | RuleTraits.AlwaysCorrupted),
        new(new Regex(@"^trusty: panic \(.*?\): (.+)$"), "trusty: panic: {1}", "BUG", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        // (The groups are trimmed when a title is formatted: the space after the colon is kept by the pattern.)
        new(new Regex(@"^SYZFAIL:(.*)$"), "SYZFAIL: {1}", "SYZ", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^SYZFATAL:(.*)$"), "SYZFATAL: {1}", "SYZ", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^fatal error:(?! cannot create timer)(?!.*ALSA)"), "go runtime error", "BUG", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^panic: Sentry detected .* stuck task"), "panic: Sentry detected stuck tasks", "BUG", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^panic:(.*)$"), "panic: {1}", "BUG", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^WARNING: Nested lock was not taken"), "WARNING: nested lock was not taken in {0}", "LOCKDEP"),
        new(new Regex(@"^Alignment trap:"), "Alignment trap in {0}", "BUG"),
        new(new Regex(@"^Unable to handle kernel access to user memory"), "BUG: unable to handle kernel access to user memory in {0}", "BUG"),
        // arm64 die_kernel_fault's other permission faults (arch/arm64/mm/fault.c __do_kernel_fault).
        new(new Regex(@"^Unable to handle kernel (write to read-only memory|execute from non-executable memory|read from unreadable memory) at"),
            "BUG: unable to handle kernel {1} in {0}", "BUG"),
        new(new Regex(@"^PANIC: double fault"), "PANIC: double fault in {0}", "BUG", RuleTraits.NoStackTrace),
        new(new Regex(@"^BUG: scheduling while atomic"), "BUG: scheduling while atomic in {0}", "ATOMIC_SLEEP"),
        new(new Regex(@"^BUG: sleeping function called from invalid context"), "BUG: sleeping function called from invalid context in {0}", "ATOMIC_SLEEP"),
        new(new Regex(@"^BUG: ([^\n]+?)(?: in " + Func + ")?$"), "BUG: {1}", "BUG", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^WARNING: CPU: \d+ PID: -?\d+ at [^ ]+ " + Func), "WARNING in {0}", "WARNING", RuleTraits.FunctionFromHeader),
        // 6.x: "WARNING: fs/jfs/jfs_dmap.c:2987 at dbAdjTree+0x../0x.., CPU#0: jfsCommit/112".
        new(new Regex(@"^WARNING: \S+\.[ch]:\d+ at ([A-Za-z0-9_.$]+)"), "WARNING in {0}", "WARNING", RuleTraits.FunctionFromHeader),
        new(new Regex(@"^WARNING: (?:possible circular locking dependency|possible recursive locking|possible irq lock inversion dependency)"),
            "possible deadlock in {0}", "LOCKDEP"),
        new(new Regex(@"^WARNING: inconsistent lock state"), "inconsistent lock state in {0}", "LOCKDEP",
            Skip: ["mark_lock", "mark_held_locks", "mark_usage", "print_usage_bug", "valid_state", "raw_spin_rq_", "trace_hardirqs", "lock_acquire"],
                Frames: FrameSource.InconsistentLock),
        new(new Regex(@"^WARNING: bad unlock balance detected!"), "WARNING: bad unlock balance in {0}", "LOCKDEP", FramesAfter: "is trying to release lock"),
        // Lockdep's RCU report names the source line of the check; a report cut before it (another report or a stack
        // of its own interrupting it) is only its header.
        new(new Regex(@"^WARNING: suspicious RCU usage"), "WARNING: suspicious RCU usage in {0}", "LOCKDEP", Skip: ["rcu", "kmem", "slab", "kmalloc",
            "vmalloc", "kcalloc", "kzalloc"],
            Requires: new Regex(@"^\S+\.[ch]:\d+ "), Frames: FrameSource.SuspiciousRcu),
        new(new Regex(@"^WARNING: suspicious RCU usage"), "WARNING: suspicious RCU usage", "WARNING", RuleTraits.Fixed | RuleTraits.AlwaysCorrupted,
            Frames: FrameSource.SuspiciousRcu),
        new(new Regex(@"^WARNING: held lock freed!"), "WARNING: held lock freed in {0}", "LOCKDEP"),
        new(new Regex(@"^WARNING: [Nn]ested lock was not taken"), "WARNING: nested lock was not taken in {0}", "LOCKDEP"),
        // Lockdep's wait-context check: named after the code that took the lock (from the trace, not a lock site).
        new(new Regex(@"^\[ BUG: Invalid wait context \]|^BUG: Invalid wait context"), "WARNING: locking bug in {0}", "BUG",
            Skip: ["lock_sock", "release_sock"]),
        new(new Regex(@"^WARNING: kernel stack regs at [0-9a-f]+ in [^ ]* has bad '([^']+)' value"), "WARNING: kernel stack regs has bad '{1}' value",
            "WARNING", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^WARNING: kernel stack frame pointer at [0-9a-f]+ in [^ ]* has bad value"), "WARNING: kernel stack frame pointer has bad value",
            "WARNING", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^WARNING: kernel stack (?:regs .* has bad 'bp' value|frame pointer .* has bad value)"), "WARNING: kernel stack regs has bad value",
            "WARNING", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        new(new Regex(@"^(BUG|WARNING): .*still has locks held!"), "{1}: still has locks held in {0}", "LOCKDEP"),
        new(new Regex(@"^INFO: trying to register non-static key"), "INFO: trying to register non-static key in {0}", "LOCKDEP", Skip: ["stack", "lock",
            "IRQ"]),
        new(new Regex(@"^INFO: (Freed|Allocated) in (.*)$"), "INFO: {1} in {2}", "BUG", RuleTraits.Fixed | RuleTraits.AlwaysCorrupted),
        new(new Regex(@"^general protection fault"), "general protection fault in {0}", "BUG"),
        new(new Regex(@"^Oops: general protection fault"), "general protection fault in {0}", "BUG"),
        new(new Regex(@"^Oops: "), "Oops in {0}", "BUG"),
        new(new Regex(@"^UBSAN: ([a-z\-]+(?: [a-z\-]+)*) in "), "UBSAN: {1} in {0}", "UBSAN", Skip: ["ubsan", "overflow"]),
        new(new Regex(@"^INFO: task .* blocked (?:in I/O wait )?for more than \d+ seconds"), "INFO: task hung in {0}", "HANG", Frames: FrameSource.Hang),
        new(new Regex(@"^INFO: task .* can't die for more than \d+ seconds"), "INFO: task can't die in {0}", "HANG", Skip: ["schedule"],
            Frames: FrameSource.Hang),
        new(new Regex(@"^(?:rcu: )?INFO: rcu_(?:sched|preempt|bh|tasks(?:_trace|_rude)?) (?:self-)?detected (?:stall|expedited stalls)"),
            "INFO: rcu detected stall in {0}", "HANG", Frames: FrameSource.RcuStall),
        new(new Regex(@"^divide(?: |_)error: "), "divide error in {0}", "BUG"),
        new(new Regex(@"^stack segment: "), "stack segment fault in {0}", "BUG"),
        new(new Regex(@"^invalid opcode: "), "invalid opcode in {0}", "BUG"),
        new(new Regex(@"^WARNING: ([^\n]+?)$"), "WARNING: {1}", "WARNING", RuleTraits.Fixed | RuleTraits.NoStackTrace),
        // Panic messages whose tail varies from run to run (exit codes, device names) have fixed titles.
        // The stack protector names the function when it can, else an address: then the trace names it.
        new(new Regex(@"^Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: [0-9a-f]{8,}\b"),
            "kernel panic: stack is corrupted in {0}", "PANIC", Skip: ["stack_chk"]),
        new(new Regex(@"^Kernel panic - not syncing: corrupted stack end"), "kernel panic: corrupted stack end in {0}", "PANIC", Skip: ["schedule",
            "retint_kernel"], Frames: FrameSource.Stall),
        new(new Regex(@"^Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: ([A-Za-z_][A-Za-z0-9_]*)"),
            "kernel panic: stack is corrupted in {1}", "PANIC", RuleTraits.FunctionFromHeader | RuleTraits.NoStackTrace),
        // After a BUG or a WARNING with panic_on_warn, or a hung task with hung_task_panic: the real report was lost.
        new(new Regex(@"^Kernel panic - not syncing: (Fatal exception|panic_on_warn set|hung_task: blocked tasks)"), "kernel panic: {1}", "PANIC",
            RuleTraits.FunctionFromHeader | RuleTraits.AlwaysCorrupted),
        new(new Regex(@"^Kernel panic - not syncing: (Attempted to kill init!|Couldn't open N_TTY ldisc)"), "kernel panic: {1}", "PANIC",
            RuleTraits.FunctionFromHeader),
        new(new Regex(@"^Kernel panic - not syncing: (.*)$"), "kernel panic: {1}", "PANIC", RuleTraits.FunctionFromHeader),
    ];

    static readonly Dictionary<object, int> RuleIndex = Rules.Select((r, i) => (r, i)).ToDictionary(x => (object)x.r, x => x.i,
        ReferenceEqualityComparer.Instance);

    /// <summary>Every rule's header in one pattern: a line none of them matches starts no report.</summary>
    static readonly Regex AnyRule = new(string.Join('|', Rules.Select(r => $"(?:{r.Header})")), RegexOptions.CultureInvariant);

    [GeneratedRegex(@"^CPU: (\d{1,9}) (?:UID: \d+ )?PID: (\d{1,9}) Comm: (\S+) (?:(?:Not tainted|Tainted: \S+(?: [A-Z]+)?) )?\s*(\S+)")]
    private static partial Regex CpuLine();
    // "RIP: 0010:func+off/size" today; 4.x kernels printed "RIP: 0010:[<addr>]  [<addr>] func+off/size" and a separate "IP:" line;
    // arm64 prints "pc : func+off/size", arm "PC is at func+off/size", powerpc "NIP [addr] func+off/size".
    [GeneratedRegex(@"^(?:(?:RIP: [0-9a-f]{4}:|IP: )(?:\[<[0-9a-f]+>\]\s+)?(?:\[<[0-9a-f]+>\] )?|(?:pc : |PC is at |NIP \[[0-9a-f]+\] " +
        @")(?=[A-Za-z_][^\s]*\+0x))([A-Za-z_][^\s]*)")]
    private static partial Regex RipLine();

    [GeneratedRegex(@"^\s*\[<[0-9a-f]+>\] \([A-Za-z0-9_.$]+(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?\) from \[<[0-9a-f]+>\] " +
        @"\(([A-Za-z0-9_.$]+)(?:\+0x([0-9a-f]{1,16})/0x([0-9a-f]{1,16}))?(?: [^)]*)?\)")]
    private static partial Regex ArmFrameLine();
    // A frame: " func+0xoff/0xsize [module]", "? " when unreliable; 4.x kernels put "[<addr>] " and "<IRQ>"/"<EOI>" before
    // (powerpc: "[sp] [pc] func+off/size").
    // it, kmemleak and symbolized logs " file:line" after it.
    [GeneratedRegex(@"^\s*(?:<(?:IRQ|EOI|NMI)>\s+)?(?:\[<?(?<address>[0-9a-f]+)>?\] ?){0,2}\s*(\? )?"
        + @"([A-Za-z0-9_.$]+)\+0x([0-9a-f]{1,16})/0x([0-9a-f]{1,16})(?: \[([A-Za-z0-9_\-]+)\])?(?: \S+:\d+)?(?: \([A-Z]\))?\s*$")]
    private static partial Regex FrameLine();
    [GeneratedRegex(@"^(?:---\[ end trace [0-9a-f]+ \]---|---\[ end Kernel panic)")]
    private static partial Regex EndLine();

    /// <summary>Strips the console prefix of one line.</summary>
    public static string Strip(string line) => Prefix().Replace(line.TrimEnd('\r'), "", 1);

    /// <summary>
    /// Function names as titles show them: compiler suffixes dropped (.cold, .isra.0, .constprop.0, .part.0, .llvm.N).
    /// </summary>
    /// <summary>The name of an Itanium C++ mangled function ("_Z8fakeNameiii" -> fakeName); other names as they are.</summary>
    static string Demangle(string symbol)
    {
        // Rust (v0 mangling, as the kernel's Rust code is built).
        if (symbol.StartsWith("_R", StringComparison.Ordinal)) return RustDemangler.Demangle(symbol) ?? symbol;
        if (!symbol.StartsWith("_Z", StringComparison.Ordinal) || symbol.Length < 4 || !char.IsAsciiDigit(symbol[2])) return symbol;
        int at = 2, length = 0;
        while (at < symbol.Length && char.IsAsciiDigit(symbol[at])) length = length * 10 + (symbol[at++] - '0');
        return length > 0 && at + length <= symbol.Length ? symbol.Substring(at, length) : symbol;
    }

    static readonly string[] WrapperPrefixes =
        ["SYSC_", "SyS_", "sys_", "__x64_", "__ia32_", "__arm64_", "____sys_", "___sys_", "__sys_", "__se_", "__se_sys_", "__do_sys_", "compat_SYSC_",
            "compat_SyS_", "ksys_"];

    public static string Function(string symbol)
    {
        symbol = Demangle(symbol);
        int dot = symbol.IndexOf('.');
        var name = dot > 0 ? symbol[..dot] : symbol;
        // System-call entry points lose one wrapper prefix, the one that leaves the shortest name: SyS_pause -> pause,
        // __do_sys_pause -> pause, __x64_sys_pause -> sys_pause (the arch wrapper's prefix is __x64_).
        string shortest = name;
        foreach (var prefix in WrapperPrefixes)
            if (name.StartsWith(prefix, StringComparison.Ordinal) && name.Length > prefix.Length && name.Length - prefix.Length < shortest.Length)
                shortest = name[prefix.Length..];
        return shortest;
    }

    /// <summary>Every report in a log, in order.</summary>
    public static List<CrashReport> Parse(IReadOnlyList<string> rawLines)
    {
        var lines = rawLines.Select(Strip).ToList();
        var contexts = rawLines.Select(l => CallerId().Match(l) is { Success: true } c ? c.Groups[1].Value : "").ToList();
        var stamped = rawLines.Select(l => Timestamp().IsMatch(l)).ToList();
        bool panicked = lines.Any(l => l.StartsWith("Kernel panic - not syncing", StringComparison.Ordinal));
        var starts = new List<(int Line, TitleRule Rule, Match Match)>();
        for (int i = 0; i < lines.Count; i++)
        {
            // Two CPUs printing at once merge lines ("...user memory accessgeneral protection fault: 0000"): a header
            // in the middle of a line starts a report there.
            bool header = AnyRule.IsMatch(lines[i]); // most lines start no report: one pass instead of one per rule
            if (!header && MergedHeader(lines[i]) is { } tail) { lines[i] = tail; header = true; }
            // A task name may hold a newline: the hung-task header then continues on the next line of the same context.
            if (lines[i].StartsWith("INFO: task ", StringComparison.Ordinal) && !lines[i].Contains(" blocked ", StringComparison.Ordinal) && i + 1 < lines.Count
                && contexts[i + 1] == contexts[i] && HungTaskTail().IsMatch(lines[i + 1]))
            {
                lines[i] = lines[i] + "\\n" + lines[i + 1];
                header = true;
            }
            if (!header) continue;
            foreach (var rule in Rules)
            {
                var m = rule.Header.Match(lines[i]);
                if (!m.Success) continue;
                // Routine messages that only look like headers (checked only for lines a rule would take).
                if (NotReports.Any(r => r.IsMatch(lines[i]))) break;
                // A panic after a report belongs to it.
                // The die banner ("Oops: 0000 [#1]", "invalid opcode: 0000 [#1]") that follows a BUG or page-fault
                // header within a few lines is part of that report.
                if (starts.Count > 0 && i - starts[^1].Line <= 24 && (lines[i].StartsWith("invalid opcode", StringComparison.Ordinal)
                    || lines[i].StartsWith("Oops: ", StringComparison.Ordinal)
                    || lines[i].StartsWith("Internal error: ", StringComparison.Ordinal) || starts[^1].Rule.Absorbs?.IsMatch(lines[i]) == true)
                    && !lines.Skip(starts[^1].Line).Take(i - starts[^1].Line).Any(EndLine().IsMatch)) break;
                if (rule.Type == "PANIC" && starts.Count > 0) break;
                starts.Add((i, rule, m));
                break;
            }
        }
        var reports = new List<CrashReport>();
        var views = new Dictionary<string, List<string>>();
        var traceAhead = new Dictionary<List<string>, bool[]>(ReferenceEqualityComparer.Instance);
        List<string> ViewOf(string key, Func<int, bool> keep)
        {
            if (views.TryGetValue(key, out var v)) return v;
            v = new List<string>(lines.Count);
            for (int i = 0; i < lines.Count; i++) v.Add(keep(i) ? lines[i] : OtherTask);
            return views[key] = v;
        }
        // Whether a stack ("Call Trace", "backtrace:") is printed at or after each line of a view.
        bool[] TraceAhead(List<string> view)
        {
            if (traceAhead.TryGetValue(view, out var ahead)) return ahead;
            ahead = new bool[view.Count + 1];
            for (int i = view.Count - 1; i >= 0; i--)
                ahead[i] = ahead[i + 1] || !ReferenceEquals(view[i], OtherTask) && (view[i].Contains("Call Trace", StringComparison.OrdinalIgnoreCase)
                    || view[i].Contains("backtrace:", StringComparison.OrdinalIgnoreCase));
            return traceAhead[view] = ahead;
        }
        for (int s = 0; s < starts.Count; s++)
        {
            var (start, rule, match) = starts[s];
            // The report's first line: a "cut here" line or a pr_crit line just before the header belongs to it.
            int first = start;
            while (first > 0 && (lines[first - 1].Contains("[ cut here ]") || lines[first - 1].StartsWith("jump_label: Fatal kernel bug",
                StringComparison.Ordinal)
                || lines[first - 1].StartsWith("unexpected static_call insn opcode", StringComparison.Ordinal)) && first > (s > 0 ? starts[s - 1].Line : -1)
                    + 1)
                first--;
            // With printk caller ids ([T123] / [C0]) the report is the header's task's (or CPU's) lines: other tasks'
            // lines in between are dropped, and only that task's next report ends it.
            string context = contexts[start];
            var view = lines;
            int limit = lines.Count;
            for (int n = s + 1; n < starts.Count; n++)
                if (context.Length == 0 || contexts[starts[n].Line] == context) { limit = starts[n].Line; break; }
            // Without caller ids, messages that print a stack of their own (an allocation failure, an injected fault) in
            // the middle of a report leave nothing after them that can be told apart: the report ends there.
            for (int i = start + 1; context.Length == 0 && i < limit; i++)
                if (StackPrintingMessage().IsMatch(lines[i])) { limit = i; break; }
            // (Views are made once per context and shared by its reports: a log of thousands of reports stays linear.)
            if (context.Length > 0) view = ViewOf(context, i => contexts[i] == context);
            // A report printed with timestamps is made of kernel lines only: untimed lines in between are other programs'
            // output on the same console.
            else if (stamped[start]) view = ViewOf("\0timed", i => stamped[i]);
            int end = start;
            for (int i = start; i < limit; i++)
            {
                if (ReferenceEquals(view[i], OtherTask)) continue;
                end = i;
                if (EndLine().IsMatch(view[i])) break;
            }
            // A rule that needs a line of its report's body gives way to the next rule for the header when it is missing.
            while (rule.Requires is { } required && !view.Skip(start).Take(end - start + 1).Any(required.IsMatch)
                && Rules.SkipWhile(r => !ReferenceEquals(r, rule)).Skip(1).FirstOrDefault(r => r.Header.IsMatch(lines[start])) is { } next)
                (rule, match) = (next, next.Header.Match(lines[start]));
            var report = Build(view, TraceAhead(view), first, start, end, rule, match, panicked);
            // With caller ids, a report interrupted by another report of the same task before it printed its trace
            // (a WARNING while dumping an RCU stall) goes on after it: its frames are looked for up to the end of the log.
            if (context.Length > 0 && report.Frames.Count == 0 && report.Rip == null && limit < lines.Count)
            {
                var longer = Build(view, TraceAhead(view), first, start, view.Count - 1, rule, match, panicked);
                if (longer.Frames.Count > 0) report = longer with { EndLine = end, Lines = report.Lines };
            }
            // (Only with caller ids can the interrupting report be told to be the same task's: without them, another
            // CPU's report merely prints in between.)
            if (!report.Corrupted && context.Length > 0 && rule.Type is "KASAN" or "KMSAN" or "KFENCE" or "UBSAN" or "KCSAN" && Interrupted(view, start, limit))
                report = report with { Corrupted = true, CorruptedReason = "interrupted by another report" };
            reports.Add(report);
        }
        if (reports.Count == 0 && Reboot(lines) is { } reboot) reports.Add(reboot);
        return reports;
    }

    /// <summary>
    /// A machine that reboots by itself shows its firmware banner again after the kernel or its programs printed
    /// something (the first banner of a boot is the first thing on the console): "unexpected kernel reboot".
    /// </summary>
    static CrashReport? Reboot(List<string> lines)
    {
        bool output = false;
        for (int i = 0; i < lines.Count; i++)
        {
            var l = lines[i];
            if (l.Contains("SeaBIOS (version", StringComparison.Ordinal) && output)
                return new CrashReport { Title = "unexpected kernel reboot", Type = "REBOOT", StartLine = i, EndLine = i, Lines = [l] };
            if (l.Trim().Length > 0 && !l.StartsWith('#') && !l.Contains("SeaBIOS", StringComparison.Ordinal)) output = true;
        }
        return null;
    }

    static CrashReport Build(List<string> lines, bool[] traceAhead, int first, int start, int end, TitleRule rule, Match match, bool panicked)
    {
        int? cpu = null, pid = null;
        string? comm = null, version = null, rip = null, code = null;
        var frames = new List<CrashFrame>();
        bool inTrace = rule.TraceFollowsHeader;
        int ripLine = -1;
        int interruptEnd = -1; // the line of the last "</IRQ>" / "<EOI>": the interrupted task's frames follow it
        for (int i = start; i <= end; i++)
        {
            var l = lines[i];
            if (ReferenceEquals(l, OtherTask)) continue;
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
            if (rip == null && RipLine().Match(l) is { Success: true } r) { rip = r.Groups[1].Value; ripLine = i; }
            if (code == null && l.StartsWith("Code: ", StringComparison.Ordinal)) code = l[6..];
            // "Call Trace:" in oopses; kmemleak prints "  backtrace:" (frames carry file:line when the kernel symbolizes).
            // arm64 prints "Call trace:".
            // (A "Call Trace:" merged into the end of another line counts too.)
            if (l.StartsWith("Call Trace:", StringComparison.OrdinalIgnoreCase) || l.EndsWith("Call Trace:", StringComparison.Ordinal)
                || l.Trim() is "backtrace:" or "Backtrace:") { inTrace = true; continue; }
            if (!inTrace) continue;
            var trimmed = l.TrimStart();
            if (trimmed.StartsWith("</IRQ>", StringComparison.Ordinal) || trimmed.StartsWith("<EOI>", StringComparison.Ordinal)) interruptEnd = i;
            if (l.Trim() is "<TASK>" or "</TASK>" or "<IRQ>" or "</IRQ>" or "<EOI>" or "<NMI>" or "</NMI>") continue;
            var f = FrameLine().Match(l);
            // 32-bit arm: "[<8013fee8>] (func) from [<8207ed1c>] (caller+0x12c/0x208)": the frame is the first function.
            if (!f.Success && ArmFrameLine().Match(l) is { Success: true } arm)
            {
                frames.Add(new CrashFrame(arm.Groups[1].Value, arm.Groups[2].Success ? ulong.Parse(arm.Groups[2].Value, NumberStyles.HexNumber) : 0,
                    arm.Groups[3].Success ? ulong.Parse(arm.Groups[3].Value, NumberStyles.HexNumber) : 0, null, true, i));
                continue;
            }
            if (f.Success)
                frames.Add(new CrashFrame(f.Groups[2].Value, ulong.Parse(f.Groups[3].Value, NumberStyles.HexNumber), ulong.Parse(f.Groups[4].Value,
                    NumberStyles.HexNumber),
                    f.Groups[5].Success ? f.Groups[5].Value : null, !f.Groups[1].Success, i)
                {
                    Address = f.Groups["address"].Success && ulong.TryParse(f.Groups["address"].Value, NumberStyles.HexNumber, null, out ulong a) ? a : null,
                });
            // The trap's register dump inside a trace (RIP:, RSP:, RAX:, Code: ... between the frames of a WARN with
            // panic_on_warn) does not end it.
            // Symbolized logs put " func file.c:123 [inline]" lines between frames: they do not end the trace either.
            // Other lines inside a trace (another CPU's or process's output, register dumps, [inline] lines) do not end it;
            // the next section of the report does.
            else if (frames.Count > 0 && TraceEnd().IsMatch(l)) inTrace = false;
        }
        // Fault injection prints its own stack (should_fail...) into reports: frames from there on are not the report's,
        // and the report is corrupted.
        var reportFrames = frames;
        // (A WARNING with a kernel RIP line is named from it, before the injected stack.)
        // (An injected stack printed before that RIP line mixes its frames into the trace: only the RIP can be trusted.)
        int injected = frames.FindIndex(f => f.Reliable && f.Function.StartsWith("should_fail", StringComparison.Ordinal));
        if (rule.Type == "WARNING" && rip != null)
        {
            injected = -1;
            for (int i = start; i < ripLine && injected < 0; i++)
                if (!ReferenceEquals(lines[i], OtherTask) && InjectedFrame().IsMatch(lines[i])) injected = 0;
        }
        if (injected >= 0) frames = frames.Take(injected).ToList();
        string? lockSite = null;
        if (rule.Type == "LOCKDEP")
        {
            // The lock site that names the report is the first "at: func" after the sentence that introduces it
            // ("... is trying to acquire lock:", "... takes:", "... just changed the state of lock:"), else the first one.
            // Suspicious RCU usage lists the locks held only as context: it is named after its stack, never a lock site.
            int from = rule.Frames == FrameSource.SuspiciousRcu ? -1 : start;
            for (int i = start; from >= 0 && i <= end; i++)
                if (LockSiteIntro().IsMatch(lines[i])) { from = i; break; }
            // The bracketed headers of old kernels ("[ INFO: possible circular locking dependency detected ]") are titled
            // by the lock site as printed, helpers included (syzkaller reads it with the report's own pattern, which
            // skips nothing); the 5.x "WARNING: ..." forms pass over helpers like any stack.
            bool asPrinted = lines[start].StartsWith("[ INFO: ", StringComparison.Ordinal);
            for (int i = from; from >= 0 && i <= end && lockSite == null; i++)
                if (LockSiteLine().Match(lines[i]) is { Success: true } ls && (asPrinted || !Uninteresting(ls.Groups[1].Value))) lockSite = ls.Groups[1].Value;
        }
        // A WARNING's header names where WARN() sits; the report is named after the code that ran into it: the RIP, then
        // the trace (the header's function only picks the reporting helpers' kinds below).
        // A WARN_ON in a core library file checks how its caller uses it: the report is named after the caller. (One in a
        // header is inlined into its caller already: the header names that caller.)
        string? blamesCaller = rule.Type == "WARNING" && rule.FunctionFromHeader && WarningFile().Match(lines[start]) is { Success: true } wf
            && CallerBlamingFile().IsMatch(wf.Groups[1].Value) ? Function(match.Groups[1].Value) : null;
        bool Skipped(string f) => Uninteresting(f) || rule.Skip?.Any(x => Demangle(f).Contains(x, StringComparison.Ordinal)) == true
            || blamesCaller != null && Function(f.IndexOf('+') is var p and > 0 ? f[..p] : f) == blamesCaller;
        string? header = rule.FunctionFromHeader && rule.Type is not ("PANIC" or "WARNING") ? match.Groups[rule.Format.Contains("{1}") ? 2 : 1].Value : null;
        if (header != null && Skipped(header)) header = frames.FirstOrDefault(f => f.Reliable && !Skipped(f.Function))?.Function;
        // "BUG: workqueue leaked lock or atomic" names the work function on its own line.
        if (rule.Frames == FrameSource.WorkqueueLastFunction)
            for (int i = start; i <= end && header == null; i++)
                if (lines[i].Trim() is var t && t.StartsWith("last function: ", StringComparison.Ordinal)) header = t["last function: ".Length..].Split(' ')[0];
        // Stalls and lockups loop somewhere inside a larger piece of work, so the top frame is arbitrary: they are named
        // after the work, the frame just above the first dispatch point (a syscall, a work item, a softirq, ...).
        // An RCU stall is reported from the timer interrupt: only the interrupted task's frames (and RIP) count.
        // A stack overflow is a runaway recursion, named after the work that started it in the same way.
        string? stalled = null, stalledRaw = null;
        bool rcuStall = rule.Frames == FrameSource.RcuStall;
        bool stall = rcuStall || rule.Frames == FrameSource.Stall;
        if (stall)
        {
            // The interrupted context starts after the timer interrupt's frame (else after </IRQ>).
            int timer = rcuStall ? TimerInterruptLine(lines, start, end) : -1;
            int from = rcuStall ? (timer >= 0 ? timer : interruptEnd) : -1;
            var candidates = new List<string>();
            // The interrupted context's own RIP line follows the timer interrupt's frame.
            string? stallRip = rcuStall ? null : rip;
            for (int i = from + 1; rcuStall && from >= 0 && i <= end && stallRip == null; i++)
                if (!ReferenceEquals(lines[i], OtherTask) && RipLine().Match(lines[i]) is { Success: true } r2) stallRip = r2.Groups[1].Value;
            if (stallRip != null) candidates.Add(stallRip.IndexOf('+') is var ripPlus && ripPlus > 0 ? stallRip[..ripPlus] : stallRip);
            // An RCU stall without the interrupt that caught the stalled CPU shows only other tasks' stacks (the grace-period
            // kthread's): nothing there names the stall.
            if (!rcuStall || from >= 0) candidates.AddRange(frames.Where(f => f.Reliable && f.Line > from).Select(f => f.Function));
            (stalled, stalledRaw) = StallWork(candidates.Where(f => !Skipped(f) && !(rcuStall && (f.Contains("rcu", StringComparison.Ordinal)
                || f.Contains("apic_timer_interrupt", StringComparison.Ordinal)))).ToList()) ?? default;
        }
        else if (rule.Frames == FrameSource.Hang)
            (stalled, stalledRaw) = HungWait(frames.Where(f => f.Reliable).Select(f => f.Function).ToList()) ?? default;
        if (rule.FramesAfter != null)
        {
            int at = -1;
            for (int i = start; i <= end && at < 0; i++) if (lines[i].Contains(rule.FramesAfter, StringComparison.Ordinal)) at = i;
            for (int i = at + 1; at >= 0 && i <= end && header == null; i++)
            {
                if (ReferenceEquals(lines[i], OtherTask)) continue;
                var f = FrameLine().Match(lines[i]);
                if (!f.Success) break;
                if (!f.Groups[1].Success && !Skipped(f.Groups[2].Value)) header = f.Groups[2].Value;
            }
        }
        // Stalls and hangs are named only by their extractors: when those find nothing, the report is corrupted.
        bool hung = rule.Frames == FrameSource.Hang;
        // An inconsistent lock state's lock was taken both ways somewhere: the report is named after the stack that
        // took it the wrong way, and after the lock's site only when that stack is missing.
        if (rule.Frames == FrameSource.InconsistentLock && frames.FirstOrDefault(f => f.Reliable
            && !Skipped(f.Function)) is { } taker)
            lockSite = taker.Function;
        string? guilty = header != null || rule.OnlyFramesAfter ? header : stall || hung ? stalled
            : stalled ?? lockSite ?? (rip != null && !Skipped(rip) && rule.Type != "LOCKDEP" && !rule.NamedByTrace ? (rip.IndexOf('+') is var plus && plus > 0
                ? rip[..plus] : rip)
            : frames.FirstOrDefault(f => f.Reliable && !Skipped(f.Function))?.Function);
        // Stalls keep the syscall's own symbol once the wrapper prefix is gone ("sys_rmdir" of older kernels).
        string? function = guilty == null ? null : stall ? (guilty.IndexOf('.') is var dot and > 0 ? guilty[..dot] : guilty) : Function(guilty);
        // The symbol as the log prints it (without a compiler suffix), when the title shortens it.
        static string? Unsuffixed(string? symbol) => symbol == null ? null : symbol.IndexOf('.') is var d and > 0 ? symbol[..d] : symbol;
        string? rawFrame = Unsuffixed((stall || hung) && guilty != null && guilty == stalled ? stalledRaw : guilty);
        WarningKind? warningKind = null;
        if (rule.Type == "WARNING" && rule.FunctionFromHeader)
        {
            string reporter = match.Groups[1].Value;
            string headerLine = lines[start];
            warningKind = WarningKinds.FirstOrDefault(k => k.Reporters.Any(r => reporter.StartsWith(r, StringComparison.Ordinal))
                || k.Files?.Any(f => headerLine.Contains(" " + f + ":", StringComparison.Ordinal)) == true);
            if (warningKind != null)
            {
                // The guilty function is the first caller of the reporter: past its last frame in the trace.
                // (With panic_on_warn the trace first shows the panic and the trap: past those too.)
                int from = Math.Max(frames.FindLastIndex(f => f.Reliable && warningKind.Reporters.Any(r => f.Function.StartsWith(r, StringComparison.Ordinal))),
                    frames.FindLastIndex(f => f.Reliable
                        && f.Function is "invalid_op" or "asm_exc_invalid_op" or "exc_invalid_op" or "do_invalid_op" or "handle_bug" or "fixup_bug")) + 1;
                var caller = frames.Skip(from).FirstOrDefault(f => f.Reliable && !Uninteresting(f.Function) && !warningKind.Skip.Any(x =>
                    f.Function.Contains(x, StringComparison.Ordinal)));
                function = caller == null ? null : Function(caller.Function);
                rawFrame = Unsuffixed(caller?.Function);
            }
        }
        // Corrupted: the header alone survived, or a title that names a function found none, or the report has no trace.
        bool needsFunction = !rule.Fixed && rule.Type != "PANIC", needsTrace = !rule.NoStackTrace && rule.Type != "HANG";
        bool traceFollows = reportFrames.Count > 0 || traceAhead[start];
        string? reason = rule.AlwaysCorrupted ? "the header says the real report was lost"
            : needsFunction && function == null ? "no guilty function"
            : needsTrace && !traceFollows ? "no call trace"
            : injected >= 0 ? "an injected fault's stack is mixed in"
            : needsTrace && EmptyStack(lines, start, end, rip != null) ? "a stack without frames"
            : null;
        bool corrupted = reason != null;
        // {0} is the guilty function, {1}, {2}... the header's groups (a KASAN kind, a panic message).
        var arguments = new object[Math.Max(2, match.Groups.Count)];
        arguments[0] = rule.Type == "PANIC" ? function ?? "" : function ?? "corrupted";
        for (int g = 1; g < arguments.Length; g++) arguments[g] = g < match.Groups.Count ? match.Groups[g].Value.Trim() : "";
        if (rule.MessageOnNextLine)
            for (int i = start + 1; i <= end; i++)
                if (!ReferenceEquals(lines[i], OtherTask)) { arguments[1] = lines[i].Trim(); break; }
        string title = warningKind != null ? string.Format(CultureInfo.InvariantCulture, warningKind.Format, function ?? "corrupted")
            : string.Format(CultureInfo.InvariantCulture, rule.Format, arguments);
        if (rule.Type == "KASAN")
        {
            title = KasanTitle(lines, start, end, match.Groups[1].Value, function, rule.Fixed, lines[start]);
            // Without its "Read/Write of size" line the report is a bare header (old kernels, or lost lines).
            if (!title.Contains(" Read", StringComparison.Ordinal) && !title.Contains(" Write", StringComparison.Ordinal)
                && !title.StartsWith("KASAN: invalid-free", StringComparison.Ordinal))
            {
                corrupted = true;
                reason ??= "no access line (Read/Write of size N)";
            }
        }
        title = Sanitize(title);
        return new CrashReport
        {
            Title = title, Type = rule.Type, Rule = RuleIndex[rule], StartLine = first, EndLine = end,
            Corrupted = corrupted, CorruptedReason = corrupted ? reason : null,
            Panicked = panicked, Frame = function, RawFrame = rawFrame != function ? rawFrame : null, Cpu = cpu, Pid = pid, Comm = comm,
                KernelVersion = version, Rip = rip, Code = code,
            Frames = reportFrames, Lines = lines.Skip(first).Take(end - first + 1).Where(l => !ReferenceEquals(l, OtherTask)).ToList(),
        };
    }

    /// <summary>Lines that look like report headers but are routine messages (of the kernel, sshd, the dynamic loader).</summary>
    static readonly Regex[] NotReports =
    [
        new(@"^WARNING: workqueue cpumask: online intersect > possible intersect"), new(@"^WARNING: /etc/ssh/moduli does not exist"),
        new(@"^WARNING: the mand mount option"), new(@"^WARNING: Unsupported flag value\(s\)"),
        new(@"^INFO: lockdep is turned off"), new(@"^INFO: Stall ended before state dump start"), new(@"^INFO: NMI handler"),
        new(@"^INFO: recovery required on readonly filesystem"),
        // syzkaller's other "WARNING:" lines that are not reports (pkg/report/linux.go): mitigation notices, deprecated
        // interfaces, file systems' own warnings.
        new(@"^WARNING: Unprivileged eBPF is enabled with eIBRS"), new(@"^WARNING: fbcon: Driver '.*' missed to adjust virtual screen size"),
        new(@"^WARNING: See https.* for mitigation options\."), new(@"^WARNING: kernel not compiled with CPU_SRSO"),
        new(@"(?i)warning: .* uses (?:deprecated v2 capabilities|wireless extensions)"), new(@"XFS \(\w+\): WARNING"), new(@"EXT4-[Ff][Ss](?: \(.*\))?:"),
    ];

    static readonly string[] HeaderWords =
    [
        "general protection fault", "BUG: ", "WARNING: ", "INFO: ", "kernel BUG at", "Kernel panic - not syncing", "divide error: ",
        "invalid opcode: ", "Unable to handle kernel", "UBSAN: ", "stack segment: ", "PANIC: double fault",
    ];

    /// <summary>The line from the first report header inside it, when one is there and a rule accepts it.</summary>
    static string? MergedHeader(string line)
    {
        int best = -1;
        foreach (var word in HeaderWords)
        {
            int at = line.Length > 1 ? line.IndexOf(word, 1, StringComparison.Ordinal) : -1;
            if (at > 0 && (best < 0 || at < best)) best = at;
        }
        if (best < 0 || char.IsAsciiLetterUpper(line[best - 1]) || char.IsAsciiDigit(line[best - 1]) || line[best - 1] == '_') return null; // "ODEBUG: "
        var tail = line[best..];
        // Only a specific header: the catch-all "BUG: ..." and "WARNING: ..." rules would take any text that says so.
        // A device's own "WARNING:" ("usb 5-1: WARNING: ath10k USB support is incomplete") is a report, as syzkaller
        // reads it, unless it is one of the known notices.
        if (tail.StartsWith("WARNING: ", StringComparison.Ordinal) && line[..best].TrimEnd().EndsWith(':') && !NotReports.Any(r => r.IsMatch(line)))
            return tail;
        return Rules.FirstOrDefault(r => r.Header.IsMatch(tail)) is { Format: not ("BUG: {1}" or "WARNING: {1}") } ? tail : null;
    }

    /// <summary>
    /// Titles group reports of one bug across runs, so what changes from run to run goes: process ids after
    /// syz-executor, addresses (ADDR), func+off/size (func), CPU numbers, other numbers (NUM).
    /// </summary>
    public static string Sanitize(string title)
    {
        title = ExecutorId().Replace(title, "syz-executor");
        title = HexAddress().Replace(title, "${1}ADDR");
        title = FunctionOffset().Replace(title, "$1");
        title = CpuNumber().Replace(title, "CPU");
        for (string before = ""; before != title;) { before = title; title = DecimalNumber().Replace(title, "${1}NUM${3}"); }
        var sb = new System.Text.StringBuilder(title.Length);
        foreach (char c in title.Length > 120 ? title[..120] : title)
            if (c is >= ' ' and < (char)0x7f && !(c == ' ' && sb.Length > 0 && sb[^1] == ' ')) sb.Append(c);
        return sb.ToString().Trim();
    }

    [GeneratedRegex(@"syz-executor\.?[0-9]+((/|:)[0-9]+)?")]
    private static partial Regex ExecutorId();
    [GeneratedRegex(@"([^a-zA-Z0-9])(?:0x)?[0-9a-f]{6,}")]
    private static partial Regex HexAddress();
    [GeneratedRegex(@"([a-zA-Z][a-zA-Z0-9_.]+)\+0x[0-9a-z]+/0x[0-9a-z]+")]
    private static partial Regex FunctionOffset();
    [GeneratedRegex(@"CPU#[0-9]+")]
    private static partial Regex CpuNumber();
    [GeneratedRegex(@"(\W)(\d+)(\W|$)")]
    private static partial Regex DecimalNumber();

    static int TimerInterruptLine(List<string> lines, int start, int end)
    {
        for (int i = start; i <= end; i++) if (lines[i].Contains("apic_timer_interrupt", StringComparison.Ordinal)) return i;
        // arm: the IRQ exception entry from kernel mode (arm64's el1h_64_irq since 5.14, el1_irq before; 32-bit __irq_svc).
        for (int i = start; i <= end; i++)
            if ((FrameLine().Match(lines[i]) is { Success: true } f && !f.Groups[1].Success ? f.Groups[2].Value
                    : ArmFrameLine().Match(lines[i]) is { Success: true } a ? a.Groups[1].Value : null) is "el1h_64_irq" or "el1_irq" or "__irq_svc")
                return i;
        return -1;
    }

    /// <summary>
    /// Where work is dispatched: system-call entry, work items, softirqs and timers, kernel threads, page faults, and
    /// the file, socket and ioctl operations that route a syscall to a driver or protocol. The frame called from the
    /// first of these names a stall (matched as substrings of the function name).
    /// </summary>
    static readonly string[] DispatchPoints =
    [
        "do_syscall_", "do_fast_syscall_", "entry_SYSCALL", "process_one_work", "worker_thread", "do_softirq", "__do_softirq",
        "net_rx_action", "netif_receive_skb", "__netif_receive_skb", "call_timer_fn", "run_timer_softirq", "_run_timers",
        "expire_timers", "run_ksoftirqd", "smpboot_thread_fn", "=kthread", "ret_from_fork", "start_secondary", "cpu_startup_entry",
        "vfs_write", "vfs_read", "vfs_iter_read", "vfs_iter_write", "do_iter_read", "do_iter_write", "vfs_ioctl", "blkdev_ioctl",
        "^call_read_iter", "^call_write_iter", "do_iter_readv_writev", "^call_mmap", "mmap_region", "do_mmap", "do_dentry_open", "vfs_open",
        "^sock_sendmsg", "^sock_recvmsg", "^sock_release", "^__sock_release", "__sys_setsockopt", "kernel_setsockopt", "sock_common_setsockopt",
        "__sys_listen", "kernel_listen", "sk_common_release", "^sock_mmap", "__sys_accept", "kernel_accept", "^sock_do_ioctl", "^sock_ioctl",
        "^compat_sock_ioctl", "^nfnetlink_rcv_msg", "blkdev_driver_ioctl", "sysenter_dispatch", "tracesys_phase2",
        "__fput", "task_work_run", "exit_to_usermode", "exit_to_user_mode",
        // Netlink, timer and tasklet dispatch, and compat ioctls.
        "^rtnetlink_rcv_msg", "^genl_lock_dumpit", "netlink_dump", "__hrtimer_run_queues", "__do_fault",
        "tasklet_action_common", "compat_ioctl", "^new_sync_read", "^new_sync_write",
        // Cross-CPU calls: the stall is in waiting for the other CPUs, whoever asked.
        "smp_call_function",
        // 32-bit arm's system-call path, arm64's system-call dispatcher.
        "=ret_fast_syscall", "=invoke_syscall",
    ];

    // The ioctl, connect and socketpair syscalls dispatch to a driver or protocol: the frame above them names the work.
    [GeneratedRegex(@"^(?:compat_)?(?:SYSC|SyS|__sys|___sys|__do_sys|__se_sys|__x64_sys|__ia32_sys|__arm64_sys|ksys)_(?:socketpair|connect|ioctl)")]
    private static partial Regex DispatchingSyscall();

    static readonly string[] SyscallPrefixes = ["__x64_", "SYSC_", "SyS_", "compat_SYSC_", "compat_SyS_", "__ia32_", "__arm64_", "ksys_"];

    /// <summary>The frame just above the first dispatch point (syscall wrapper prefixes dropped); null when none.</summary>
    static (string Work, string Raw)? StallWork(List<string> frames)
    {
        for (int i = 0; i < frames.Count; i++)
        {
            // "^name": a prefix, "=name": the whole name, else a substring.
            if (!DispatchPoints.Any(d => d[0] == '^' ? frames[i].StartsWith(d[1..], StringComparison.Ordinal) : d[0] == '=' ? frames[i] == d[1..]
                    : frames[i].Contains(d, StringComparison.Ordinal))
                && !DispatchingSyscall().IsMatch(frames[i])) continue;
            var raw = frames[i].Contains("smp_call_function", StringComparison.Ordinal) ? frames[i] : i > 0 ? frames[i - 1] : frames[i];
            var work = raw.Contains("smp_call_function", StringComparison.Ordinal) ? "smp_call_function" : raw;
            foreach (var prefix in SyscallPrefixes)
                if (work.StartsWith(prefix, StringComparison.Ordinal)) work = work[prefix.Length..];
            return (work, raw);
        }
        return null;
    }

    /// <summary>
    /// A hung task waits somewhere: hangs on rtnl_lock and on RCU grace periods are grouped under those; otherwise the
    /// first frame that is not waiting, scheduling or locking.
    /// </summary>
    static (string Work, string Raw)? HungWait(List<string> frames)
    {
        foreach (var f in frames)
        {
            if (f.StartsWith("rtnl_lock", StringComparison.Ordinal)) return ("rtnl_lock", f);
            // Hangs in any RCU grace-period wait are one bucket, whichever flavour waited.
            if (f.Contains("synchronize_rcu", StringComparison.Ordinal) || f.Contains("synchronize_srcu", StringComparison.Ordinal)
                || f.StartsWith("synchronize_net", StringComparison.Ordinal) || f.StartsWith("synchronize_sched",
                    StringComparison.Ordinal)) return ("synchronize_rcu", f);
        }
        // (and the hung-task detector's own frames when it dumps every CPU)
        string[] waiting = ["sched", "_lock", "_slowlock", "down", "completion", "kthread", "wait", "synchronize", "context_switch", "__switch_to",
            "cancel_delayed_work", "rcu_barrier", "cpumask_backtrace", "watchdog", "hung_task", "ret_from_fork", "entry_SYSCALL", "do_syscall"];
        return frames.FirstOrDefault(f => !waiting.Any(w => f.Contains(w, StringComparison.Ordinal)) && !Uninteresting(f)) is { } hung ? (hung, hung) : null;
    }

    /// <summary>A WARNING raised by a reporting helper on behalf of its caller: its title names the caller.</summary>
    /// <remarks>A kind is recognised by its reporting function, or by the source file 6.x headers name ("WARNING: lib/refcount.c:19 at 0x0").</remarks>
    public sealed record WarningKind(string[] Reporters, string Format, string[] Skip, string[]? Files = null);

    /// <summary>Reporting helpers whose WARNINGs are titled by kind (bug trackers' "WARNING: ODEBUG bug in FUNC"...).</summary>
    public static readonly IReadOnlyList<WarningKind> WarningKinds =
    [
        // Skips are substrings: the object debugger's users (timers, work, RCU, the allocators) report on behalf of the code that misused the object.
        new(["debug_print_object"], "WARNING: ODEBUG bug in {0}", ["debug_", "rcu", "hrtimer_", "timer_", "work_", "percpu_", "kmem_", "slab_", "kfree",
            "vunmap", "vfree", "__free_", "kobject_"]),
        new(["kmalloc_slab", "kmalloc_order", "kmalloc_", "__kmalloc", "kvmalloc_node", "kvmalloc"], "WARNING: kmalloc bug in {0}",
            ["kmalloc", "kcalloc", "kzalloc", "krealloc", "vmalloc", "slab", "kmem", "warn_alloc", "alloc_pages", "should_fail"]),
        new(["usercopy_warn", "__check_object_size", "check_object_size"], "WARNING: bad usercopy in {0}", ["usercopy_", "__check_object", "check_object"]),
        new(["proc_register"], "WARNING: proc registration bug in {0}", ["proc_", "__proc_"]),
        new(["kobject_"], "WARNING: kobject bug in {0}", ["kobject_"]),
        new(["refcount_", "__refcount_"], "WARNING: refcount bug in {0}", ["refcount", "kobject_"], ["lib/refcount.c"]),
        new(["__vmalloc_node_range"], "WARNING: zero-size vmalloc in {0}", ["vmalloc", "kvmalloc", "__vmalloc"]),
        new(["usb_submit_urb"], "WARNING in {0}/usb_submit_urb", ["usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg", "usb_interrupt_msg",
            "usb_control_msg"]),
        new(["lock_release", "lock_acquire", "__lock_acquire", "lockdep_", "register_lock_class", "hlock_class", "check_flags"], "WARNING: locking bug in {0}",
            ["lock_", "__lock_", "lockdep_", "up_", "up_read", "up_write", "__up_", "mutex_", "__mutex_", "lock_sock", "release_sock"]),
    ];

    /// <summary>The source file a WARNING header names ("at lib/refcount.c:25 ..." or "WARNING: fs/buffer.c:1183 at ...").</summary>
    [GeneratedRegex(@"^WARNING: (?:CPU: \d+ PID: -?\d+ at )?(\S+\.[ch]):\d+")]
    private static partial Regex WarningFile();

    /// <summary>
    /// Files whose WARN_ONs check how the caller uses them: lib/, the allocators and mm utilities, RCU, locking,
    /// the scheduler, softirq/timer/workqueue/kthread cores, printk and panic, the fault and trap handlers, the core
    /// socket/skb/netdevice code, proc registration, and the dentry and buffer-head reference helpers.
    /// </summary>
    [GeneratedRegex(@"^(?:\./)?(?:(?:virt/)?lib/|mm/(?:kasan|kmsan|kfence)/|mm/(?:sl[aou]b|slab_common|memory|percpu\w*|vmalloc|page_alloc|util|usercopy)\.c" +
        @"$|kernel/(?:rcu|locking|sched|printk)/|kernel/(?:kcov|panic|softirq|kthread|workqueue)\.c$|kernel/time/timer\.c$|arch/[^/]+/kernel/traps\.c$|arch/" +
        @"[^/]+/mm/(?:fault|physaddr)\.c$|net/core/(?:dev|sock|skbuff)\.c$|fs/proc/generic\.c$|fs/(?:dcache|buffer)\.c$)")]
    private static partial Regex CallerBlamingFile();

    [GeneratedRegex(@"^(?:[^\[]*?(?=\[\s*\d+\.\d{6}\]))?(?:<\d+>)?\[\s*\d+\.\d+\]")]
    private static partial Regex Timestamp();

    /// <summary>
    /// Sanitizer reports (KASAN, KMSAN, KFENCE, UBSAN...) are framed by "=====" lines: one whose closing line had not
    /// come when the same task's next report started was interrupted by it. (A log that simply ends is not.)
    /// </summary>
    static bool Interrupted(List<string> lines, int start, int next)
    {
        if (next >= lines.Count) return false;
        int before = start - 1;
        while (before >= 0 && ReferenceEquals(lines[before], OtherTask)) before--;
        if (before < 0 || !Separator(lines[before])) return false;
        for (int i = start + 1; i < next; i++)
            if (!ReferenceEquals(lines[i], OtherTask) && Separator(lines[i])) return false;
        return true;
    }

    static bool Separator(string line) => line.Length >= 20 && line.AsSpan().Trim().IndexOfAnyExcept('=') < 0;

    [GeneratedRegex(@"Call Trace|Allocated(?: by task \d+)?:|Freed(?: by task \d+)?:|[^k] backtrace:", RegexOptions.IgnoreCase)]
    private static partial Regex StackKeyword();

    /// <summary>
    /// A stack the report announces ("Call Trace:", "Allocated by task N:", "Freed by task N:", "backtrace:") but that
    /// has no frame in the next lines before the next stack starts: the report lost it.
    /// </summary>
    static bool EmptyStack(List<string> lines, int start, int end, bool hasRip)
    {
        var seen = new HashSet<string>();
        for (int i = start; i <= end; i++)
        {
            if (ReferenceEquals(lines[i], OtherTask) || StackKeyword().Match(lines[i]) is not { Success: true } k) continue;
            // The first of each kind counts ("Allocated by task 1:" and "Allocated by task 2:" are one kind).
            string kind = DecimalNumber().Replace(k.Value.Trim().ToLowerInvariant(), "N");
            if (!seen.Add(kind)) continue;
            bool frame = false;
            for (int j = i + 1, n = 0; j <= end && n < 15 && !frame; j++)
            {
                if (ReferenceEquals(lines[j], OtherTask)) continue;
                if (StackKeyword().IsMatch(lines[j])) break;
                // Unreliable ("? ") frames say nothing by themselves, unless the report has the CPU's own RIP to name
                // it: then a stack of unreliable frames only (early boot, unwinder quirks) is still its stack.
                var f = FrameLine().Match(lines[j]);
                if (!hasRip && (f.Success && f.Groups[1].Success || lines[j].EndsWith(" (unreliable)", StringComparison.Ordinal))) continue;
                n++;
                frame = f.Success || lines[j].Contains("(stack is not available)", StringComparison.Ordinal) || ArmFrameLine().IsMatch(lines[j]);
            }
            if (!frame) return true;
        }
        return false;
    }

    [GeneratedRegex(@":\d+ blocked (?:in I/O wait )?for more than \d+ seconds")]
    private static partial Regex HungTaskTail();

    [GeneratedRegex(@"vmalloc: allocation failure:|FAULT_INJECTION: forcing a failure|FAULT_FLAG_ALLOW_RETRY missing")]
    private static partial Regex StackPrintingMessage();

    [GeneratedRegex(@"^\s*(?:\[<?[0-9a-f]+>?\] )?should_fail")]
    private static partial Regex InjectedFrame();

    [GeneratedRegex(@"is trying to acquire|\] takes:|just changed the state of lock")]
    private static partial Regex LockSiteIntro();

    [GeneratedRegex(@" at: (?:\[<[0-9a-f]+>\] +)?([A-Za-z0-9_.$]+)\+0x[0-9a-f]+/0x[0-9a-f]+")]
    private static partial Regex LockSiteLine();

    /// <summary>
    /// One subsystem's frames that are never the guilty function: they report, allocate, lock, copy, wait or fault on
    /// behalf of their callers. <paramref name="Prefixes"/> match the start of a frame's name, <paramref name="Anywhere"/>
    /// any part of it, <paramref name="Pattern"/> is a regular expression (the facts of syzkaller's skip patterns,
    /// pkg/report/linux.go), <paramref name="Exactly"/> whole names only.
    /// </summary>
    public sealed record SkipGroup(string Subsystem, string Why, string[] Prefixes, string[] Anywhere, string Pattern, string[]? Exactly = null);

    /// <summary>The frames never named as guilty, by subsystem. Extend the subsystem's row, not the engine.</summary>
    public static readonly IReadOnlyList<SkipGroup> NeverGuiltyFrames =
    [
        new("networking", "socket-buffer helpers that BUG or free on their callers' behalf",
            Prefixes:
                ["sock_kmalloc", "sk_prot_alloc", "sk_alloc"],
            Anywhere:
                ["skb_put", "skb_push", "skb_pull", "skb_over_panic", "skb_under_panic", "sk_stop_timer"],
            Pattern: @"kfree_skb|sk_stop_timer_sync"),
        new("sanitizers and hardening", "the runtimes of KASAN, KMSAN, KCSAN, UBSAN, kmemleak and fortify, which report on behalf of the code they check",
            Prefixes:
                ["kasan_", "__kasan_", "__asan_", "asan_", "ubsan_", "__ubsan_", "__sanitizer_", "kmemleak_"],
            Anywhere:
                ["kasan", "__asan", "__sanitizer", "kmsan", "__msan", "check_memory_region", "read_word_at_a_time", "check_heap_object",
                    "assertfail", "fortify_", "check_object_size", "read_once_word_nocheck", "__hwasan"],
            Pattern: @"__sanitizer|__asan|kasan|hwasan|__msan|kmsan|kcsan_setup_watchpoint|check_memory_region|check_heap_object|check_object|" +
                @"read_word_at_a_time|(?:read|write)_once_.*nocheck|assertfail|__fortify_report"),
        new("reporting and traps", "printing, stack dumps, WARN/BUG plumbing and the trap path of every report",
            Prefixes:
                ["dump_stack", "__dump_stack", "show_stack", "print_", "__warn", "warn_slowpath", "report_bug", "panic", "do_error_trap",
                    "do_invalid_op", "invalid_op", "do_trap", "exc_", "asm_exc_", "handle_bug", "bad_page", "fixup_bug", "nmi_", "io_serial_",
                    "unwind_", "kvasprintf", "kasprintf", "debug_objects_", "stack_trace_", "save_stack", "__save_stack"],
            Anywhere:
                ["panic", "dump_stack", "warn_slowpath", "__warn", "report_bug", "fixup_bug", "invalid_op", "print_address_description", "printk",
                    "snprintf", "debug_object", "string", "pointer", "warn_bogus_irq_restore", "ref_tracker", "seqprop_assert", "dev_info",
                    "dev_notice", "dev_warn", "dev_err", "dev_alert", "dev_crit", "dev_emerg", "dump_backtrace", "walk_stackframe",
                    "arch_stack_walk", "scnprintf", "va_format", "format_decode", "hex_dump", "timer_is_static_object", "work_is_static_object"],
            Pattern: @"print_address_description|panic|invalid_op|report_bug|fixup_bug|print_report|print_usage_bug|do_error|_trap$|do_trap|show_stack|" +
                @"dump_stack|walk_stack|dump_backtrace|warn_slowpath|warn_alloc|warn_bogus|__warn|debug_object|timer_is_static_object|" +
                @"work_is_static_object|print_unlock|ref_tracker|seqprop_assert|string|pointer|snprintf|scnprintf|kasprintf|kvasprintf|printk|" +
                @"va_format|dev_info|dev_notice|dev_warn|dev_err|dev_alert|dev_crit|dev_emerg|program_check_exception|program_check_common|" +
                @"hex_dump_to_buffer|print_hex_dump|stack_trace_consume_entry|arch_stack_walk|stack_trace_save|print_tainted|^get_taint$"),
        new("scheduler, waiting and RCU", "sleeping, waking and waiting primitives, and the debug checks inside them",
            Prefixes:
                ["__might_sleep", "___might_sleep", "__might_fault", "might_fault", "schedule", "__schedule", "io_schedule", "preempt_schedule",
                    "wait_for_completion", "__wait_for_common", "wait_for_common", "__wait_rcu_gp", "wait_on_page", "trace_hardirqs"],
            Anywhere:
                ["might_fault", "might_sleep", "__wake_up", "finish_wait", "kthread_stop", "might_resched"],
            Pattern: @"__might_fault|bh_enable|bh_disable|__wake_up|might_fault|might_sleep|finish_wait|kthread_stop|^complete$|wait_for_completion|" +
                @"__might_resched|(?:trace|lockdep)_(?:hard|soft)irq|cleanup_srcu_struct",
            Exactly: ["complete"]),
        new("locking", "lock primitives and lockdep",
            Prefixes:
                ["mutex_lock", "__mutex_lock", "mutex_unlock", "down_", "__down", "rwsem_", "_raw_", "do_raw_", "spin_", "lock_acquire",
                    "__lock_acquire", "lock_release", "lockdep_", "check_", "validate_chain", "call_rwsem_"],
            Anywhere:
                ["lockdep", "spin_lock", "spin_unlock", "spin_trylock", "raw_read_lock", "raw_write_lock", "_write_lock", "_write_unlock",
                    "mutex_lock", "mutex_unlock", "mutex_trylock", "lock_acquire", "lock_release", "lock_class", "osq_lock", "folio_unlock",
                    "mutex_optimistic_spin", "_atomic_dec_and_lock", "unlock_page"],
            Pattern: @"imbalance_bug|lockdep|lock_acquire|lock_release|lock_class|mark_lock|(?:reacquire|mark)_held_locks|raw_spin_rq|spin_lock|" +
                @"spin_trylock|spin_unlock|read_lock|read_trylock|write_lock|write_trylock|read_unlock|write_unlock|^down$|down_read|down_write|" +
                @"down_trylock|up_read|up_write|^mutex_|^__mutex_|^rt_mutex_|owner_on_cpu|osq_lock|osq_unlock|^(?:un)?lock_page"),
        new("memory allocation and the page cache", "allocators, their wrappers and the page-cache lookups that allocate",
            Prefixes:
                ["kmalloc", "__kmalloc", "kmem_cache_", "kfree", "kzalloc", "kcalloc", "kmemdup", "kstrdup", "krealloc", "kvmalloc", "kvzalloc",
                    "__kvmalloc", "vmalloc", "vzalloc", "__vmalloc", "__do_kmalloc", "slab_alloc", "alloc_pages", "__alloc_pages",
                    "__get_free_pages", "alloc_inode", "new_slab", "create_object", "pcpu_", "__pcpu_"],
            Anywhere:
                ["__phys_addr", "ida_alloc", "memdup_user"],
            Pattern: @"alloc_page|k?v?(?:m|z|c)alloc|krealloc|kmem_cache|allocate_slab|__alloc_frozen_pages_noprof|folio_(?:alloc|unlock)|" +
                @"filemap_alloc_folio|__filemap_get_folio|find_or_create_page|do_read_cache_folio|read_cache_page|pagecache_get_page|" +
                @"grab_cache_page_write_begin|slab_|copy_folio_to_iter|^kv?free$|xas_(?:start|load|find)|find_lock_entries|" +
                @"truncate_inode_pages_range|__phys_addr"),
        new("string and memory routines, user copies", "the library routines that fault on bad pointers their callers pass",
            Prefixes:
                ["memcpy", "memmove", "memset", "memcmp", "strlen", "strcpy", "strncpy", "copy_user", "_copy_", "__copy_"],
            Anywhere:
                ["memcpy", "memset", "memmove", "memcmp", "memchr", "strcmp", "strncmp", "strlen", "strnlen", "strcpy", "strncpy", "strscpy",
                    "strlcpy", "strchr", "strnstr", "copy_to_user", "copy_from_user", "put_user", "get_user", "destroy_workqueue", "device_destroy"],
            Pattern: @"memcpy|memcmp|memset|memchr|memmove|memdup|strcmp|strncmp|strcpy|strlcpy|strncpy|strscpy|strlen|strstr|strnstr|strnlen|strchr|" +
                @"strdup|strndup|copy_to_user|copy_from_user|copy_to_iter|copy_from_iter|copy_page_to_iter|copy_page_from_iter|^copyin$|^copyout$|" +
                @"put_user|get_user|destroy_workqueue|device_destroy"),
        new("data structures and atomics", "lists, trees, hash tables, ID allocators, CRCs, reference counts, atomics and bitops",
            Prefixes:
                ["refcount_", "__list_", "list_"],
            Anywhere:
                ["refcount_", "list_add", "list_del", "dummy_urb_enqueue", "rb_erase", "rb_next", "rb_prev", "rb_first", "rb_insert", "__rb_",
                    "crc16", "crc32", "crc_itu_t", "crc_t10dif", "crc_ccitt", "rhashtable_", "ida_free", "atomic_read", "atomic_set", "atomic_inc",
                    "atomic_dec", "atomic_add", "atomic_sub", "test_and_clear_bit", "test_and_set_bit", "set_bit", "clear_bit"],
            Pattern: @"atomic(?:64)?_(?:dec|inc|read|set|or|xor|and|add|sub|fetch|xchg|cmpxchg|try)|(?:set|clear|change|test)_bit|^refcount_|^kref_|" +
                @"list_add|list_del|list_replace|list_move|list_splice|^rb_|^__rb_|dummy_urb_enqueue|^crc\d+|crc_itu_t|^klist_|ida_free|" +
                @"rhashtable_lookup|extract_(?:user|iter)_to_sg"),
        new("workqueues and timers", "work and timer primitives, which act on objects their callers hand them",
            Prefixes:
                ["flush_work", "insert_work"],
            Anywhere:
                ["flush_work", "flush_workqueue", "drain_workqueue", "cancel_work_sync", "__cancel_work_timer", "del_timer", "queue_work",
                    "queue_delayed_work", "lock_timer_base", "timer_delete"],
            Pattern: @"del_timer|flush_work|__cancel_work_timer|cancel_work_sync|try_to_grab_pending|flush_workqueue|drain_workqueue|queue_work|" +
                @"insert_work|__queue_delayed_work|queue_delayed_work_on|lock_timer_base|__timer_delete_sync|__mod_timer"),
        new("driver core and devices", "the device model, sysfs and device unregistration paths",
            Prefixes:
                ["kobject_"],
            Anywhere:
                ["kobject_del", "kobject_put", "kobject_uevent", "add_uevent_var", "get_device_parent", "device_add", "device_del",
                    "device_unregister", "device_for_each_child", "sysfs_remove", "device_remove_file", "rollback_registered", "unregister_netdev",
                    "i2c_del_adapter", "hwrng_unregister", "tty_unregister_device", "put_device", "__unregister_client"],
            Pattern: @"kobject_|add_uevent_var|get_device_parent|device_add|device_del|device_unregister|device_release|devres_release_all|" +
                @"hwrng_unregister|i2c_del_adapter|__unregister_client|device_for_each_child|rollback_registered|unregister_netdev|sysfs_remove|" +
                @"device_remove_file|tty_unregister_device|^put_device$"),
        new("USB", "URB submission and cancellation",
            Prefixes:
                [],
            Anywhere:
                ["usb_kill_urb", "usb_kill_anchored_urbs", "usb_control_msg", "usb_hcd_submit_urb", "usb_submit_urb"],
            Pattern: @"usb_kill_urb|usb_kill_anchored_urbs|usb_control_msg|usb_hcd_submit_urb|usb_submit_urb"),
        new("I/O accessors", "MMIO and port accessors",
            Prefixes:
                [],
            Anywhere:
                [],
            Pattern: @"readb$|readw$|readl$|readq$|writeb$|writew$|writel$|writeq$|logic_in|logic_out"),
        new("filesystems", "inode and dentry reference drops",
            Prefixes:
                ["iput"],
            Anywhere:
                ["dput"],
            Pattern: @"^iput$|^iput_final$|^ihold$|drop_nlink|fast_dput|dput"),
        new("architecture entry, faults and thunks", "x86 thunks, arm64 exception entry and fault handlers, fault injection, tracepoint glue",
            Prefixes:
                ["__x86_indirect_thunk", "__x86_return_thunk"],
            Anywhere:
                ["_indirect_thunk_", "asm_call_irq_on_stack", "__switch_to", "do_DataAbort", "should_fail", "__do_kernel_fault", "do_mem_abort",
                    "el1_abort", "el1_da", "el1h_64_sync", "el1_sync", "do_tag_check_fault", "do_bad_area", "do_translation_fault", "perf_trace"],
            Pattern: @"perf_trace|_indirect_thunk_|do_(?:kernel|translation)_fault|do_mem_abort|el1_abort|el1h_64_sync(?:_handler)?"),
        new("crypto", "block-cipher primitives",
            Prefixes:
                [],
            Anywhere:
                ["aes_encrypt", "aes_expandkey"],
            Pattern: ""),
    ];

    /// <summary>Every group's name prefixes.</summary>
    public static readonly IReadOnlyList<string> NotGuilty = NeverGuiltyFrames.SelectMany(g => g.Prefixes).ToArray();

    /// <summary>Every group's substrings recognised anywhere in a name.</summary>
    public static readonly IReadOnlyList<string> NotGuiltyAnywhere = NeverGuiltyFrames.SelectMany(g => g.Anywhere).ToArray();

    /// <summary>Helpers recognised only by their whole name (a prefix would take their relatives: complete_all...).</summary>
    public static readonly IReadOnlyList<string> NotGuiltyExactly = NeverGuiltyFrames.SelectMany(g => g.Exactly ?? []).ToArray();

    static readonly Regex NeverGuiltyPattern = new(string.Join('|', NeverGuiltyFrames.Where(g => g.Pattern.Length > 0).Select(g => g.Pattern)),
        RegexOptions.CultureInvariant);

    static bool Uninteresting(string symbol)
    {
        // The same frames recur across a log's reports: their verdicts are kept (up to a bound, for hostile logs).
        if (UninterestingSeen.TryGetValue(symbol, out bool known)) return known;
        bool result = NotGuiltyExactly.Contains(Function(symbol)) || NotGuilty.Any(p => symbol.StartsWith(p, StringComparison.Ordinal))
            || NotGuiltyAnywhere.Any(p => symbol.Contains(p, StringComparison.Ordinal)) || NeverGuiltyPattern.IsMatch(symbol);
        if (UninterestingSeen.Count < 100_000) UninterestingSeen.TryAdd(symbol, result);
        return result;
    }

    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> UninterestingSeen = new(StringComparer.Ordinal);


    [GeneratedRegex(@"^(?:Allocated by task|Freed by task|The buggy address|Memory state around|Last potentially related|Second to last potentially|Modules " +
        @"linked in:|Kernel panic - not syncing|Dumping ftrace|---\[ end trace|irq event stamp:|Showing all locks held|INFO: lockdep is turned off|other " +
        @"info that might help us debug this:|Uninit was (?:created|stored)|Local variable|Bytes .* of .* are uninitialized|Memory access of size)")]
    private static partial Regex TraceEnd();


    [GeneratedRegex(@"^(Read|Write) (?:of size \d+|at addr)")]
    private static partial Regex KasanAccess();

    /// <summary>"KASAN: KIND Read|Write in FUNC": the access direction comes from the "Read of size N at addr" line.</summary>
    static string KasanTitle(List<string> lines, int start, int end, string kind, string? function, bool noFunction, string header)
    {
        if (header.Contains("KASAN: double-free", StringComparison.Ordinal) || header.Contains("KASAN: invalid-free", StringComparison.Ordinal))
            return $"KASAN: invalid-free in {function ?? "corrupted"}";
        string? access = null;
        for (int i = start; i <= end && i < start + 10 && access == null; i++)
            if (KasanAccess().Match(lines[i]) is { Success: true } m) access = m.Groups[1].Value;
        if (noFunction) return access == null ? $"KASAN: {kind}" : $"KASAN: {kind} {access}";
        // Without the access line the title is the header itself ("... in func.part.3 at addr ADDR"), sanitized.
        return access == null ? Sanitize("KASAN: " + header[(header.IndexOf("KASAN: ", StringComparison.Ordinal) + 7)..])
            : $"KASAN: {kind} {access} in {function ?? "corrupted"}";
    }

    /// <summary>
    /// Alternative titles under which the same bug is known: the title with the frame as the log prints it when the
    /// title shortens it ("... in __x64_sys_rmdir"), and the kind of failure in the function ("stall in FUNC",
    /// "hang in FUNC", "bad-access in FUNC", "invalid-free in FUNC", "stack-overflow in FUNC"), for both names.
    /// </summary>
    public static IEnumerable<string> AltTitles(CrashReport report)
    {
        string frame = report.Frame ?? "corrupted";
        bool named = report.Title.EndsWith(" in " + frame, StringComparison.Ordinal);
        if (!named) yield break;
        // The raw name and what dropping one wrapper prefix leaves of it (__se_sys_mremap, sys_mremap for "mremap").
        var names = new List<string>();
        if (report.RawFrame is { } raw)
        {
            names.Add(raw);
            foreach (var prefix in WrapperPrefixes)
                if (raw.StartsWith(prefix, StringComparison.Ordinal) && raw.Length > prefix.Length) names.Add(raw[prefix.Length..]);
        }
        names = names.Where(n => n != frame).Distinct().ToList();
        foreach (var name in names) yield return report.Title[..^frame.Length] + name;
        string type = CrashTypes.Of(report.Title);
        string title = report.Title;
        string? kind = title.StartsWith("INFO: rcu detected stall", StringComparison.Ordinal) || title.StartsWith("BUG: soft lockup", StringComparison.Ordinal)
            ? "stall"
            : type == "HANG" ? "hang"
            : title.StartsWith("kernel panic: corrupted stack end", StringComparison.Ordinal) || title.StartsWith("BUG: stack guard page was hit",
                StringComparison.Ordinal) ? "stack-overflow"
            : type.EndsWith("INVALID-FREE", StringComparison.Ordinal) ? "invalid-free"
            : type is "MEMORY_SAFETY_BUG" or "NULL-POINTER-DEREFERENCE" or "DoS" or "MEMORY_SAFETY_UBSAN" || type.StartsWith("KASAN", StringComparison.Ordinal)
                || type.StartsWith("KMSAN", StringComparison.Ordinal) || type.StartsWith("KFENCE", StringComparison.Ordinal) ? "bad-access" : null;
        if (kind == null) yield break;
        yield return $"{kind} in {frame}";
        foreach (var name in names) yield return $"{kind} in {name}";
    }
}
