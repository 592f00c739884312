using System.Text.RegularExpressions;
using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Real;

/// <summary>
/// The seed on a real kernel: Debian 6.1.0-53 with the frontswap_enabled_key site in swap_writepage flipped (found by
/// key and function), simulated, explained and repaired; compared with the console log of that kernel's real boot.
/// </summary>
[Trait("Tier", "full")]
public class DebianSimulateTests
{
    static readonly string[] BootLog = File.ReadAllLines(Repo.BootLog("debian-6.1.0-53-amd64-swap_writepage-jmp.log"));

    static string Console(string text) => text[(text.IndexOf("] ", StringComparison.Ordinal) + 2)..];
    static string Unhash(string line) => Regex.Replace(line, @"\[[0-9a-f]{16}\]", "[%p]");

    [Fact]
    public void PokeSimulateFix_ReproducesTheRealBoot_AndRestoresTheOriginalBytes()
    {
        var vmlinuz = DebianKernels.GoldenVmlinuz;
        var inputHash = Repo.Sha256(vmlinuz);
        int index;
        using (var image = KernelImage.Open(vmlinuz))
        {
            var symbols = ImageSymbols.Load(image);
            var report = JumpLabelCheck.Run(image, symbols);
            var sites = report.Sites.Where(s => report.Keys[s.KeyIndex].Name == "frontswap_enabled_key").OrderBy(s => s.Entry.Code).ToList();
            index = sites.FindIndex(s => symbols.Names.FunctionAt(s.Entry.Code) == "swap_writepage");
            Assert.True(index >= 0);
        }
        var dir = Repo.Scratch("seed");
        string poked = Path.Combine(dir, "poked.elf"), fixedElf = Path.Combine(dir, "fixed.elf"), original = Path.Combine(dir, "original.elf");
        var poke = CliRun.Run("poke", vmlinuz, "--flip-jump-key", "frontswap_enabled_key", "--index", index.ToString(), "-o", poked);
        Assert.Equal(0, poke.Exit);
        Assert.Contains("writing the decompressed ELF, not a bzImage", poke.Out);

        var sim = CliRun.Run("simulate", poked, "--enable", "frontswap_enabled_key");
        Assert.Equal(1, sim.Exit);
        string bootLine = Console(BootLog.Single(l => l.Contains("jump_label: Fatal kernel bug")));
        string simLine = sim.Lines.Single(l => l.StartsWith("jump_label: Fatal kernel bug"));
        Assert.Equal(Unhash(bootLine), Unhash(simLine));
        Assert.Equal("jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x27/0xa0 [ffffffff812ff407] (eb 0d 48 89 ee != 66 90 0f 1f 00)) size:2 " +
            "type:1", simLine);
        // The lines that follow in the real log: cut here, kernel BUG, and (after the die banner) the RIP.
        int at = Array.IndexOf(sim.Lines, simLine);
        Assert.Equal(Console(BootLog.First(l => l.Contains("cut here"))), sim.Lines[at + 1]);
        Assert.Equal(Console(BootLog.First(l => l.Contains("kernel BUG at"))), sim.Lines[at + 2]);
        Assert.Equal(Console(BootLog.First(l => l.Contains("RIP: "))), sim.Lines[at + 3]);
        var who = sim.Lines.Single(l => l.TrimStart().StartsWith("frontswap_register_ops+"));
        Assert.Contains("static_key_slow_inc(&frontswap_enabled_key)", who);
        Assert.Contains("init_zswap (init)", who);
        Assert.Contains("runs at boot", who);

        var fix = CliRun.Run("fix", poked, "-o", fixedElf);
        Assert.Equal(0, fix.Exit);
        Assert.Equal(0, CliRun.Run("check", fixedElf).Exit);
        using (var image = KernelImage.Open(vmlinuz)) File.WriteAllBytes(original, image.ElfImage.ToArray());
        Assert.Equal(Repo.Sha256(original), Repo.Sha256(fixedElf));
        Assert.Equal(inputHash, Repo.Sha256(vmlinuz));
    }

    [Fact]
    public void UnmodifiedKernel_FlipAll_HasNoBugAndNoWarning()
    {
        var r = CliRun.Run("simulate", DebianKernels.GenericVmlinuz, "--flip-all");
        Assert.Equal(0, r.Exit);
        Assert.Contains("result: no BUG and no WARNING: every site switched as the kernel expects", r.Lines);
    }
}
