using System.Buffers.Binary;
using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tests.Support;
using TextPoke.X86;

namespace TextPoke.Tests.Tables;

/// <summary>Every table besides __jump_table: the passing fixture, the fixture with one broken site per table, and real kernels.</summary>
public class SiteTableTests
{
    static CheckResult Check(string path)
    {
        using var image = KernelImage.Open(path);
        return CheckRunner.Run(image, ImageSymbols.Load(image, lookBeside: false));
    }

    [Fact]
    public void CleanFixture_EveryTableReadWithoutFindings()
    {
        var r = Check(Fixtures.Build("tables-clean"));
        Assert.Empty(r.Findings);
        var t = r.Tables.ToDictionary(x => x.Name);
        Assert.Equal(1, t["smp_locks"].Counts["lock"]);
        Assert.Equal(2, t["return_sites"].Counts["jmp thunk"]);
        Assert.Equal(1, t["retpoline_sites"].Counts["call thunk"]);
        Assert.Equal(1, t["mcount"].Counts["call __fentry__"]);
        Assert.Equal(1, t["static_calls"].Counts["call"]);
        Assert.Equal(1, t["ex_table"].Entries);
        Assert.Equal(1, t["bug_table"].Counts["warn"]);
        Assert.Equal(2, t["orc"].Entries);
        Assert.Equal(1, t["alt"].Counts["ok"]);
        Assert.Equal(1, t["paravirt"].Counts["call pv_ops slot"]);
        Assert.Equal(1, t["call_sites"].Counts["direct call"]);
        Assert.Equal(1, t["ibt_endbr_seal"].Counts["endbr"]);
        Assert.Equal(1, t["cfi_sites"].Counts["kcfi preamble"]);
        Assert.All(r.Tables, x => Assert.Null(x.Absent));
    }

    [Fact]
    public void BrokenFixture_OneFindingPerTable_WithTheKernelsWords()
    {
        var r = Check(Fixtures.Build("tables-broken"));
        var byTable = r.Findings.GroupBy(f => f.Table).ToDictionary(g => g.Key, g => g.Single());
        Assert.Equal(["alt", "bug_table", "call_sites", "cfi_sites", "ex_table", "ibt_endbr_seal", "mcount", "orc", "paravirt", "retpoline_sites",
            "return_sites", "smp_locks", "static_calls"],
            byTable.Keys.Order());
        Assert.Equal("alt.split-instruction", byTable["alt"].Rule);
        Assert.Equal("paravirt.bad-length", byTable["paravirt"].Rule);
        Assert.Equal("call_sites.bad-site", byTable["call_sites"].Rule);
        Assert.Equal("ibt_endbr_seal.bad-site", byTable["ibt_endbr_seal"].Rule);
        Assert.Equal("cfi_sites.bad-site", byTable["cfi_sites"].Rule);
        Assert.Equal("smp.not-lock", byTable["smp_locks"].Rule);
        Assert.Equal("retpoline.not-a-thunk", byTable["retpoline_sites"].Rule);
        Assert.Equal("bug.not-ud2", byTable["bug_table"].Rule);
        Assert.Equal("ex.unsorted", byTable["ex_table"].Rule);
        Assert.Matches(@"^missing return thunk: work\+0x12/0x13-0x0: c3 ", byTable["return_sites"].KernelLines[0]);
        Assert.Equal("unexpected static_call insn opcode 0xeb at work+0xc/0x13", byTable["static_calls"].KernelLines[0]);
        Assert.Equal(["------------[ ftrace bug ]------------", "ftrace failed to modify "], byTable["mcount"].KernelLines.Take(2));
        Assert.Equal(" actual:   66:90:66:90:90", byTable["mcount"].KernelLines[3]);
        Assert.Equal(["WARNING: WARNING: Corrupt .orc_unwind table.  Disabling unwinder."], byTable["orc"].KernelLines);
    }

    [Theory]
    [InlineData("alt-v5.10", "13 bytes", 4)]
    [InlineData("alt-v6.3", "14 bytes", 6)]
    [InlineData("tables-clean", "12 bytes", 1)]
    public void AlternativesLayout_DecidedFromTheBytes_ForEachEra(string fixture, string layout, int entries)
    {
        var alt = Check(Fixtures.Build(fixture)).Tables.Single(t => t.Name == "alt");
        Assert.StartsWith(layout, alt.Layout);
        Assert.Equal(entries, alt.Entries);
        Assert.Equal(entries, alt.Counts["ok"]);
    }

    /// <summary>
    /// apply_alternatives() refuses a feature at or above (NCAPINTS + NBUGINTS) * 32 of the kernel itself; stable backports
    /// grow NCAPINTS (Debian 5.10.0-43 and later have 23 words, 5.10.0-32 has 22), so the limit is measured from the
    /// image's x86_cap_flags/x86_bug_flags: the same alternative on 24*32+4 is in range with 23 words and a BUG with 22.
    /// </summary>
    [Fact]
    public void AlternativeFeatureLimit_IsTheImagesOwnCapabilityWords()
    {
        var ok = Check(Fixtures.Build("alt-capwords"));
        Assert.Empty(ok.Findings);
        Assert.Equal(10, ok.Tables.Single(t => t.Name == "alt").Counts["ok"]);
        var bug = Assert.Single(Check(Fixtures.Build("alt-capwords-22")).Findings);
        Assert.Equal("alt.out-of-range", bug.Rule);
        Assert.Contains("feature 772 (limit 768, NCAPINTS 22 + NBUGINTS 2 from the image's x86_cap_flags/x86_bug_flags)", bug.Explanation);

        // The emulation numbers bug bits after the image's capability words: X86_BUG(0) is 23*32 there, 22*32 in the era's table.
        using var image = KernelImage.Open(Fixtures.Build("alt-capwords"));
        var symbols = ImageSymbols.Load(image, lookBeside: false);
        Assert.Equal(new TextPoke.Tables.CapabilityWords(23, 2), TextPoke.Tables.CapabilityWords.Measure(image, symbols));
        var names = TextPoke.Emulation.CpuFeatureNames.Load("6.1", image, symbols);
        Assert.Equal(23 * 32, names.Find("X86_BUG_F00F"));
        Assert.Equal(23 * 32, names.Find("f00f"));
        Assert.Equal(800, names.Limit);
        Assert.Equal(22 * 32, TextPoke.Emulation.CpuFeatureNames.Load("6.1").Find("X86_BUG_F00F"));
    }

    [Fact]
    public void ObjtoolStoppedEarly_EmptyOrcAndMcountAreReported_WithTheKernelsWords()
    {
        var r = Check(Fixtures.Build("objtool-stopped"));
        var orc = Assert.Single(r.Findings, f => f.Table == "orc");
        Assert.Equal("orc.missing", orc.Rule);
        Assert.Equal(["WARNING: WARNING: Bad or missing .orc_unwind table.  Disabling unwinder."], orc.KernelLines);
        var mcount = Assert.Single(r.Findings, f => f.Table == "mcount");
        Assert.Equal(["ftrace: No functions to be traced?"], mcount.KernelLines);
        Assert.Equal(2, r.Findings.Count());
        // Without ORC unwinder or ftrace, empty tables are just empty.
        Assert.DoesNotContain(Check(Fixtures.Build("jump-clean")).Findings, f => f.Table is "orc" or "mcount");
    }

    [Trait("Tier", "full")]
    [Fact]
    public void TablesSelection_AndSitesTable()
    {
        var path = Fixtures.Build("tables-broken");
        // The broken .smp_locks entry is a notice (the kernel never acts on it): clean unless --strict.
        var only = CliRun.Run("check", path, "--tables", "smp_locks");
        Assert.Equal(0, only.Exit);
        Assert.Contains("result: clean, 0 findings (1 notice", only.Out);
        var strict = CliRun.Run("check", path, "--tables", "smp_locks", "--strict");
        Assert.Equal(1, strict.Exit);
        Assert.Contains("result: 1 finding", strict.Out);
        Assert.Equal(1, CliRun.Run("check", path, "--tables", "ex_table").Exit);
        var sites = CliRun.Run("sites", path, "--table", "mcount");
        Assert.Equal(0, sites.Exit);
        Assert.Contains(sites.Lines, l => l.StartsWith("ffffffff81000220  work+0x0/0x13") && l.Contains("other"));
        Assert.Equal(2, CliRun.Run("sites", path, "--table", "nonsense").Exit);
    }

    static readonly Lazy<(byte[] Elf, Dictionary<string, TableReport> Tables, string Names)> Golden = new(() =>
    {
        using var image = KernelImage.Open(DebianKernels.GoldenVmlinuz);
        var r = CheckRunner.Run(image, ImageSymbols.Load(image, lookBeside: false), listSites: true);
        Assert.Empty(r.Findings);
        return (image.ElfImage.ToArray(), r.Tables.ToDictionary(t => t.Name), "");
    });

    static long Offset(byte[] elf, ulong address)
    {
        using var image = KernelImage.FromElfBytes("offsets", elf);
        return ImageWriter.FileOffset(image, address);
    }

    /// <summary>Pokes bytes into a copy of the Debian 6.1.0-53 payload and checks it: exactly one finding, from that table.</summary>
    static Finding PokeAndCheck(string table, Func<byte[], Dictionary<string, TableReport>, (ulong Address, byte[] Bytes)> poke)
    {
        var (elf, tables, _) = Golden.Value;
        var copy = (byte[])elf.Clone();
        var (address, bytes) = poke(copy, tables);
        bytes.CopyTo(copy, Offset(copy, address));
        using var image = KernelImage.FromElfBytes("poked", copy);
        var r = CheckRunner.Run(image, ImageSymbols.Load(image, lookBeside: false));
        var f = Assert.Single(r.Findings);
        Assert.Equal(table, f.Table);
        return f;
    }

    [Trait("Tier", "full")]
    [Fact]
    public void RealKernel_PokedLockPrefix() =>
        Assert.Equal("smp.not-lock", PokeAndCheck("smp_locks", (e, t) => (t["smp_locks"].Sites[100].Address, [0x3e])).Rule);

    [Trait("Tier", "full")]
    [Fact]
    public void RealKernel_PokedReturnSite()
    {
        var f = PokeAndCheck("return_sites", (e, t) => (t["return_sites"].Sites[500].Address, [0xc3]));
        Assert.StartsWith("missing return thunk: ", f.KernelLines[0]);
    }

    [Trait("Tier", "full")]
    [Fact]
    public void RealKernel_PokedRetpolineSite() =>
        Assert.Equal("retpoline.not-a-thunk", PokeAndCheck("retpoline_sites", (e, t) =>
        {
            var site = t["retpoline_sites"].Sites.First(s => s.State == "thunk r0" && s.Target != null);
            // Retarget the call 32 bytes further into the thunk array's neighbour: one thunk off, or past its end.
            var (jump, _) = X86Code.GenerateInstruction(X86Code.CallOpcode, site.Address, site.Target!.Value + 1);
            return (site.Address, jump);
        }).Rule);

    [Trait("Tier", "full")]
    [Fact]
    public void RealKernel_PokedFtraceSite()
    {
        var f = PokeAndCheck("mcount", (e, t) => (t["mcount"].Sites[1000].Address, [0x66, 0x90, 0x66, 0x90, 0x90]));
        Assert.Equal(" actual:   66:90:66:90:90", f.KernelLines[3]);
    }

    [Trait("Tier", "full")]
    [Fact]
    public void RealKernel_PokedStaticCallSite() =>
        Assert.StartsWith("unexpected static_call insn opcode 0xcc at ", PokeAndCheck("static_calls", (e, t) =>
            (t["static_calls"].Sites.First(s => s.State == "call").Address, [0xcc])).KernelLines[0]);

    [Trait("Tier", "full")]
    [Fact]
    public void RealKernel_PokedBugSite() =>
        Assert.Equal("bug.not-ud2", PokeAndCheck("bug_table", (e, t) => (t["bug_table"].Sites[10].Address, [0x90, 0x90])).Rule);

    [Trait("Tier", "full")]
    [Fact]
    public void RealKernel_UnsortedExceptionTable() =>
        Assert.Equal("ex.unsorted", PokeAndCheck("ex_table", (e, t) =>
        {
            // Point entry 10's insn at entry 9's instruction minus one page: still kernel text, but out of order.
            var b = t["ex_table"].Bounds!;
            ulong field = b.Start + 12 * 10;
            ulong wanted = t["ex_table"].Sites[9].Address - 0x1000;
            var value = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(value, (int)(long)(wanted - field));
            return (field, value);
        }).Rule);

    [Trait("Tier", "full")]
    [Fact]
    public void RealKernel_AlternativeCuttingAnInstruction() =>
        Assert.Equal("alt.split-instruction", PokeAndCheck("alt", (e, t) =>
        {
            // An entry patching a 6-byte call with 3 bytes: cut its instrlen to 5, inside the call.
            var b = t["alt"].Bounds!;
            int i = t["alt"].Sites.FindIndex(s => s.State.EndsWith(", 6/3 bytes"));
            Assert.True(i >= 0);
            return (b.Start + (ulong)(12 * i) + 10, [5]);
        }).Rule);

    [Trait("Tier", "full")]
    [Fact]
    public void RealKernel_ParavirtEntryShorterThanItsCall() =>
        Assert.Equal("paravirt.bad-length", PokeAndCheck("paravirt", (e, t) => (t["paravirt"].Bounds!.Start + 16 * 100 + 9, [3])).Rule);

    [Trait("Tier", "full")]
    [Fact]
    public void RealKernel_UnsortedOrc()
    {
        var f = PokeAndCheck("orc", (e, t) =>
        {
            var b = t["orc"].Bounds!;
            ulong field = b.Start + 4 * 5000;
            var value = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(value, (int)(long)(0xffffffff81000000 - field));
            return (field, value);
        });
        Assert.Equal("orc.unsorted", f.Rule);
    }

    /// <summary>
    /// A __bug_table whose entries carry zero file and line fields is read (each entry on its ud2), not "layout could not
    /// be decided"; with one entry moved off its ud2 the table is still read and that entry is a finding.
    /// </summary>
    [Fact]
    public void BugTable_WithoutFileAndLine_IsRead()
    {
        var r = Check(Fixtures.Build("bug-nofile"));
        var bugs = r.Tables.Single(t => t.Name == "bug_table");
        Assert.Equal(TableStatus.Checked, bugs.Status);
        Assert.Equal(2, bugs.Entries);
        Assert.Equal(1, bugs.Counts["bug"]);
        Assert.Equal(1, bugs.Counts["warn"]);
        Assert.Empty(bugs.Findings);
    }

    /// <summary>A .parainstructions whose last entry the assembler left unpadded (26 bytes for two entries) is read whole.</summary>
    [Fact]
    public void Paravirt_UnpaddedLastEntry_IsRead()
    {
        var r = Check(Fixtures.Build("paravirt-unpadded"));
        var pv = r.Tables.Single(t => t.Name == "paravirt");
        Assert.Equal(TableStatus.Checked, pv.Status);
        Assert.Equal(26UL, pv.Bounds!.Length);
        Assert.Equal(2, pv.Entries);
        Assert.Equal(2, pv.Counts["call pv_ops slot"]);
        Assert.Empty(pv.Findings);
    }

    /// <summary>
    /// &lt;= v5.10's iret operation is patched with a JMP: a `jmp *pv_ops+slot` site is right exactly when its slot holds
    /// native_iret (or native_usergs_sysret64), a CALL through that slot or a JMP through any other slot is not.
    /// </summary>
    [Fact]
    public void Paravirt_IndirectJmp_IsRightOnlyThroughTheIretSlot()
    {
        var r = Check(Fixtures.Build("paravirt-iret"));
        var pv = r.Tables.Single(t => t.Name == "paravirt");
        Assert.Equal(3, pv.Entries);
        Assert.Equal(1, pv.Counts["jmp pv_ops slot (iret)"]);
        Assert.Equal(2, pv.Counts["other"]);
        Assert.Equal(["work+0x7/0x15", "work+0xe/0x15"], pv.Findings.Select(f => f.Location).Order());
        Assert.All(pv.Findings, f => Assert.Equal("paravirt.not-a-pv-call", f.Rule));
    }

    /// <summary>
    /// A kernel linked as PIE by lld (ET_DYN, absolute fields zero in the file and set by R_X86_64_RELATIVE relocations)
    /// is read with those relocations applied: every table gives the findings of the same code linked statically.
    /// </summary>
    [Theory]
    [InlineData("tables-clean")]
    [InlineData("tables-broken")]
    public void PieKernel_IsCheckedLikeTheStaticLink(string fixture)
    {
        var pie = Check(Fixtures.BuildPie(fixture));
        var linked = Check(Fixtures.Build(fixture));
        Assert.Equal(linked.Findings.Select(f => (f.Rule, f.Location)).Order(), pie.Findings.Select(f => (f.Rule, f.Location)).Order());
        Assert.Equal(linked.Verdict, pie.Verdict);
        // Every table reads the same entries; mcount and paravirt hold u64 addresses, zero in the PIE file until relocated.
        foreach (var table in linked.Tables)
            Assert.Equal(table.Counts.OrderBy(c => c.Key), pie.Tables.Single(t => t.Name == table.Name).Counts.OrderBy(c => c.Key));
        Assert.Equal(1, pie.Tables.Single(t => t.Name == "mcount").Entries);
    }

    [Fact]
    public void SharedLibrary_IsStillNotAKernel()
    {
        var dir = Repo.Scratch("so");
        string c = Path.Combine(dir, "lib.c"), so = Path.Combine(dir, "lib.so");
        File.WriteAllText(c, "int answer(void) { return 42; }\n");
        Tool.Run("gcc", ["-shared", "-fPIC", "-nostdlib", "-o", so, c], dir);
        var e = Assert.Throws<ImageFormatException>(() => KernelImage.Open(so));
        Assert.Contains("a shared object or PIE executable, not a kernel image", e.Message);
    }
}
