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
        var invalid = First("BUG: KASAN: double-free or invalid-free in kfree+0x10/0x20", "Call Trace:", " dump_stack+0x1/0x2", " kfree+0x10/0x20",
            " sel_free+0x3/0x40");
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
        // The old bracketed form names the lock site the sentence introduces, as printed: a helper (workqueue flushing)
        // too, as syzkaller's pattern for it does (OldLockdepHeader_TakesTheLockSiteAsPrinted).
        Assert.Equal("possible deadlock in flush_workqueue", First("[ INFO: possible circular locking dependency detected ]",
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
        Assert.Equal("BUG: memory leak suspected", First("BUG: memory leak suspected", "  backtrace:",
            "    [<ffffffff84e5d19b>] ipv6_setsockopt+0x9b/0x140")!.Title);
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
        Assert.Equal("WARNING in sock_release", First("WARNING: CPU: 0 PID: 1 at net/l2tp/l2tp_ppp.c:1 pppol2tp_release+0x34d/0x560", "Call Trace:",
            " sock_release+0x8d/0x1e0")!.Title);
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
    [InlineData("Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: br_dev_xmit+0x12ec/0x1550",
        "kernel panic: stack is corrupted in br_dev_xmit")]
    [InlineData("Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
        "kernel panic: VFS: Unable to mount root fs on unknown-block(NUM,NUM)")]
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
        var reboot = Assert.Single(ConsoleLog.Parse(["[  500.720639] EFER = 0x0000000000000d01", "SeaBIOS (version 1.8.2-20181014_101610-google)",
            "Booting the kernel."]));
        Assert.Equal("unexpected kernel reboot", reboot.Title);
        Assert.Equal("REBOOT", CrashTypes.Of(reboot.Title));
        Assert.Empty(ConsoleLog.Parse(["# qemu-system-x86_64 -kernel bzImage", "\u001bcSeaBIOS (version 1.16.2-debian-1.16.2-1)",
            "[    0.000000] Linux version 6.1.0"]));
    }

    [Fact]
    public void WarningInCoreLibraryFile_BlamesItsCaller_WarningElsewhere_NamesItself()
    {
        string[] Trace(string header, string rip) => [header, $"RIP: 0010:{rip}", "Call Trace:", " <TASK>", " kvm_put_kvm+0x8df/0xb80",
            " kvm_vm_release+0x42/0x60", " </TASK>"];
        // kernel/rcu/ checks how its caller uses SRCU: the report is about kvm_put_kvm.
        Assert.Equal("WARNING in kvm_put_kvm", First(Trace("WARNING: CPU: 0 PID: 1 at kernel/rcu/srcutree.c:653 cleanup_srcu_struct+0x37c/0x520",
            "cleanup_srcu_struct+0x37c/0x520"))!.Title);
        // The 6.x header names the file first.
        Assert.Equal("WARNING in kvm_put_kvm", First(Trace("WARNING: fs/buffer.c:1183 at mark_buffer_dirty+0x299/0x3f0, CPU#1: syz/1",
            "mark_buffer_dirty+0x299/0x3f0"))!.Title);
        // A driver's or filesystem's own WARN_ON names the function it sits in.
        Assert.Equal("WARNING in jfs_flush_journal", First(Trace("WARNING: CPU: 0 PID: 1 at fs/jfs/jfs_logmgr.c:1550 jfs_flush_journal+0x1/0x2",
            "jfs_flush_journal+0x1/0x2"))!.Title);
        // An inline helper in a header is already its caller's code.
        Assert.Equal("WARNING in strp_data_ready", First(Trace("WARNING: CPU: 0 PID: 1 at ./include/net/sock.h:1508 strp_data_ready+0x2b7/0x390",
            "strp_data_ready+0x2b7/0x390"))!.Title);
    }

    [Fact]
    public void BadPageState_NamedAfterTheAllocationStack_CorruptedWithoutOne()
    {
        string[] head = ["BUG: Bad page state in process syz  pfn:7deea", "page dumped because: PAGE_FLAGS_CHECK_AT_FREE flag(s) set"];
        string[] owner = ["page_owner tracks the page as allocated",
            "page last allocated via order 0, migratetype Unmovable, gfp_mask 0x40c40(GFP_NOFS|__GFP_COMP)",
            " post_alloc_hook+0x1f3/0x230", " __alloc_pages_noprof+0x256/0x6c0", " pagecache_get_page+0x2c/0x200", " __get_metapage+0x2b4/0x1050",
            " diNewExt+0xacf/0x37e0", "page last free pid 5083 tgid 5083 stack trace:", " free_unref_page+0xd19/0xea0"];
        string[] trace = ["Call Trace:", " <TASK>", " bad_page+0x1/0x2", " free_unref_folios+0x1/0x2", " folio_add_lru+0x1/0x2", " shmem_write_begin+0x1/0x2",
            " </TASK>"];
        var named = First([.. head, .. owner, .. trace])!;
        Assert.Equal("BUG: Bad page state in __get_metapage", named.Title);
        Assert.False(named.Corrupted);
        var unknown = First([.. head, .. trace])!;
        Assert.Equal("BUG: Bad page state in corrupted", unknown.Title);
        Assert.Equal("no guilty function", unknown.CorruptedReason);
    }

    [Fact]
    public void AnnouncedStackWithoutFrames_IsCorrupted_UnlessTheRipNamesTheReport()
    {
        // KASAN's "Call Trace:" followed by nothing but the next section: the stack was lost.
        var lost = First("BUG: KASAN: use-after-free in __unwind_start+0x2d/0x330", "Write of size 88 at addr ffff8801d818fe98 by task loop0/4078",
            "Call Trace:", " ? kthread+0x37a/0x440", " ? ret_from_fork+0x24/0x30", "", "Allocated by task 0:", "(stack is not available)")!;
        Assert.Equal("KASAN: use-after-free Write in __unwind_start", lost.Title);
        Assert.Equal("a stack without frames", lost.CorruptedReason);
        // The same KASAN report with a reliable frame is whole.
        Assert.False(First("BUG: KASAN: use-after-free in __unwind_start+0x2d/0x330", "Write of size 88 at addr ffff8801d818fe98 by task loop0/4078",
            "Call Trace:", " unwind_start+0x1/0x2", " kthread+0x37a/0x440", "", "Allocated by task 0:", "(stack is not available)")!.Corrupted);
        // A BUG with the CPU's own RIP and only "?" frames (the seed's early-boot trace) is still whole.
        Assert.False(First("kernel BUG at arch/x86/kernel/jump_label.c:73!", "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
            "RIP: 0010:__jump_label_patch+0x190/0x1a0", "Call Trace:", " <TASK>", " ? swap_writepage+0x1c/0x60", " ? init_zswap+0x19b/0x233",
                " </TASK>")!.Corrupted);
    }

    [Fact]
    public void UntimedLinesInATimedReport_AreOtherProgramsOutput()
    {
        string[] log = ["[  251.257471] WARNING: CPU: 0 PID: 5944 at net/strparser/strparser.c:10 strp_data_ready+0x2b7/0x390",
            "[  251.290229] Call Trace:", "2017/12/25 06:06:21 executing program 3:", "socketpair$inet6_udp(0xa, 0x2, 0x0, &(0x7f0000c18000))",
            "[  251.300000]  strp_data_ready+0x2b7/0x390", "[  251.300001]  sock_def_readable+0x1/0x2"];
        var r = First(log)!;
        Assert.False(r.Corrupted);
        Assert.DoesNotContain(r.Lines, l => l.Contains("executing program", StringComparison.Ordinal));
    }

    [Fact]
    public void RustPanic_IsOneReport_NamedAfterTheRustFunctionThatPanicked()
    {
        var reports = ConsoleLog.Parse([
            "[   23.717039][  T298] rust_kernel: panicked at drivers/android/binder/node.rs:877:13:",
            "[   23.717039][  T298] attempt to subtract with overflow",
            "[   23.745283][  T298] ------------[ cut here ]------------",
            "[   23.771620][  T298] kernel BUG at rust/helpers/bug.c:7!",
            "[   23.772028][  T298] Oops: invalid opcode: 0000 [#1] PREEMPT SMP KASAN PTI",
            "[   23.829979][  T298] RIP: 0010:rust_helper_BUG+0x8/0x10",
            "[   24.057562][  T298] Call Trace:",
            "[   24.063751][  T298]  _RNvCscSpY9Juk0HT_7___rustc17rust_begin_unwind+0x15b/0x160",
            "[   24.063752][  T298]  _RNvNtNtCs9jEwPDbx20M_4core9panicking11panic_const24panic_const_sub_overflow+0xb2/0xc0",
            "[   24.063753][  T298]  _RNvMs3_NtCshgDM7dBCdno_11rust_binder7processNtB5_7Process10update_ref+0x17e5/0x1860",
            "[   24.063754][  T298]  __x64_sys_ioctl+0x7f/0xa0",
        ]);
        var r = Assert.Single(reports);
        Assert.Equal("attempt to subtract with overflow in <rust_binder::process::Process>::update_ref", r.Title);
        Assert.False(r.Corrupted);
        // Without the Rust panic line, the same BUG is titled by its RIP as any BUG is.
        Assert.Equal("kernel BUG in rust_helper_BUG", First("kernel BUG at rust/helpers/bug.c:7!", "RIP: 0010:rust_helper_BUG+0x8/0x10",
            "Call Trace:", " __x64_sys_ioctl+0x7f/0xa0")!.Title);
    }

    [Fact]
    public void SanitizerReportCutByTheSameTasksNextReport_IsCorrupted()
    {
        string[] kmsan = ["[ 1307.507727][    T0] =====================================================",
            "[ 1307.514750][    T0] BUG: KMSAN: uninit-value in __perf_event_task_sched_in+0x2b6/0xca0",
            "[ 1307.514815][    T0]  __perf_event_task_sched_in+0x2b6/0xca0", "[ 1307.514872][    T0]  finish_task_switch+0x72c/0xad0"];
        string[] warning = ["[ 1307.515910][    T0] WARNING: CPU: 1 PID: 0 at lib/stackdepot.c:293 stack_depot_fetch+0x2f/0x60",
            "[ 1307.516553][    T0] Call Trace:", "[ 1307.516583][    T0]  kmsan_print_origin+0x41/0x2e0"];
        string[] close = ["[ 1307.518663][    T0] ====================================================="];
        var cut = ConsoleLog.Parse([.. kmsan, .. warning, .. close])[0];
        Assert.Equal("interrupted by another report", cut.CorruptedReason);
        // Closed before the next report: whole.
        Assert.False(ConsoleLog.Parse([.. kmsan, .. close, .. warning])[0].Corrupted);
    }

    /// <summary>
    /// Report formats from syzkaller's pkg/report that name no function: each header gives its fixed title and type; the
    /// near misses beside them (an ALSA "fatal error", a function named "..._panic:") are not reports.
    /// </summary>
    [Theory]
    [InlineData("[  740.950561] trusty: panic (caller 0xffffffffe000fbd0): DEBUG ASSERT FAILED at (trusty/lib/x.h:63): list_in_list(&n)",
        "trusty: ASSERT FAILED: list_in_list(&n)", "DoS")]
    [InlineData("trusty: panic (caller 0x1000): watchdog bark", "trusty: panic: watchdog bark", "DoS")]
    [InlineData("SYZFAIL: SIGBUS", "SYZFAIL: SIGBUS", "SYZ_FAILURE")]
    // Numbers in titles become NUM, as in every title (run-to-run noise).
    [InlineData("SYZFATAL: executor failed 11 times: executor 0: exit status 67", "SYZFATAL: executor failed NUM times: executor NUM: exit status NUM",
        "SYZ_FAILURE")]
    [InlineData("fatal error: out of memory", "go runtime error", "DoS")]
    [InlineData("panic: runtime error: index out of range [3] with length 3", "panic: runtime error: index out of range [NUM] with length NUM", "DoS")]
    [InlineData("[  123.456789] unregister_netdevice: waiting for lo to become free. Usage count = 2",
        "unregister_netdevice: waiting for DEV to become free", "DoS")]
    [InlineData("VFS: Busy inodes after unmount of loop0. Self-destruct in 5 seconds.  Have a nice day...",
        "VFS: Busy inodes after unmount (use-after-free)", "DoS")]
    [InlineData("VFS: Close: file count is 0", "VFS: Close: file count is zero (use-after-free)", "DoS")]
    [InlineData("BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 141s!", "BUG: workqueue lockup", "")]
    public void FixedTitleReports_FromSyzkallersFormats(string line, string title, string type)
    {
        var report = First(line);
        Assert.NotNull(report);
        Assert.Equal(title, report.Title);
        Assert.Equal(type, CrashTypes.Of(report.Title));
        Assert.False(report.Corrupted, report.CorruptedReason);
    }

    [Theory]
    [InlineData("fatal error: cannot create timer")]
    [InlineData("ALSA: fatal error: card 0 gone")]
    [InlineData("ALSA fatal error: underrun")]
    [InlineData("skb_over_panic: text:ffffffff81000000 len:4 put:4")]
    public void NearMisses_AreNotReports(string line) => Assert.Null(First(line));

    /// <summary>
    /// Frames syzkaller never blames (page-cache readers, generic crypto under KMSAN): the title names the caller; without
    /// them in the trace, the first frame is named.
    /// </summary>
    [Fact]
    public void FramesThatAreNeverGuilty_ArePassedOver()
    {
        string[] Hung(string first) =>
        [
            "INFO: task syz-executor.0:4242 blocked for more than 143 seconds.",
            "Call Trace:",
            " __schedule+0x10/0x20",
            " schedule+0x10/0x20",
            $" {first}+0x10/0x20",
            " read_cache_folio+0x10/0x20",
            " ext4_readdir+0x10/0x20",
        ];
        Assert.Equal("INFO: task hung in read_cache_folio", First(Hung("do_read_cache_folio"))!.Title);
        Assert.Equal("INFO: task hung in filemap_fault", First(Hung("filemap_fault"))!.Title);
        string[] Kmsan(string first) =>
        [
            "BUG: KMSAN: uninit-value in " + first + "+0x10/0x20",
            " " + first + "+0x10/0x20",
            " crypto_cipher_encrypt_one+0x10/0x20",
            " alg_setkey+0x10/0x20",
            " __sys_setsockopt+0x10/0x20",
        ];
        Assert.Equal("KMSAN: uninit-value in alg_setkey", First(Kmsan("aesti_encrypt"))!.Title);
        Assert.Equal("KMSAN: uninit-value in alg_setkey_part", First(Kmsan("alg_setkey_part"))!.Title);
    }

    /// <summary>A device's own WARNING line is a report (syzkaller reads headers anywhere in a line); known notices are not.</summary>
    [Fact]
    public void DeviceWarning_IsAReport_KnownNoticesAreNot()
    {
        var report = First("usb 5-1: config 0 descriptor??", "usb 5-1: WARNING: ath10k USB support is incomplete, don't expect anything to work!");
        Assert.Equal("WARNING: ath10k USB support is incomplete, don't expect anything to work!", report!.Title);
        Assert.Equal("WARNING", CrashTypes.Of(report.Title));
        Assert.Null(First("XFS (loop0): WARNING: Reset corrupted AGFL on AG 0. 4 blocks leaked. Please unmount and run xfs_repair."));
        Assert.Null(First("EXT4-fs (loop1): WARNING: mounting fs with errors, running e2fsck is recommended"));
        Assert.Null(First("[   10.1] WARNING: Unprivileged eBPF is enabled with eIBRS on, data leaks possible via Spectre v2 BHB attacks!"));
    }

    /// <summary>
    /// Old bracketed lockdep headers are titled by the lock site exactly as printed (syzkaller reads it with the report's
    /// own pattern, `at: PC +FUNC`: any number of spaces, no frame skipped); the 5.x form passes over helpers.
    /// </summary>
    [Fact]
    public void OldLockdepHeader_TakesTheLockSiteAsPrinted()
    {
        string[] Old(string at) =>
        [
            "[ INFO: possible circular locking dependency detected ]",
            "2.6.32-rc6 #1",
            "-------------------------------------------------------",
            "kacpi_hotplug/246 is trying to acquire lock:",
            $" (kacpid){{+.+.+.}}, at: {at}",
            "",
            "but task is already holding lock:",
        ];
        Assert.Equal("possible deadlock in flush_workqueue", First(Old("[<ffffffff8105bbd0>] flush_workqueue+0x0/0xb0"))!.Title);
        Assert.Equal("possible deadlock in serial8250_console_write", First(Old("[<c036a6dc>]     serial8250_console_write+0x108/0x134"))!.Title);
        var modern = First(
            "WARNING: possible circular locking dependency detected",
            "syz-executor/1 is trying to acquire lock:",
            "ffff888012345678 ((wq_completion)events){+.+.}-{0:0}, at: flush_workqueue+0x10/0x20",
            "but task is already holding lock:",
            "ffff888012345679 (&mm->mmap_lock){++++}-{3:3}, at: do_madvise+0x10/0x20");
        Assert.NotEqual("possible deadlock in flush_workqueue", modern!.Title);
    }
}
