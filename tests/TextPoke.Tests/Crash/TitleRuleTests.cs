using TextPoke.Crash;

namespace TextPoke.Tests.Crash;

/// <summary>Title rules of the console-log parser, each with a log that gets its title and one that must not.</summary>
public class TitleRuleTests
{
    static CrashReport? First(params string[] lines) => ConsoleLog.Parse(lines).FirstOrDefault();

    [Fact]
    public void Kasan_TakesTheAccessDirectionFromTheSizeLine()
    {
        var read = First("BUG: KASAN: use-after-free in tcp_close+0x10/0x200", "Read of size 8 at addr ffff888012345678 by task a/1",
            "Call Trace:", " dump_stack+0x10/0x20", " tcp_close+0x10/0x200");
        Assert.Equal("KASAN: use-after-free Read in tcp_close", read!.Title);
        Assert.Equal("KASAN-USE-AFTER-FREE-READ", CrashTypes.Of(read.Title));
        var write = First("BUG: KASAN: use-after-free in tcp_close+0x10/0x200", "Write of size 4 at addr ffff888012345678 by task a/1",
            "Call Trace:", " tcp_close+0x10/0x200");
        Assert.Equal("KASAN: use-after-free Write in tcp_close", write!.Title);
        var invalid = First("BUG: KASAN: double-free or invalid-free in kfree+0x10/0x20", "Call Trace:", " dump_stack+0x1/0x2", " kfree+0x10/0x20", " sel_free+0x3/0x40");
        Assert.Equal("KASAN: invalid-free in sel_free", invalid!.Title);
    }

    [Fact]
    public void Kasan_InAHelperBlamesTheFirstInterestingCaller()
    {
        var r = First("BUG: KASAN: slab-out-of-bounds in memcpy+0x1/0x30", "Read of size 8 at addr ffff888012345678 by task a/1",
            "Call Trace:", " dump_stack+0x1/0x2", " kasan_report+0x1/0x2", " memcpy+0x1/0x30", " sg_remove_request+0x5/0x90");
        Assert.Equal("KASAN: slab-out-of-bounds Read in sg_remove_request", r!.Title);
    }

    [Fact]
    public void OldLockdepHeader_BlamesTheLockSite()
    {
        var r = First("=======================================================", "[ INFO: possible circular locking dependency detected ]",
            "kacpi_hotplug/246 is trying to acquire lock:", " (kacpid){+.+.+.}, at: [<ffffffff8105bbd0>] acpi_hotplug_work_fn+0x0/0xb0");
        Assert.Equal("possible deadlock in acpi_hotplug_work_fn", r!.Title);
        // A lock site in a helper (workqueue flushing, lock primitives) is passed over for the next one.
        Assert.Equal("possible deadlock in acpi_hotplug_work_fn", First("[ INFO: possible circular locking dependency detected ]",
            "kacpi_hotplug/246 is trying to acquire lock:", " (kacpid){+.+.+.}, at: [<ffffffff8105bbd0>] flush_workqueue+0x0/0xb0",
            "but task is already holding lock:", " (&work){+.+.+.}, at: [<ffffffff8105bbd0>] acpi_hotplug_work_fn+0x10/0xb0")!.Title);
        Assert.Equal("LOCKDEP", CrashTypes.Of(r.Title));
        Assert.Null(First("[ INFO: possible circular locking dependency ]"));
    }

    [Fact]
    public void OldFrameAndRipFormats_GiveTheFunction()
    {
        var r = First("divide error: 0000 [#1] SMP KASAN",
            "RIP: 0010:[<ffffffff8575b41c>]  [<ffffffff8575b41c>] snd_hrtimer_callback+0x1bc/0x3c0",
            "Call Trace:", " [<ffffffff81234567>] __hrtimer_run_queues+0x1/0x2", " [<ffffffff81234568>] hrtimer_interrupt+0x1/0x2");
        Assert.Equal("divide error in snd_hrtimer_callback", r!.Title);
        Assert.Equal(2, r.Frames.Count);
        Assert.False(r.Corrupted);
    }

    [Fact]
    public void UnknownGuiltyFunction_IsCalledCorrupted()
    {
        var r = First("kernel BUG at mm/slub.c:100!");
        Assert.Equal("kernel BUG in corrupted", r!.Title);
        Assert.True(r.Corrupted);
    }

    [Fact]
    public void MemoryLeak_BlamesTheFirstCallerPastTheAllocators()
    {
        var r = First("2018/01/09 14:28:48 BUG: memory leak", "unreferenced object 0xffff880039a55260 (size 64):", "  backtrace:",
            "    [<ffffffff848a2f5f>] sock_kmalloc+0x7f/0xc0 net/core/sock.c:1774",
            "    [<ffffffff84e5bea0>] do_ipv6_setsockopt.isra.7+0x15d0/0x2830 net/ipv6/ipv6_sockglue.c:483",
            "    [<ffffffff84e5d19b>] ipv6_setsockopt+0x9b/0x140 net/ipv6/ipv6_sockglue.c:885");
        Assert.Equal("memory leak in do_ipv6_setsockopt", r!.Title);
        Assert.Equal("LEAK", CrashTypes.Of(r.Title));
        Assert.Equal(3, r.Frames.Count);
        // Only kmemleak's exact header is a leak report.
        Assert.Equal("BUG: memory leak suspected", First("BUG: memory leak suspected", "  backtrace:", "    [<ffffffff84e5d19b>] ipv6_setsockopt+0x9b/0x140")!.Title);
    }

    [Fact]
    public void DieBanner_AfterAPageFaultHeader_StaysInItsReport()
    {
        var reports = ConsoleLog.Parse(["BUG: unable to handle kernel NULL pointer dereference at 0000000000000286", "IP: 0x286",
            "Oops: 0010 [#1] SMP KASAN", "RIP: 0010:0x286", "Call Trace:", " process_one_work+0xbf3/0x1bc0", " worker_thread+0x223/0x1860",
            "---[ end trace 05ef833e13705a0a ]---"]);
        var r = Assert.Single(reports);
        Assert.Equal("BUG: unable to handle kernel NULL pointer dereference in process_one_work", r.Title);
        // A banner after the previous report's end is a report of its own.
        Assert.Equal(2, ConsoleLog.Parse(["kernel BUG at mm/slub.c:1!", "---[ end trace 1 ]---", "Oops: 0000 [#2] SMP"]).Count);
    }

    [Fact]
    public void WarningFromAReportingHelper_IsTitledByKind_AndBlamesTheCallerPastTheTrap()
    {
        string[] log = ["WARNING: CPU: 0 PID: 1 at lib/debugobjects.c:291 debug_print_object+0x166/0x220", "Kernel panic - not syncing: panic_on_warn set ...",
            "Call Trace:", " dump_stack+0x194/0x257", " panic+0x1e4/0x41c", " ? debug_print_object+0x166/0x220", " __warn+0x1dc/0x200",
            " report_bug+0x211/0x2d0", " fixup_bug.part.11+0x37/0x80", " do_error_trap+0x2d7/0x3e0", " do_invalid_op+0x1b/0x20", " invalid_op+0x22/0x40",
            "RIP: 0010:debug_print_object+0x166/0x220", "RSP: 0018:ffff8801ca577540 EFLAGS: 00010246",
            " debug_object_activate+0x49b/0x730", " __call_rcu.constprop.67+0xf2/0xef0", " call_rcu_sched+0x12/0x20", " pppol2tp_release+0x34d/0x560"];
        var r = First(log);
        Assert.Equal("WARNING: ODEBUG bug in pppol2tp_release", r!.Title);
        Assert.Equal(13, r.Frames.Count);
        // A WARNING from an ordinary function keeps the plain title.
        Assert.Equal("WARNING in pppol2tp_release", First("WARNING: CPU: 0 PID: 1 at net/l2tp/l2tp_ppp.c:1 pppol2tp_release+0x34d/0x560",
            "RIP: 0010:pppol2tp_release+0x34d/0x560", "Call Trace:", " sock_release+0x8d/0x1e0")!.Title);
        // Without a RIP line the trace names it: the code that ran into the WARN, not the WARN's own function.
        Assert.Equal("WARNING in sock_release", First("WARNING: CPU: 0 PID: 1 at net/l2tp/l2tp_ppp.c:1 pppol2tp_release+0x34d/0x560", "Call Trace:", " sock_release+0x8d/0x1e0")!.Title);
    }

    [Fact]
    public void RcuStall_BlamesTheInterruptedTask_NotTheStallReporter()
    {
        var r = First("rcu: INFO: rcu_sched self-detected stall on CPU", "Call Trace:", " <IRQ>", " sched_show_task+0x1/0x2",
            " rcu_check_callbacks+0x1/0x2", " </IRQ>", "RIP: 0010:lock_release+0xa2/0x9f0", " _raw_spin_unlock+0x1/0x2", " snd_seq_write+0x472/0x8d0",
            " vfs_write+0x1/0x2", " ksys_write+0x1/0x2");
        // The stalled work is the frame just above the first dispatch point (vfs_write), in the interrupted task.
        Assert.Equal("INFO: rcu detected stall in snd_seq_write", r!.Title);
        // A syscall keeps its own symbol without the wrapper prefix (__x64_sys_pause -> sys_pause).
        Assert.Equal("BUG: soft lockup in sys_pause", First("watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [syz:1]", "RIP: 0010:native_safe_halt+0x1/0x2",
            "Call Trace:", " __x64_sys_pause+0x1/0x2", " do_syscall_64+0x1/0x2")!.Title);
        // No dispatch point: the stalled work cannot be named.
        var lost = First("rcu: INFO: rcu_sched self-detected stall on CPU", "Call Trace:", " sched_show_task+0x1/0x2", " snd_seq_write+0x472/0x8d0")!;
        Assert.Equal("INFO: rcu detected stall in corrupted", lost.Title);
        Assert.True(lost.Corrupted);
    }

    [Theory]
    [InlineData("Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b", "kernel panic: Attempted to kill init!")]
    [InlineData("Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: br_dev_xmit+0x12ec/0x1550", "kernel panic: stack is corrupted in br_dev_xmit")]
    [InlineData("Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)", "kernel panic: VFS: Unable to mount root fs on unknown-block(NUM,NUM)")]
    public void PanicTitles(string line, string title) => Assert.Equal(title, First(line)!.Title);

    [Theory]
    [InlineData("SyS_pause", "pause")]
    [InlineData("__x64_sys_ioctl", "sys_ioctl")]
    [InlineData("__do_sys_ioctl", "ioctl")]
    [InlineData("tcp_close.cold", "tcp_close")]
    [InlineData("sys_", "sys_")]
    [InlineData("system_call", "system_call")]
    public void Function_DropsSuffixesAndSyscallPrefixes(string symbol, string expected) => Assert.Equal(expected, ConsoleLog.Function(symbol));

    [Fact]
    public void FirmwareBannerAfterOutput_IsAnUnexpectedReboot_ButNotAtTheStartOfABoot()
    {
        var reboot = Assert.Single(ConsoleLog.Parse(["[  500.720639] EFER = 0x0000000000000d01", "SeaBIOS (version 1.8.2-20181014_101610-google)", "Booting the kernel."]));
        Assert.Equal("unexpected kernel reboot", reboot.Title);
        Assert.Equal("REBOOT", CrashTypes.Of(reboot.Title));
        Assert.Empty(ConsoleLog.Parse(["# qemu-system-x86_64 -kernel bzImage", "\u001bcSeaBIOS (version 1.16.2-debian-1.16.2-1)", "[    0.000000] Linux version 6.1.0"]));
    }
}
