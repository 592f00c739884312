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
            "kacpi_hotplug/246 is trying to acquire lock:", " (kacpid){+.+.+.}, at: [<ffffffff8105bbd0>] flush_workqueue+0x0/0xb0");
        Assert.Equal("possible deadlock in flush_workqueue", r!.Title);
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

    [Theory]
    [InlineData("SyS_pause", "pause")]
    [InlineData("__x64_sys_ioctl", "ioctl")]
    [InlineData("tcp_close.cold", "tcp_close")]
    [InlineData("sys_", "sys_")]
    [InlineData("system_call", "system_call")]
    public void Function_DropsSuffixesAndSyscallPrefixes(string symbol, string expected) => Assert.Equal(expected, ConsoleLog.Function(symbol));
}
