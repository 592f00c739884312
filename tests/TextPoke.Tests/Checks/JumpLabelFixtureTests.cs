using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tables;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Checks;

/// <summary>Each fixture reproduces one layout and one invariant; the clean fixture is the passing counterpart of all.</summary>
public class JumpLabelFixtureTests
{
    static JumpLabelReport Check(string fixture)
    {
        using var image = KernelImage.Open(Fixtures.Build(fixture));
        return JumpLabelCheck.Run(image, ImageSymbols.Load(image, lookBeside: false));
    }

    static Finding Single(JumpLabelReport report, string rule)
    {
        var f = Assert.Single(report.Findings);
        Assert.Equal(rule, f.Rule);
        return f;
    }

    [Fact]
    public void CleanTable_HasNoFindings_AndCountsEverySite()
    {
        var r = Check("jump-clean");
        Assert.Empty(r.Findings);
        Assert.Equal(JumpLabelEra.RelativeVariable, r.Era);
        Assert.Equal(new JumpTableStats(6, 3, 4, 2, 0, 4, 2, 1, 4, 0), r.Stats);
        var key = r.Keys.Single(k => k.Name == "frontswap_enabled_key");
        Assert.False(key.InitialValue);
        Assert.Equal(".bss", key.Section);
        Assert.True(r.Keys.Single(k => k.Name == "on_key").InitialValue);
        Assert.Contains("__start___jump_table/__stop___jump_table from .symtab", r.Bounds!.How);
        Assert.Equal(".rodata", r.Bounds.Section!.Name);
    }

    [Fact]
    public void Seed_JmpLeftWhereObjtoolShouldHaveNopped_PrintsTheKernelsLine()
    {
        var f = Single(Check("jump-seed"), "jump.objtool-not-run");
        Assert.Equal(
        [
            "jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60 [ffffffff8100001c] (eb 1c 48 89 df != 66 90 0f 1f 00)) size:2 type:1",
            "kernel BUG at arch/x86/kernel/jump_label.c:73!",
        ], f.KernelLines);
        Assert.Equal("frontswap_enabled_key", f.Key);
        Assert.Contains("objtool", f.Explanation);
        Assert.Equal(1, f.Type);
        Assert.Equal(2, f.Size);
    }

    [Fact]
    public void Reverse_NopWhereJmpExpected_IsType0WithTheJmp8Union()
    {
        var f = Single(Check("jump-reverse"), "jump.initial-state");
        Assert.Equal("jump_label: Fatal kernel bug, unexpected op at do_cats+0x0/0xb [ffffffff81000000] (66 90 31 c0 c3 != eb 03 00 00 00)) size:2 type:0",
            f.KernelLines[0]);
        Assert.Equal("NOP where the key's state requires a JMP", f.Title);
    }

    /// <summary>
    /// Which operation trips a site follows from the key's initial state, not the branch: an off key's site is BUGged by
    /// the first enable (a likely site too: disabling an off key changes nothing), an on key's by the first disable.
    /// </summary>
    [Theory]
    [InlineData("swap_writepage+0xd", "off_key", "static_key_enable/static_key_slow_inc")]
    [InlineData("swap_writepage+0x10", "on_key", "static_key_disable/static_key_slow_dec")]
    [InlineData("swap_writepage+0x18", "on_key", "static_key_disable/static_key_slow_dec")]
    [InlineData("swap_writepage+0x1", "frontswap_enabled_key", "static_key_enable/static_key_slow_inc")]
    public void TheOperationThatTrips_FollowsTheKeysInitialState(string site, string key, string operation)
    {
        var poked = Path.Combine(Repo.Scratch("polarity"), site.Replace('+', '_'));
        Assert.Equal(0, CliRun.Run("poke", Fixtures.Build("jump-clean"), "--flip-jump-site", site, "-o", poked).Exit);
        using var image = KernelImage.Open(poked);
        var f = Assert.Single(JumpLabelCheck.Run(image, ImageSymbols.Load(image, lookBeside: false)).Findings);
        Assert.Contains($"the first {operation} of {key} BUGs", f.Explanation.Replace("\n", " "));
    }

    [Fact]
    public void FiveByteSites_OnlyTheUnpatchedJmp32IsReported()
    {
        var r = Check("jump-five");
        var f = Single(r, "jump.objtool-not-run");
        Assert.Equal("jump_label: Fatal kernel bug, unexpected op at enqueue_timer+0xb/0x18 [ffffffff8100000b] (e9 02 00 00 00 != 0f 1f 44 00 00)) size:5 " +
            "type:1", f.KernelLines[0]);
        Assert.Equal(3, r.Stats!.FiveByte);
    }

    [Fact]
    public void SiteThatIsNeitherNopNorJmp_AndWrongLength_AreBothReported()
    {
        var r = Check("jump-neither");
        Assert.Equal(2, r.Findings.Count);
        var other = r.Findings.Single(f => f.Rule == "jump.unexpected-instruction");
        Assert.Equal("jump_label: Fatal kernel bug, unexpected op at net_rx+0x0/0x7 [ffffffff81000000] (31 c0 48 89 df != 66 90 0f 1f 00)) size:2 type:1",
            other.KernelLines[0]);
        var size = r.Findings.Single(f => f.Rule == "jump.bad-size");
        Assert.Equal(["kernel BUG at arch/x86/kernel/jump_label.c:25!"], size.KernelLines);
    }

    [Fact]
    public void JmpToAnotherTarget_IsReportedWithTheExpectedJmp()
    {
        var f = Single(Check("jump-wrongtarget"), "jump.wrong-target");
        Assert.Equal("jump_label: Fatal kernel bug, unexpected op at sched_tick+0x0/0x11 [ffffffff81000000] (eb 03 31 c0 c3 != eb 09 00 00 00)) size:2 type:0",
            f.KernelLines[0]);
    }

    [Fact]
    public void KeyInCode_AndInconsistentKey_AreReportedOncePerKey()
    {
        var r = Check("jump-badkey");
        Assert.Equal(["jump.key-inconsistent", "jump.key-outside-data"], r.Findings.Select(f => f.Rule).Order());
        Assert.Null(r.Keys.Single(k => k.Name == "odd_key").InitialValue);
    }

    [Fact]
    public void AbsoluteEntries_AreDecodedFromTheBytes_AndUseTheOldMessage()
    {
        var r = Check("jump-absolute");
        Assert.Equal(JumpLabelEra.Absolute, r.Era);
        var f = Single(r, "jump.initial-state");
        Assert.Equal(["jump_label: Fatal kernel bug, unexpected op at tcp_poll+0x5/0xc [ffffffff81000005] (e9 01 00 00 00) 68"], f.KernelLines);
    }

    [Fact]
    public void RelocatableObject_TableOnlyMeaningfulAfterRelocation()
    {
        var path = Fixtures.Build("jump-object");
        using var image = KernelImage.Open(path);
        Assert.Equal(ImageKind.Object, image.Kind);
        Assert.Equal("unlinked kernel object (such as an LTO vmlinux.o)", image.Describe());
        var section = image.Elf.Section("__jump_table")!;
        Assert.True(image.Elf.SectionBytes(section).ToArray().All(b => b == 0), "the file's table bytes are all zero before relocation");
        var r = JumpLabelCheck.Run(image, ImageSymbols.Load(image, lookBeside: false));
        var f = Single(r, "jump.objtool-not-run");
        Assert.Equal("jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x5/0x10 [ffffffff81000005] (eb 03 31 c0 c3 != 66 90 0f 1f 00)) size:2 " +
            "type:1", f.KernelLines[0]);
        Assert.Equal(1, r.Stats!.Nop);
    }

    [Fact]
    public void Module_NamesTheModule_AndLeavesKeysOfVmlinuxUnjudged()
    {
        var r = Check("jump-module");
        Assert.Equal("zfs", r.Module);
        var f = Single(r, "jump.objtool-not-run");
        Assert.StartsWith("jump_label: Fatal kernel bug, unexpected op at zfs_write+0x0/0x8 [zfs] [ffffffffc0000000] (eb 02 31 c0 c3 != 66 90 0f 1f 00)) " +
            "size:2 type:1", f.KernelLines[0]);
        var external = r.Keys.Single(k => k.Name == "memalloc_socks_key");
        Assert.True(external.External);
        Assert.Null(external.InitialValue);
    }

    [Fact]
    public void LiveRelocationInsideNop_IsReported()
    {
        var f = Single(Check("jump-livereloc"), "jump.live-relocation");
        Assert.Contains("R_X86_64_PC32 against g", f.Explanation);
    }

    [Fact]
    public void TableWithPartialEntry_IsMalformed()
    {
        var r = Check("jump-malformed");
        Single(r, "jump.table-malformed");
        Assert.NotNull(r.Absent);
    }

    [Fact]
    public void SectionNamedJumpTable_IsUsedWithoutSymbols()
    {
        var r = Check("jump-section");
        Assert.Empty(r.Findings);
        Assert.Equal("section __jump_table", r.Bounds!.How);
    }
}
