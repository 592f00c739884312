using TextPoke.Emulation;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tests.Support;
using TextPoke.X86;

namespace TextPoke.Tests.Emulation;

/// <summary>simulate --boot on the table fixtures: the bytes each step writes, and the kernel's words when a site is wrong.</summary>
public class BootPatcherTests
{
    sealed record Run(BootPatcher Boot, KernelImage Image, ImageSymbols Symbols) : IDisposable
    {
        public byte[] At(string symbol, int offset, int length)
        {
            Assert.True(Symbols.TryFind(symbol, out ulong address, out _), symbol);
            var bytes = new byte[length];
            Boot.Read(address + (ulong)offset, bytes);
            return bytes;
        }

        public string Hex(string symbol, int offset, int length) => X86Code.Hex(At(symbol, offset, length));
        public BootStep Step(string name) => Boot.Steps.Single(s => s.Name == name);
        public void Dispose() => Image.Dispose();
    }

    static Run Boot(string fixture, string cpu, bool up = false, bool keepGoing = false)
    {
        var image = KernelImage.Open(Fixtures.Build(fixture));
        var symbols = ImageSymbols.Load(image, lookBeside: false);
        var names = CpuFeatureNames.Load(image, symbols);
        return new Run(BootPatcher.Run(image, symbols, CpuModel.Parse(cpu, names, up), names, keepGoing), image, symbols);
    }

    // Offsets in tables-clean.S's `work`: 0 call __fentry__, 5 lock incl, 8 call thunk_rbx, 13 call target_fn, 18 movl,
    // 20 ud2, 22 jmp __x86_return_thunk, 27 cs jmp __x86_return_thunk (6 bytes). `more`: 0 alt site, 5 paravirt site.

    /// <summary>
    /// v6.11+ runtime constants: a value the init code loads as an immediate (USER_PTR_MAX) is written into every site, as
    /// runtime_const_init() does; values from memory (the dentry hash table) keep their placeholders and are named.
    /// </summary>
    [Fact]
    public void RuntimeConsts_ValueFromTheInitCode_WrittenIntoEverySite()
    {
        using var r = Boot("runtime-const", "none");
        Assert.Equal("00 f0 ff ff ff 7f 00 00", r.Hex("strncpy_from_user", 2, 8));
        Assert.Equal("00 f0 ff ff ff 7f 00 00", r.Hex("strncpy_from_user", 15, 8));
        Assert.Equal("ef cd ab 89 67 45 23 01", r.Hex("d_hash", 2, 8));
        Assert.Equal("0c", r.Hex("d_hash", 12, 1));
        var step = r.Step("runtime_const");
        Assert.Equal((4, 2), (step.Sites, step.Changed));
        var notes = r.Boot.Events.Where(e => e.Step == "runtime_const").Select(e => e.Explanation).ToList();
        Assert.Contains("runtime_const_ptr(USER_PTR_MAX) = 0x7ffffffff000 (an immediate of the init code): 2 sites", notes);
        Assert.Contains(notes, n => n.StartsWith("d_hash_shift, dentry_hashtable: computed at boot", StringComparison.Ordinal));
    }

    [Fact]
    public void PlainCpu_EveryStepWritesWhatTheKernelWrites()
    {
        using var r = Boot("tables-clean", "none");
        Assert.Equal(0, r.Boot.Bugs + r.Boot.Warnings);
        Assert.Equal("v5.13..v6.2", r.Boot.Era);
        Assert.Equal("0f 1f 44 00 00", r.Hex("work", 0, 5));          // ftrace_init: call __fentry__ -> NOP5
        Assert.Equal("f0", r.Hex("work", 5, 1));                      // SMP boot: the LOCK stays
        Assert.Equal("ff d3 0f 1f 00", r.Hex("work", 8, 5));          // no RETPOLINE: call *%rbx, NOP3 (optimize_nops)
        Assert.Equal("c3 cc cc cc cc", r.Hex("work", 22, 5));         // no RETHUNK: ret; int3 fill
        Assert.Equal("c3 cc cc cc cc cc", r.Hex("work", 27, 6));
        Assert.Equal("66 0f 1f 00", r.Hex("sealed", 0, 4));           // apply_ibt_endbr poisons the ENDBR
        // paravirt: `call *pv_ops+16(%rip)` (6 bytes) becomes a direct call to pv_ops[2] = target_fn plus a NOP1.
        Assert.True(r.Symbols.TryFind("target_fn", out ulong target, out _));
        Assert.True(r.Symbols.TryFind("more", out ulong more, out _));
        var (call, _) = X86Code.GenerateInstruction(X86Code.CallOpcode, more + 5, target);
        Assert.Equal(X86Code.Hex(call) + " 90", r.Hex("more", 5, 6));
        // The feature 3*32+16 is absent: the original call stays; the static call already calls its key's function.
        var (original, _) = X86Code.GenerateInstruction(X86Code.CallOpcode, more, target);
        Assert.Equal(X86Code.Hex(original), r.Hex("more", 0, 5));
        Assert.Equal(0, r.Step("static_calls").Changed);
        Assert.Equal(1, r.Step("alternatives").Sites);
    }

    [Fact]
    public void FeaturesPresent_AlternativeAppliedAndCallRebased_RetpolinesKept_ReturnThunkKept()
    {
        using var r = Boot("tables-clean", "3*32+16,X86_FEATURE_RETPOLINE,X86_FEATURE_RETHUNK");
        Assert.Equal(0, r.Boot.Bugs + r.Boot.Warnings);
        Assert.True(r.Symbols.TryFind("more", out ulong more, out _));
        Assert.True(r.Symbols.TryFind("fixup", out ulong fixup, out _));
        Assert.True(r.Symbols.TryFind("__x86_return_thunk", out ulong thunk, out _));
        var (call, _) = X86Code.GenerateInstruction(X86Code.CallOpcode, more, fixup);
        Assert.Equal(X86Code.Hex(call), r.Hex("more", 0, 5));        // the replacement's call, re-aimed from the site
        Assert.Equal(0, r.Step("retpolines").Changed);                  // RETPOLINE without LFENCE: thunk calls stay
        Assert.StartsWith("e8 ", r.Hex("work", 8, 5));
        Assert.True(r.Symbols.TryFind("work", out ulong work, out _));
        var (jmp, _) = X86Code.GenerateInstruction(X86Code.Jmp32Opcode, work + 27, thunk);
        Assert.Equal(X86Code.Hex(jmp) + " cc", r.Hex("work", 27, 6));  // cs jmp -> jmp x86_return_thunk; int3
    }

    [Fact]
    public void RetpolineLfence_InlinesLfenceBeforeTheIndirectCall()
    {
        using var r = Boot("tables-clean", "X86_FEATURE_RETPOLINE,X86_FEATURE_RETPOLINE_LFENCE");
        Assert.Equal("0f ae e8 ff d3", r.Hex("work", 8, 5));
    }

    [Fact]
    public void OneCpu_LockPrefixBecomesDs()
    {
        using var r = Boot("tables-clean", "none", up: true);
        Assert.Equal("3e", r.Hex("work", 5, 1));
        Assert.Equal(1, r.Step("smp_locks").Changed);
    }

    [Fact]
    public void BrokenSites_FirstBugStopsTheBoot_InTheKernelsWords()
    {
        using var r = Boot("tables-broken", "none");
        var bug = Assert.Single(r.Boot.Events, e => e.Kind != BootEventKind.Note);
        Assert.Equal(BootEventKind.Bug, bug.Kind);
        Assert.Equal("static_calls", bug.Step);
        Assert.Equal("unexpected static_call insn opcode 0xeb at work+0xc/0x13", bug.KernelLines[0]);
        Assert.True(r.Boot.Halted);
        Assert.All(r.Boot.Steps.Skip(1), s => Assert.StartsWith("not reached", s.Skipped));
    }

    [Fact]
    public void BrokenSites_KeepGoing_EveryBugAndWarning()
    {
        using var r = Boot("tables-broken", "none", keepGoing: true);
        var byStep = r.Boot.Events.Where(e => e.Kind != BootEventKind.Note).ToLookup(e => e.Step);
        Assert.Equal(BootEventKind.Bug, Assert.Single(byStep["static_calls"]).Kind);
        var ftrace = Assert.Single(byStep["ftrace"]);
        Assert.Equal(BootEventKind.Warning, ftrace.Kind);
        Assert.Equal(["------------[ ftrace bug ]------------", "ftrace failed to modify "], ftrace.KernelLines.Take(2));
        Assert.Equal(" actual:   66:90:66:90:90", ftrace.KernelLines[3]);
        var paravirt = Assert.Single(byStep["paravirt"]);
        Assert.Equal(BootEventKind.Bug, paravirt.Kind);
        Assert.Contains("BUG_ON(used > p->len)", paravirt.Explanation);
        Assert.Equal(BootEventKind.Warning, Assert.Single(byStep["retpolines"]).Kind);
        var ret = Assert.Single(byStep["returns"]);
        Assert.Matches(@"^missing return thunk: work\+0x12/0x13-0x0: c3 ", ret.KernelLines[1]);
        Assert.Equal(BootEventKind.Warning, Assert.Single(byStep["seal_endbr"]).Kind);
        Assert.Empty(byStep["alternatives"]);
        Assert.Equal(2, r.Boot.Bugs);
        Assert.Equal(4, r.Boot.Warnings);
        // Sites the kernel refuses are left exactly as they were.
        Assert.Equal("66 90 66 90 90", r.Hex("work", 0, 5));
    }

    [Fact]
    public void Before513_PadlenQuirk_RecomputedJump_VendorNops()
    {
        using (var k8 = Boot("alt-v5.10", "3*32+16"))
        {
            Assert.Equal("<=v5.12", k8.Boot.Era);
            Assert.StartsWith("K8", k8.Boot.NopSet);
            Assert.Equal("eb 15 66 66 90", k8.Hex("old", 0, 5));       // jmp far_fn from the site: JMP8 + K8 NOP3
            Assert.Equal("31 c0 90 90 90", k8.Hex("old", 5, 5));       // optimize_nops looks at the first padlen bytes: not all 0x90
            Assert.Equal("66 66 90 66 90", k8.Hex("old", 10, 5));      // an empty original: K8 NOP5
            Assert.Equal("e8 02 00 00 00", k8.Hex("old", 15, 5));      // call other_fn, rebased onto the site
            Assert.Equal(0, k8.Boot.Bugs + k8.Boot.Warnings);
        }
        using var p6 = Boot("alt-v5.10", "3*32+16,X86_FEATURE_NOPL,vendor=intel,family=6,model=0x55");
        Assert.StartsWith("P6", p6.Boot.NopSet);
        Assert.Equal("eb 15 0f 1f 00", p6.Hex("old", 0, 5));
        Assert.Equal("0f 1f 44 00 00", p6.Hex("old", 10, 5));
    }

    /// <summary>arch_init_ideal_nops(): the NOP set follows the vendor, family and model, not the features alone.</summary>
    [Theory]
    [InlineData("qemu64", "K8")]                                            // AMD family 0xf
    [InlineData("vendor=amd,family=0x17,model=1", "P6")]                    // AMD after family 0xf
    [InlineData("vendor=hygon,family=0x18,model=0", "P6")]
    [InlineData("X86_FEATURE_NOPL,vendor=intel,family=6,model=0x55", "P6")] // Intel with NOPL
    [InlineData("X86_FEATURE_NOPL,vendor=intel,family=6,model=0x1a", "K8")] // Intel family 6 models 0x0f..0x2f: K8 despite NOPL
    [InlineData("X86_FEATURE_NOPL,vendor=intel,family=6,model=0x1c", "P6")] // ... except 0x1c, 0x26, 0x27
    [InlineData("vendor=intel,family=6,model=0x55", "K8")]                  // Intel without NOPL
    [InlineData("X86_FEATURE_NOPL", "K8")]                                  // no vendor given: the default case
    public void IdealNops_FollowTheVendorFamilyAndModel(string cpu, string set)
    {
        using var r = Boot("alt-v5.10", cpu);
        Assert.StartsWith(set, r.Boot.NopSet);
        Assert.Equal(set == "K8" ? "66 66 90 66 90" : "0f 1f 44 00 00", r.Hex("old", 10, 5));
    }

    /// <summary>
    /// v5.10's jump_label_init() on a K8-NOP CPU (qemu64): the site of a disabled branch holding a JMP BUGs in setup_arch at
    /// line 45 of arch/x86/kernel/jump_label.c, before the console; the sites before it got the K8 NOP5. On a P6-NOP CPU
    /// the step patches nothing and the boot goes on (the site BUGs later, when the key is enabled).
    /// </summary>
    [Fact]
    public void V510_JumpLabelInit_EarlyBugOnK8Nops_NothingOnP6()
    {
        using var k8 = Boot("jump-v5.10", "qemu64");
        var bug = Assert.Single(k8.Boot.Events, e => e.Kind == BootEventKind.Bug);
        Assert.Equal("jump_label", bug.Step);
        Assert.True(k8.Symbols.TryFind("swap_writepage", out ulong function, out _));
        Assert.Equal($"jump_label: Fatal kernel bug, unexpected op at swap_writepage+0xb/0x18 [{function + 0xb:x16}] (e9 02 00 00 00) 45", bug.KernelLines[0]);
        Assert.Equal("kernel BUG at arch/x86/kernel/jump_label.c:27!", bug.KernelLines[1]);
        Assert.Contains("before the console", bug.Explanation);
        Assert.True(k8.Boot.Halted);
        Assert.Equal("66 66 66 66 90", k8.Hex("swap_writepage", 0, 5));         // K8 NOP5_ATOMIC from the image's k8_nops[9]
        Assert.Equal("e9", k8.Hex("swap_writepage", 5, 1));                      // the likely branch is a JMP: not touched

        using var p6 = Boot("jump-v5.10", "X86_FEATURE_NOPL,vendor=intel,family=6,model=0x55");
        Assert.Equal(0, p6.Boot.Bugs);
        Assert.StartsWith("the ideal NOP5 is the compiler's NOP", p6.Boot.Steps.Single(s => s.Name == "jump_label").Skipped);
    }

    [Fact]
    public void From63_DirectCalls_Relocation_NotFlag_LongNops_AndTheDirectCallBug()
    {
        using var r = Boot("alt-v6.3", "3*32+16");
        Assert.Equal("v6.3+", r.Boot.Era);
        Assert.True(r.Symbols.TryFind("new", out ulong site, out _));
        Assert.True(r.Symbols.TryFind("native_fn", out ulong native, out _));
        var (call, _) = X86Code.GenerateInstruction(X86Code.CallOpcode, site, native);
        Assert.Equal(X86Code.Hex(call) + " 90", r.Hex("new", 0, 6));      // ALT_CALL_ALWAYS: call *pv_slot -> call native_fn
        Assert.Equal("eb 1f cc cc cc", r.Hex("new", 6, 5));               // the replacement's JMP32, rebased, fits a JMP8
        Assert.True(r.Symbols.TryFind("var_b", out ulong varB, out _));
        var disp = (long)varB - (long)(site + 11 + 7);
        Assert.Equal($"48 8b 05 {X86Code.Hex(BitConverter.GetBytes((int)disp))}", r.Hex("new", 11, 7)); // RIP-relative rebased
        Assert.Equal("b8 01 00 00 00 0f 1f 00", r.Hex("new", 18, 8));    // ALT_FLAG_NOT: kept; padding -> NOP3
        Assert.Equal("66 0f 1f 44 00 00", r.Hex("new", 26, 6));          // *nop_slot is nop_func: the call goes, NOP6
        var bug = Assert.Single(r.Boot.Events, e => e.Kind == BootEventKind.Bug);
        Assert.Equal("ALT_FLAG_DIRECT_CALL set for a non-indirect call", bug.KernelLines[0]);
        Assert.Equal("31 c0 90 90 90 90", r.Hex("new", 32, 6));
        Assert.True(r.Boot.Halted);
    }

    [Fact]
    public void CpuSpec_NamesNumbersPresetsAndRemovals()
    {
        using var image = KernelImage.Open(Fixtures.Build("tables-clean"));
        var names = CpuFeatureNames.Load();
        var qemu = CpuModel.Parse("qemu64", names);
        Assert.Contains(names.Find("X86_FEATURE_RETPOLINE")!.Value, qemu.Features);
        Assert.Contains(names.Find("sse2")!.Value, qemu.Features);
        Assert.DoesNotContain(names.Find("X86_FEATURE_RETHUNK")!.Value, qemu.Features);
        var fewer = CpuModel.Parse("qemu64,-RETPOLINE,sse4_2", names);
        Assert.DoesNotContain(names.Find("X86_FEATURE_RETPOLINE")!.Value, fewer.Features);
        Assert.Contains(4 * 32 + 20, fewer.Features);
        Assert.Equal(4 * 32 + 20, names.Find("X86_FEATURE_XMM4_2"));
        Assert.Equal(22 * 32 + 16, names.Find("X86_BUG_SPECTRE_V2"));
        Assert.Equal(22 * 32 + 16, names.Find("spectre_v2"));
        Assert.Equal(11 * 32 + 14, names.Find("11*32+14"));
        Assert.Contains(3 * 32 + 21, CpuModel.Parse("none", names).Features); // X86_FEATURE_ALWAYS
        Assert.Throws<ArgumentException>(() => CpuModel.Parse("X86_FEATURE_NONSENSE", names));
        // host: flags and bugs from /proc/cpuinfo, hidden mitigation features from the vulnerabilities files.
        var host = CpuModel.Parse("host", names, readFile: path => path switch
        {
            "/proc/cpuinfo" => "processor\t: 0\nflags\t\t: fpu sse4_2 avx2\nbugs\t\t: spectre_v2 retbleed\n\nprocessor\t: 1\nflags\t\t: fpu ibt\n",
            "/sys/devices/system/cpu/vulnerabilities/spectre_v2" => "Mitigation: Retpolines; IBPB: conditional",
            "/sys/devices/system/cpu/vulnerabilities/retbleed" => "Mitigation: untrained return thunk",
            _ => null,
        });
        Assert.Equal(new[] { "X86_FEATURE_FPU", "X86_FEATURE_ALWAYS", "X86_FEATURE_XMM4_2", "X86_FEATURE_AVX2", "X86_FEATURE_RETPOLINE", "X86_FEATURE_RETHUNK",
            "X86_FEATURE_UNRET", "X86_BUG_SPECTRE_V2", "X86_BUG_RETBLEED" },
            host.Features.Order().Select(names.Name));
    }

    [Fact]
    public void Cli_BootSimulation_TextJsonEmitAndUsage()
    {
        var path = Fixtures.Build("tables-clean");
        var output = Path.Combine(Repo.Scratch("boot-emit"), "patched.elf");
        var text = CliRun.Run("simulate", "--boot", path, "--cpu", "none", "--emit", output);
        Assert.Equal(0, text.Exit);
        Assert.Contains(text.Lines, l => l.StartsWith("returns ") && l.Contains("apply_returns()") && l.Contains("2 sites, 2 rewritten"));
        Assert.Contains("result: booted: no BUG and no WARNING", text.Out);
        // The emitted ELF is a loadable image with the patched bytes.
        using (var emitted = KernelImage.Open(output))
        {
            var symbols = ImageSymbols.Load(emitted, lookBeside: false);
            Assert.True(symbols.TryFind("work", out ulong work, out _));
            var bytes = new byte[5];
            emitted.Read(work, bytes);
            Assert.Equal("0f 1f 44 00 00", X86Code.Hex(bytes));
        }
        var json = CliRun.Run("simulate", "--boot", Fixtures.Build("tables-broken"), "--cpu", "none", "--json");
        Assert.Equal(1, json.Exit);
        using var doc = System.Text.Json.JsonDocument.Parse(json.Out);
        Assert.Equal("bug", doc.RootElement.GetProperty("events")[0].GetProperty("kind").GetString());
        Assert.True(doc.RootElement.GetProperty("halted").GetBoolean());
        Assert.Equal(2, CliRun.Run("simulate", "--boot", path, "--cpu", "nonsense").Exit);
        Assert.Equal(2, CliRun.Run("simulate", path, "--emit", output).Exit);
        Assert.Equal(2, CliRun.Run("simulate", "--boot", path, "--enable", "k").Exit);
    }
}
