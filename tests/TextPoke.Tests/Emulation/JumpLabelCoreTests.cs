using TextPoke.Checks;
using TextPoke.Emulation;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tables;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Emulation;

/// <summary>The model of kernel/jump_label.c and arch/x86/kernel/jump_label.c, per era, on assembly fixtures.</summary>
public sealed class JumpLabelCoreTests : IDisposable
{
    readonly List<KernelImage> _open = [];

    public void Dispose() { foreach (var i in _open) i.Dispose(); }

    JumpLabelCore Boot(string fixture, bool? modern = null)
    {
        var image = KernelImage.Open(Fixtures.Build(fixture));
        _open.Add(image);
        var symbols = ImageSymbols.Load(image, lookBeside: false);
        return JumpLabelCore.Init(image, symbols, JumpLabelCheck.Run(image, symbols), BugTable.Read(image, symbols), modern);
    }

    static List<KernelEvent> Of(JumpLabelCore core, EventKind kind) => core.Events.Where(e => e.Kind == kind).ToList();

    [Fact]
    public void Init_SortsByKeyThenAddress_AndPatchesInThatOrder()
    {
        var core = Boot("jump-clean");
        var key = core.FindKey("frontswap_enabled_key")!;
        core.Enable(key);
        var patched = Of(core, EventKind.Patched);
        Assert.Equal(["swap_writepage+0x1/0x23", "swap_writepage+0x6/0x23", "init_zswap+0x0/0x6"], patched.Select(p => p.SiteLocation));
        Assert.Equal("66 90 -> eb 19 (JMP)", patched[0].Detail);
        Assert.Equal(1, key.Enabled);
        Assert.False(core.Halted);
    }

    [Fact]
    public void ReferenceCounts_OnlyTheFirstIncAndTheLastDecPatch()
    {
        var core = Boot("jump-clean");
        var key = core.FindKey("frontswap_enabled_key")!;
        core.SlowInc(key);
        core.SlowInc(key);
        Assert.Equal(2, key.Enabled);
        core.SlowDec(key);
        Assert.Equal(3, Of(core, EventKind.Patched).Count);
        core.SlowDec(key);
        Assert.Equal(0, key.Enabled);
        var patched = Of(core, EventKind.Patched);
        Assert.Equal(6, patched.Count);
        Assert.Equal("eb 19 -> 66 90 (NOP)", patched[3].Detail);
        Assert.Empty(Of(core, EventKind.Warning));
    }

    [Fact]
    public void Warnings_EnableOrDisableWithAReferenceCount_AndTooManyDecrements()
    {
        var core = Boot("jump-clean", modern: true);
        var key = core.FindKey("frontswap_enabled_key")!;
        core.SlowInc(key);
        core.SlowInc(key);
        core.Enable(key);   // WARN_ON_ONCE(enabled != 1)
        core.Disable(key);  // WARN_ON_ONCE(enabled != 0)
        var warnings = Of(core, EventKind.Warning);
        Assert.Equal(2, warnings.Count);
        // No __bug_table in the fixture: the lines of Debian's 6.1.y source.
        Assert.Equal(["------------[ cut here ]------------", "WARNING: CPU: 0 PID: 1 at kernel/jump_label.c:200 static_key_enable_cpuslocked"],
            warnings[0].Lines);
        Assert.Equal("WARNING: CPU: 0 PID: 1 at kernel/jump_label.c:231 static_key_disable_cpuslocked", warnings[1].Lines[1]);
        core.SlowDec(key);
        core.SlowDec(key);
        core.SlowDec(key);  // one too many: static_key_dec_not_one WARN_ON_ONCE(v == 0)
        Assert.Equal("WARNING: CPU: 0 PID: 1 at kernel/jump_label.c:279 static_key_dec_not_one", Of(core, EventKind.Warning)[2].Lines[1]);
        Assert.Equal(0, key.Enabled);
    }

    [Fact]
    public void ClassicRefcount_NegativeCountWarnsOnTheSecondExtraDecrement()
    {
        var core = Boot("jump-clean", modern: false);
        var key = core.FindKey("frontswap_enabled_key")!;
        core.SlowDec(key);  // atomic_fetch_add_unless(0 -> -1): val 0, no WARN (the old kernel's quiet underflow)
        Assert.Equal(-1, key.Enabled);
        Assert.Empty(Of(core, EventKind.Warning));
        core.SlowDec(key);  // val -1 < 0: WARN "jump label: negative count!"
        var w = Assert.Single(Of(core, EventKind.Warning));
        Assert.Equal("jump label: negative count!", w.Lines[1]);
    }

    /// <summary>v5.10: enabling a key whose disabled site holds a JMP BUGs at line 47 in __jump_label_set_jump_code, v5.10's names.</summary>
    [Fact]
    public void Bug_V510Site_TheOldLineAndTheOldFunctionNames()
    {
        var core = Boot("jump-v5.10");
        core.Enable(core.FindKey("zswap_key")!);
        var bug = Assert.Single(Of(core, EventKind.Bug));
        Assert.Matches(@"^jump_label: Fatal kernel bug, unexpected op at swap_writepage\+0xb/0x18 \[[0-9a-f]{16}\] \(e9 02 00 00 00\) 47$", bug.Lines[0]);
        Assert.Contains("kernel BUG at arch/x86/kernel/jump_label.c:27!", bug.Lines);
        Assert.Equal("__jump_label_set_jump_code", bug.CallPath[^1]);
        Assert.DoesNotContain("__jump_label_patch", bug.CallPath);
    }

    [Fact]
    public void Bug_SeedSite_StopsAtTheFirstBugWithTheKernelsLines()
    {
        var core = Boot("jump-seed");
        core.Enable(core.FindKey("frontswap_enabled_key")!);
        Assert.True(core.Halted);
        var bug = Assert.Single(Of(core, EventKind.Bug));
        Assert.Equal(
        [
            "jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60 [ffffffff8100001c] (eb 1c 48 89 df != 66 90 0f 1f 00)) size:2 type:1",
            "------------[ cut here ]------------",
            "kernel BUG at arch/x86/kernel/jump_label.c:73!",
        ], bug.Lines);
        Assert.Equal(["static_key_enable", "static_key_enable_cpuslocked", "jump_label_update", "__jump_label_update", "arch_jump_label_transform_queue",
            "__jump_label_patch"], bug.CallPath);
        // Halted: later operations do nothing.
        core.Disable(core.FindKey("frontswap_enabled_key")!);
        Assert.Single(Of(core, EventKind.Bug));
    }

    [Fact]
    public void Bug_Reverse_DisablingAKeyWhoseJmpIsMissing_IsType0()
    {
        var core = Boot("jump-reverse");
        core.Disable(core.FindKey("cats_key")!);
        Assert.Equal("jump_label: Fatal kernel bug, unexpected op at do_cats+0x0/0xb [ffffffff81000000] (66 90 31 c0 c3 != eb 03 00 00 00)) size:2 type:0",
            Assert.Single(Of(core, EventKind.Bug)).Lines[0]);
    }

    [Fact]
    public void Bug_WrongLength_IsTheBugOnInArchJumpEntrySize()
    {
        var core = Boot("jump-neither");
        core.KeepGoing = true;
        core.Enable(core.FindKey("rx_key")!);
        var bugs = Of(core, EventKind.Bug);
        Assert.Equal(2, bugs.Count);
        Assert.Equal(["------------[ cut here ]------------", "kernel BUG at arch/x86/kernel/jump_label.c:25!"], bugs[1].Lines);
        Assert.Equal("arch_jump_entry_size", bugs[1].CallPath[^1]);
    }

    [Fact]
    public void OldEra_AbsoluteEntries_PrintTheLineOfTheExpectation()
    {
        var core = Boot("jump-absolute");
        core.Enable(core.FindKey("memalloc_socks_key")!);
        var bug = Assert.Single(Of(core, EventKind.Bug));
        Assert.Equal("jump_label: Fatal kernel bug, unexpected op at tcp_poll+0x5/0xc [ffffffff81000005] (e9 01 00 00 00) 68", bug.Lines[0]);
    }

    [Fact]
    public void InitText_IsPatchedDuringInitcalls_AndSkippedAfterBoot()
    {
        var during = Boot("jump-clean");
        during.Enable(during.FindKey("frontswap_enabled_key")!);
        Assert.Contains(Of(during, EventKind.Patched), p => p.SiteLocation!.StartsWith("init_zswap"));

        var after = Boot("jump-clean");
        after.FinishBoot();
        after.Enable(after.FindKey("frontswap_enabled_key")!);
        Assert.DoesNotContain(Of(after, EventKind.Patched), p => p.SiteLocation!.StartsWith("init_zswap"));
        Assert.Equal("init_zswap+0x0/0x6", Assert.Single(Of(after, EventKind.Skipped)).SiteLocation);
    }

    [Fact]
    public void Module_SiteOfAFlippedVmlinuxKey_BugsAtInsmod_ButNotWhileTheKeyIsOff()
    {
        KernelImage Module()
        {
            var m = KernelImage.Open(Fixtures.Build("jump-module-extern"));
            _open.Add(m);
            return m;
        }
        void Load(JumpLabelCore core)
        {
            var m = Module();
            var s = ImageSymbols.Load(m, lookBeside: false);
            core.LoadModule(m, s, JumpLabelCheck.Run(m, s), null);
        }

        var quiet = Boot("jump-socks");
        Load(quiet);
        Assert.Empty(Of(quiet, EventKind.Bug));

        var core = Boot("jump-socks");
        core.SlowInc(core.FindKey("memalloc_socks_key")!);
        Assert.Single(Of(core, EventKind.Patched));
        Load(core);
        var bug = Assert.Single(Of(core, EventKind.Bug));
        Assert.Equal("jump_label: Fatal kernel bug, unexpected op at nfs_write+0x0/0x5 [nfs] [ffffffffc0000000] (eb 02 31 c0 c3 != 66 90 0f 1f 00)) size:2 " +
            "type:1", bug.Lines[0]);
        Assert.Equal("jump_label_add_module", bug.CallPath[2]);
    }

    [Fact]
    public void Script_ParsesOperationsAndComments_AndRejectsNonsenseWithTheLine()
    {
        var steps = Simulation.ParseScript("s", "# boot\nenable frontswap_enabled_key\nstatic_branch_inc &k # ref\n\nboot-done\ndec k\n");
        Assert.Equal(["enable frontswap_enabled_key", "inc k", "boot-done", "dec k"], steps.Select(s => s.ToString()));
        var e = Assert.Throws<ImageFormatException>(() => Simulation.ParseScript("s", "enable\n"));
        Assert.Contains("line 1", e.Message);
        Assert.Throws<ImageFormatException>(() => Simulation.ParseScript("s", "frobnicate k\n"));
    }

    [Fact]
    public void FlipAll_MovesEveryKeyAwayAndBack()
    {
        var core = Boot("jump-clean");
        Simulation.Run(core, Simulation.FlipAll(core), "test");
        Assert.Empty(Of(core, EventKind.Bug));
        Assert.Equal(12, Of(core, EventKind.Patched).Count);
        Assert.All(core.Keys, k => Assert.Equal(k.InitialType ? 1 : 0, k.Enabled));
    }
}
