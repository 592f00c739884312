using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tables;
using TextPoke.Tests.Support;
using TextPoke.X86;

namespace TextPoke.Tests.Real;

/// <summary>
/// Real Debian kernels (apt-get download, cached by scripts/fetch-kernels): an unmodified distro kernel gives zero
/// findings; a copy with one NOP site turned into the JMP to its target gives exactly one finding with the kernel's line.
/// </summary>
[Trait("Tier", "full")]
public class DebianKernelTests
{
    static (int Findings, JumpLabelReport Report, ImageSymbols Symbols) CheckFile(string path)
    {
        using var image = KernelImage.Open(path);
        var symbols = ImageSymbols.Load(image);
        var report = JumpLabelCheck.Run(image, symbols);
        return (report.Findings.Count, report, symbols);
    }

    static void CleanAndCounted(string vmlinuz)
    {
        using var image = KernelImage.Open(vmlinuz);
        Assert.Equal(ImageKind.BzImage, image.Kind);
        Assert.Null(image.Elf.Section("__jump_table"));
        var symbols = ImageSymbols.Load(image);
        Assert.Equal(SymbolSource.Kallsyms, symbols.Names.Source);
        Assert.Contains(symbols.Notes, n => n.Contains("Debian's one-line stub"));
        var report = JumpLabelCheck.Run(image, symbols);
        Assert.Empty(report.Findings);
        Assert.True(symbols.TryFind(JumpTable.StartSymbol, out ulong start, out _));
        Assert.True(symbols.TryFind(JumpTable.StopSymbol, out ulong stop, out _));
        Assert.Equal((int)((stop - start) / 16), report.Stats!.Entries);
        Assert.True(report.Stats.Entries > 5000);
        Assert.Equal(JumpLabelEra.RelativeVariable, report.Era);
        Assert.Equal(0, report.Stats.Other);
    }

    [Fact]
    public void GenericVmlinuz_IsClean_AndEveryEntryIsCounted() => CleanAndCounted(DebianKernels.GenericVmlinuz);

    [Fact]
    public void CloudVmlinuz_Lz4_IsClean_AndEveryEntryIsCounted() => CleanAndCounted(DebianKernels.CloudVmlinuz);

    /// <summary>Turns one NOP site into the JMP to its target in a copy of the payload ELF; returns the copy and the site.</summary>
    static (string Path, JumpSite Site, string Location) PokeCopy(string vmlinuz, Func<JumpLabelReport, ImageSymbols, JumpSite> choose)
    {
        using var image = KernelImage.Open(vmlinuz);
        var symbols = ImageSymbols.Load(image);
        var report = JumpLabelCheck.Run(image, symbols);
        var site = choose(report, symbols);
        Assert.Equal(SiteState.Nop, site.State);
        var (jmp, fits) = X86Code.GenerateInstruction(site.Size == 2 ? X86Code.Jmp8Opcode : X86Code.Jmp32Opcode, site.Entry.Code, site.Entry.Target);
        Assert.True(fits);
        var copy = Path.Combine(Repo.Scratch("poked"), "vmlinux-poked");
        File.WriteAllBytes(copy, ImageWriter.PatchedElf(image, [(site.Entry.Code, jmp[..site.Size])]));
        return (copy, site, symbols.Names.FormatPS(site.Entry.Code));
    }

    static string Expected(string copy, JumpSite site, string location)
    {
        using var image = KernelImage.Open(copy);
        var five = new byte[5];
        image.Read(site.Entry.Code, five);
        Assert.Equal(site.Size == 2 ? 0xeb : 0xe9, five[0]);
        string nop = site.Size == 2 ? "66 90 0f 1f 00" : "0f 1f 44 00 00";
        return $"jump_label: Fatal kernel bug, unexpected op at {location} [{site.Entry.Code:x16}] ({X86Code.Hex(five)} != {nop})) size:{site.Size} type:1";
    }

    [Fact]
    public void GenericVmlinuz_OnePokedSite_GivesExactlyOneFindingWithTheKernelsLine()
    {
        var (copy, site, location) = PokeCopy(DebianKernels.GenericVmlinuz, (r, s) =>
            r.Sites.Single(x => r.Keys[x.KeyIndex].Name == "frontswap_enabled_key" && s.Names.FunctionAt(x.Entry.Code) == "swap_writepage"));
        Assert.StartsWith("swap_writepage+0x", location);
        var (count, report, _) = CheckFile(copy);
        Assert.Equal(1, count);
        var f = report.Findings[0];
        Assert.Equal("jump.objtool-not-run", f.Rule);
        Assert.Equal([Expected(copy, site, location), "kernel BUG at arch/x86/kernel/jump_label.c:73!"], f.KernelLines);
    }

    [Fact]
    public void CloudVmlinuz_OnePokedSite_GivesExactlyOneFindingWithTheKernelsLine()
    {
        var (copy, site, location) = PokeCopy(DebianKernels.CloudVmlinuz, (r, s) =>
            r.Sites.First(x => x.Size == 2 && x.State == SiteState.Nop && x.ExpectJump == false && !x.InitText && r.Keys[x.KeyIndex].InitialValue == false));
        var (count, report, _) = CheckFile(copy);
        Assert.Equal(1, count);
        Assert.Equal(Expected(copy, site, location), report.Findings[0].KernelLines[0]);
    }

    [Fact]
    public void Debian_6_1_0_53_PokedAtSwapWritepage_PrintsTheLineOfTheRealBoot()
    {
        var (copy, _, _) = PokeCopy(DebianKernels.GoldenVmlinuz, (r, s) =>
            r.Sites.Single(x => r.Keys[x.KeyIndex].Name == "frontswap_enabled_key" && s.Names.FunctionAt(x.Entry.Code) == "swap_writepage"));
        var (count, report, _) = CheckFile(copy);
        Assert.Equal(1, count);
        const string line = "jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x27/0xa0 [ffffffff812ff407] (eb 0d 48 89 ee != 66 90 0f 1f 00)) " +
            "size:2 type:1";
        Assert.Equal(line, report.Findings[0].KernelLines[0]);
        // The real console log of that poked kernel, apart from the hashed %p value.
        var log = File.ReadAllLines(Repo.BootLog("debian-6.1.0-53-amd64-swap_writepage-jmp.log"));
        var booted = log.Single(l => l.Contains("jump_label: Fatal kernel bug"));
        booted = booted[(booted.IndexOf("] ", StringComparison.Ordinal) + 2)..];
        Assert.Equal(
            System.Text.RegularExpressions.Regex.Replace(line, @"\[[0-9a-f]{16}\]", "[%p]"),
            System.Text.RegularExpressions.Regex.Replace(booted, @"\[[0-9a-f]{16}\]", "[%p]"));
    }

    [Fact]
    public void CloudKallsyms_MatchTheRealSystemMap_SymbolForSymbol()
    {
        using var image = KernelImage.Open(DebianKernels.CloudVmlinuz);
        var (layout, symbols, reason) = Kallsyms.Recover(image);
        Assert.True(layout != null, reason);
        var map = new HashSet<(ulong, string)>();
        foreach (var line in File.ReadLines(DebianKernels.CloudSystemMap))
        {
            var p = line.Split(' ');
            map.Add((Convert.ToUInt64(p[0], 16), p[2]));
        }
        Assert.True(symbols.Length > 80000);
        var missing = symbols.Where(s => !map.Contains((s.Address, s.Name))).Take(5).ToList();
        Assert.True(missing.Count == 0, $"not in System.map: {string.Join(", ", missing.Select(m => $"{m.Address:x} {m.Name}"))}");
        Assert.Contains(symbols, s => s.Name == JumpTable.StartSymbol);
    }

    [Fact]
    public void RealSystemMap_IsAcceptedForItsKernel_AndRejectedForAnother()
    {
        var ok = CliRun.Run("check", DebianKernels.CloudVmlinuz, "--system-map", DebianKernels.CloudSystemMap);
        Assert.Equal(0, ok.Exit);
        var bad = CliRun.Run("check", DebianKernels.GenericVmlinuz, "--system-map", DebianKernels.CloudSystemMap);
        Assert.Equal(2, bad.Exit);
        Assert.Contains("does not match", bad.Err);
    }
}
