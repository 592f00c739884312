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
        var dir = Repo.Scratch("era-5.10-boot");
        string elf = Path.Combine(dir, "cloud.elf"), poked = Path.Combine(dir, "poked.elf");
        Assert.Equal(0, CliRun.Run("extract", DebianKernels.Era("5_10", "CLOUD"), "-o", elf).Exit);
        Assert.Equal(0, CliRun.Run("poke", elf, "--flip-jump-key", "sched_schedstats", "-o", poked).Exit);
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
}
