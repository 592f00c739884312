using System.Text.Json;
using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Boot;

/// <summary>
/// boot --verify on Debian's kernels of three eras under QEMU: every byte of live text that differs from the emulated
/// boot is explained on a clean boot, on qemu64 (AMD, K8 NOPs) and on an Intel model (page-table isolation, P6 NOPs,
/// ITS thunks); a key flipped at run time is explained by its live value; a planted hook and a site flipped without its
/// key are caught and named.
/// </summary>
[Trait("Tier", "full")]
public class LiveVerifyTests
{
    static (int Exit, JsonElement Verify) BootVerify(string kernel, params string[] args)
    {
        var r = CliRun.Run(["boot", kernel, "--verify", "--smp", "2", "--timeout", "180", .. args, "--json"]);
        var boot = JsonDocument.Parse(r.Out).RootElement.GetProperty("boots")[0];
        Assert.True(boot.GetProperty("outcome").GetString() == "booted", r.Out);
        Assert.True(boot.GetProperty("verify").ValueKind == JsonValueKind.Object, boot.GetProperty("verifyError").ToString());
        return (r.Exit, boot.GetProperty("verify"));
    }

    static string Kernel(string era) => era == "6_1" ? DebianKernels.CloudVmlinuz : DebianKernels.Era(era, "CLOUD");

    [Theory]
    [InlineData("5_10", "qemu64")]
    [InlineData("5_10", "Skylake-Client")]
    [InlineData("6_1", "qemu64")]
    [InlineData("6_1", "Skylake-Client")]
    [InlineData("6_12", "qemu64")]
    [InlineData("6_12", "Skylake-Client")]
    public void CleanBoot_EveryDifferingRangeExplained(string era, string cpu)
    {
        var (exit, v) = BootVerify(Kernel(era), "--cpu", cpu);
        Assert.True(exit == 0, v.ToString());
        Assert.True(v.GetProperty("bytesCompared").GetInt64() > 10_000_000);
        Assert.Equal(0, v.GetProperty("bytesUnreadable").GetInt64());
        Assert.Equal(0, v.GetProperty("unexplained").GetInt32());
        Assert.Equal(0, v.GetProperty("inconsistent").GetInt32());
        Assert.True(v.GetProperty("explained").GetInt32() > 10); // keys and static calls do change after boot
        Assert.Contains(cpu == "qemu64" ? "AMD family 0xf" : "Intel family 0x6", v.GetProperty("cpu").GetString());
        if (cpu == "qemu64") FlippedKeys_RunAtBootByTheirPaths(Kernel(era), v);
        // 6.12's USER_PTR_MAX follows from the image (simulate --boot writes it into its 120 sites): nothing left to explain
        // there; the dentry hash table's constants come from memory and are explained by their live values.
        var details = v.GetProperty("ranges").EnumerateArray().Select(r => r.GetProperty("detail").GetString()!).ToList();
        Assert.DoesNotContain(details, d => d.Contains("USER_PTR_MAX", StringComparison.Ordinal));
        if (era == "6_12") Assert.Contains(details, d => d.StartsWith("runtime_const_ptr(dentry_hashtable) = 0x", StringComparison.Ordinal));
    }

    /// <summary>
    /// The keys whose sites the real boot changed are the truth for "runs at boot": each one has code that changes it
    /// with a boot path (KeyUsers), except DO_ONCE keys, which the first network packets may disable (paths textpoke
    /// does not follow; the crypto self-tests' DO_ONCE, in a kthread started from a notifier, it follows). Measured on the
    /// cloud kernels under qemu64, by name: 5.10 11 of 11, 6.1 14 of 14, 6.12 477 of 477 (460 of them LSM keys kept in
    /// static_calls_table). verify names keys, and a DO_ONCE name stands for several keys: of every key carrying a flipped
    /// name, 1, 2 and 14 have no path, all DO_ONCE keys of networking and fscrypt helpers.
    /// </summary>
    static void FlippedKeys_RunAtBootByTheirPaths(string kernel, JsonElement v)
    {
        var flipped = v.GetProperty("ranges").EnumerateArray().Where(r => r.GetProperty("mechanism").GetString()!.Contains("jump_label"))
            .SelectMany(r => System.Text.RegularExpressions.Regex.Matches(r.GetProperty("detail").GetString()!,
                @"(?:^|; )(\S+) is (?:enabled|disabled) \(enabled=").Select(m => m.Groups[1].Value))
            .ToHashSet();
        Assert.True(flipped.Count >= 10, string.Join(", ", flipped));
        using var image = KernelImage.Open(kernel);
        var symbols = ImageSymbols.Load(image);
        var keys = JumpLabelCheck.Run(image, symbols).Keys.Where(k => flipped.Contains(k.Name)).ToList();
        var users = TextPoke.Emulation.KeyUsers.Find(image, symbols, keys.Select(k => k.Address).ToList());
        var missed = flipped.Where(name => !keys.Any(k => k.Name == name && users[k.Address].Any(u => u.Flips && u.RunsAtBoot))).ToList();
        Assert.True(missed.All(name => name.StartsWith("___once_key", StringComparison.Ordinal)),
            $"{missed.Count} of {flipped.Count} keys that flipped at boot have no boot path: {string.Join(", ", missed)}");
    }

    /// <summary>sysctl kernel.sched_schedstats=1 at run time: every site of the key changed, each explained by its live count.</summary>
    [Fact]
    public void KeyEnabledAtRunTime_ItsSitesAreExplainedByTheKey()
    {
        var (exit, v) = BootVerify(DebianKernels.CloudVmlinuz, "--cpu", "qemu64", "--run", "sysctl -w kernel.sched_schedstats=1");
        Assert.Equal(0, exit);
        var flipped = v.GetProperty("ranges").EnumerateArray()
            .Where(r => r.GetProperty("detail").GetString()!.StartsWith("sched_schedstats is enabled (enabled=1)", StringComparison.Ordinal)).ToList();
        Assert.True(flipped.Count >= 3, $"{flipped.Count} sched_schedstats ranges");
        Assert.All(flipped, r => Assert.Equal("explained", r.GetProperty("verdict").GetString()));
    }

    /// <summary>
    /// A hook written into ksys_write and one disabled sched_schedstats site turned into its JMP, both through QEMU's GDB
    /// stub after boot: exactly those two ranges are reported, named, with the right verdicts.
    /// </summary>
    [Fact]
    public void PlantedHookAndFlippedSite_AreCaughtAndNamed()
    {
        var kernel = DebianKernels.CloudVmlinuz;
        string flip;
        string siteLocation;
        using (var image = KernelImage.Open(kernel))
        {
            var symbols = ImageSymbols.Load(image);
            var report = JumpLabelCheck.Run(image, symbols);
            var site = report.Sites.First(s => report.Keys[s.KeyIndex].Name == "sched_schedstats" && s.Size == 2 && !s.InitText && !s.Entry.Branch);
            siteLocation = symbols.Names.FormatPS(site.Entry.Code);
            flip = $"0x{site.Entry.Code:x}=eb{(byte)(site.Entry.Target - site.Entry.Code - 2):x2}";
        }
        var (exit, v) = BootVerify(kernel, "--cpu", "qemu64", "--inject", "ksys_write+0x10=e900000000", "--inject", flip);
        Assert.Equal(1, exit);
        var bad = v.GetProperty("ranges").EnumerateArray().Where(r => r.GetProperty("verdict").GetString() != "explained").ToList();
        Assert.Equal(2, bad.Count);
        var hook = Assert.Single(bad, r => r.GetProperty("verdict").GetString() == "unexplained");
        Assert.StartsWith("ksys_write+0x10/", hook.GetProperty("location").GetString());
        Assert.Equal("e9 00 00 00 00", hook.GetProperty("live").GetString());
        Assert.Contains(hook.GetProperty("liveCode").EnumerateArray(), l => l.GetString()!.Contains("jmp"));
        var flipped = Assert.Single(bad, r => r.GetProperty("verdict").GetString() == "inconsistent");
        Assert.Equal(siteLocation, flipped.GetProperty("location").GetString());
        Assert.Contains("sched_schedstats is disabled (enabled=0)", flipped.GetProperty("detail").GetString());
    }

    /// <summary>
    /// The same poked 5.10 kernel as EraTests, booted for real on qemu64: it halts before its console, and boot reads the
    /// BUG from the log buffer in guest memory — the line simulate --boot predicted (address aside), from jump_label_init.
    /// </summary>
    [Fact]
    public void V510_PokedSite_RealBootHaltsBeforeTheConsole_TheLogBufferHasThePredictedLine()
    {
        string poked = EraPokes.PokedV510;
        var predicted = CliRun.Run("simulate", "--boot", poked, "--cpu", "qemu64").Lines
            .Single(l => l.StartsWith("  jump_label: Fatal kernel bug", StringComparison.Ordinal)).Trim();
        var boot = CliRun.Run("boot", poked, "--cpu", "qemu64", "--timeout", "120", "--silence", "20");
        Assert.Equal(1, boot.Exit);
        Assert.Contains(boot.Lines, l => l.StartsWith("crashed after ", StringComparison.Ordinal)
            && l.EndsWith(": halted before the console: kernel BUG in __jump_label_set_jump_code (read from the kernel's log buffer in guest memory)"));
        static string WithoutAddress(string line) => System.Text.RegularExpressions.Regex.Replace(line, @" \[[^\]]*\] ", " [] ");
        var logged = boot.Lines.Where(l => l.Contains("| jump_label:", StringComparison.Ordinal))
            .Select(l => WithoutAddress(l[(l.IndexOf('|') + 2)..])).ToList();
        Assert.True(logged.Contains(WithoutAddress(predicted)), $"predicted: {predicted}; logged: {string.Join(" / ", logged)}");
        Assert.Contains(boot.Lines, l => l.Contains("it happened in jump_label_init, called from setup_arch"));
    }

    /// <summary>
    /// One site of a key the kernel enables during boot, per era, poked both ways (an unlikely branch's NOP turned into
    /// its JMP; a likely branch's JMP turned into a NOP), each booted: the kernel's line equals the one simulate --enable
    /// predicts (address aside), and the function the crash names as the key's changer is one simulate lists. The keys
    /// come from a clean boot's verification (ranges explained by a key enabled since boot). 5.10 runs on an Intel model,
    /// whose P6 NOPs skip jump_label_init's early check (the early path has its own test).
    /// </summary>
    [Theory]
    [InlineData("5_10", "Skylake-Client")]
    [InlineData("6_1", "qemu64")]
    [InlineData("6_12", "qemu64")]
    public void PokedSitesOfAKeyEnabledAtBoot_CrashWithThePredictedLineAndTrigger(string era, string cpu)
    {
        var kernel = Kernel(era);
        var (_, clean) = BootVerify(kernel, "--cpu", cpu);
        (string Key, string Location)? Pick(string polarity) => clean.GetProperty("ranges").EnumerateArray()
            .Where(r => r.GetProperty("mechanism").GetString() == "jump_label" && r.GetProperty("verdict").GetString() == "explained")
            .Select(r => (Detail: r.GetProperty("detail").GetString()!, Location: r.GetProperty("location").GetString()!))
            .Where(r => r.Detail.Contains($"is enabled (enabled=1), {polarity} branch", StringComparison.Ordinal) && !r.Detail.Split(' ')[0].Contains('+'))
            .Select(r => ((string Key, string Location)?)(r.Detail.Split(' ')[0], r.Location)).FirstOrDefault();
        var dir = Repo.Scratch($"era-poke-{era}");
        string elf = Path.Combine(dir, "kernel.elf");
        Assert.Equal(0, CliRun.Run("extract", kernel, "-o", elf).Exit);
        int tried = 0;
        foreach (var polarity in new[] { "unlikely", "likely" })
        {
            if (Pick(polarity) is not { } pick) continue;
            tried++;
            string poked = Path.Combine(dir, $"poked-{polarity}.elf");
            Assert.Equal(0, CliRun.Run("poke", elf, "--flip-jump-site", pick.Location, "-o", poked).Exit);
            var simulated = CliRun.Run("simulate", poked, "--enable", pick.Key);
            Assert.Equal(1, simulated.Exit);
            string predicted = simulated.Lines.First(l => l.StartsWith("jump_label: Fatal kernel bug", StringComparison.Ordinal));
            var boot = CliRun.Run("boot", poked, "--cpu", cpu, "--timeout", "180");
            Assert.True(boot.Exit == 1, $"{era} {polarity} {pick.Key} at {pick.Location}: {boot.Out}");
            static string WithoutAddress(string line) => System.Text.RegularExpressions.Regex.Replace(line, @" \[[^\]]*\] ", " [] ");
            var logged = boot.Lines.Where(l => l.Contains("| jump_label: Fatal", StringComparison.Ordinal))
                .Select(l => WithoutAddress(l[(l.IndexOf('|') + 2)..])).ToList();
            // Lines recovered from the log buffer (a BUG before the console) are read through the ring's descriptors: exact too.
            Assert.True(logged.Contains(WithoutAddress(predicted)), $"{era} {polarity}: predicted {predicted}; logged {string.Join(" / ", logged)}");
            // The predicted trigger (the functions simulate says change the key, and their callers) is in the booted call trace.
            int who = simulated.Lines.ToList().FindIndex(l => l.StartsWith($"who changes {pick.Key}:", StringComparison.Ordinal));
            Assert.True(who >= 0, simulated.Out);
            var users = simulated.Lines.Skip(who + 1).TakeWhile(l => l.StartsWith("  ", StringComparison.Ordinal)).ToList();
            var predictedFunctions = users.SelectMany(l => System.Text.RegularExpressions.Regex.Matches(l, @"(?:^\s*|called from |, )([A-Za-z_][\w.]*)")
                .Select(m => m.Groups[1].Value)).ToHashSet();
            // Every frame of the report, from the console log itself (the text output shows the first 16).
            string log = boot.Lines.Single(l => l.StartsWith("log      ", StringComparison.Ordinal))[9..].Split(" (")[0];
            var report = global::TextPoke.Crash.ConsoleLog.Parse(File.ReadAllLines(log)).First(r => r.Type == "BUG");
            var frames = report.Frames.Select(f => global::TextPoke.Crash.ConsoleLog.Function(f.Function)).ToList();
            // Tail calls drop frames (setup_arch's inlined tsc_early_init tail-calls tsc_enable_sched_clock, which tail-calls
            // static_key_enable): then the first frame above static_key_enable must itself call or jump to a predicted function.
            bool matched = frames.Any(predictedFunctions.Contains);
            if (!matched)
            {
                int enable = frames.FindIndex(f => f.StartsWith("static_key_enable", StringComparison.Ordinal) || f.StartsWith("static_key_slow_inc",
                    StringComparison.Ordinal));
                string? caller = enable >= 0 ? frames.Skip(enable + 1).FirstOrDefault(f => !f.StartsWith("static_key_", StringComparison.Ordinal)) : null;
                using var image = KernelImage.Open(elf);
                var symbols = ImageSymbols.Load(image);
                if (caller != null && symbols.Names.Entries.FirstOrDefault(e => e.Name == caller) is { } function
                    && symbols.Names.Lookup(function.Address) is { } hit)
                {
                    var code = new byte[(int)Math.Min(hit.Size, 1UL << 16)];
                    image.Read(function.Address, code);
                    var decoder = Iced.Intel.Decoder.Create(64, new Iced.Intel.ByteArrayCodeReader(code), function.Address);
                    while (decoder.IP < function.Address + (ulong)code.Length && !matched)
                    {
                        decoder.Decode(out var insn);
                        matched = insn.Op0Kind == Iced.Intel.OpKind.NearBranch64
                            && insn.FlowControl is Iced.Intel.FlowControl.Call or Iced.Intel.FlowControl.UnconditionalBranch
                            && symbols.Names.FunctionAt(insn.NearBranch64) is { } t && predictedFunctions.Contains(t);
                    }
                }
            }
            Assert.True(matched, $"{era} {polarity}: predicted {string.Join(", ", predictedFunctions)}; booted trace {string.Join(" < ", frames)}");
        }
        Assert.True(tried > 0, $"{era}: no key enabled at boot with a site to poke");
    }
}
