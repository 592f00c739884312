using TextPoke.Checks;
using TextPoke.Emulation;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tables;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Real;

/// <summary>
/// Debian's other suites, as a user meets them: bullseye's 5.10 and trixie's 6.12, generic, cloud and rt (fetched through
/// a private apt state by scripts/fetch-kernels). Every stock kernel checks clean, its kallsyms are the -dbg package's
/// System.map, every jump entry is counted, and the boot emulation follows the era.
/// </summary>
[Trait("Tier", "full")]
public class EraTests
{
    public static TheoryData<string, string> Kernels => new()
    {
        { "5_10", "GENERIC" }, { "5_10", "CLOUD" }, { "6_12", "GENERIC" }, { "6_12", "CLOUD" }, { "6_12", "RT" },
    };

    [Theory]
    [MemberData(nameof(Kernels))]
    public void StockKernel_ChecksClean_EveryJumpEntryCounted(string era, string flavour)
    {
        var path = DebianKernels.Era(era, flavour);
        var r = CliRun.Run("check", path);
        Assert.True(r.Exit == 0, r.Out + r.Err);
        Assert.Contains(r.Lines, l => l.StartsWith("result: clean, 0 findings", StringComparison.Ordinal));
        using var image = KernelImage.Open(path);
        var symbols = ImageSymbols.Load(image);
        Assert.Equal(SymbolSource.Kallsyms, symbols.Names.Source);
        var report = JumpLabelCheck.Run(image, symbols);
        Assert.True(symbols.TryFind(JumpTable.StartSymbol, out ulong start, out _));
        Assert.True(symbols.TryFind(JumpTable.StopSymbol, out ulong stop, out _));
        Assert.Equal((int)((stop - start) / 16), report.Stats!.Entries);
        Assert.Equal(era == "5_10" ? JumpLabelEra.RelativeFixed : JumpLabelEra.RelativeVariable, report.Era);
        Assert.Equal(era == "5_10" ? "5.10" : "6.12", CpuFeatureNames.Load(image, symbols).Table);
    }

    [Theory]
    [InlineData("5_10")]
    [InlineData("6_12")]
    public void CloudKallsyms_AreTheDbgPackagesSystemMap(string era)
    {
        using var image = KernelImage.Open(DebianKernels.Era(era, "CLOUD"));
        var (layout, symbols, reason) = Kallsyms.Recover(image);
        Assert.True(layout != null, reason);
        var map = new HashSet<(ulong, string)>();
        foreach (var line in File.ReadLines(DebianKernels.EraSystemMap(era)))
        {
            var p = line.Split(' ');
            map.Add((Convert.ToUInt64(p[0], 16), p[2]));
        }
        Assert.True(symbols.Length > 80000);
        // 5.10's kallsyms keep the assembler's local labels (.LC0, ...), which scripts/mksysmap drops from System.map.
        var missing = symbols.Where(s => !s.Name.StartsWith(".L", StringComparison.Ordinal) && !map.Contains((s.Address, s.Name))).Take(5).ToList();
        Assert.True(missing.Count == 0, $"not in System.map: {string.Join(", ", missing.Select(m => $"{m.Address:x} {m.Name}"))}");
        Assert.True(symbols.Count(s => !s.Name.StartsWith(".L", StringComparison.Ordinal)) > map.Count * 0.95);
    }

    [Theory]
    [InlineData("5_10")]
    [InlineData("6_12")]
    public void GenericModuleTree_ChecksClean(string era)
    {
        var tree = DebianKernels.EraModules(era);
        int count = Directory.EnumerateFiles(tree, "*.ko*", SearchOption.AllDirectories).Count();
        Assert.True(count > 3000);
        var r = CliRun.Run("check", tree);
        Assert.True(r.Exit == 0, r.Out + r.Err);
        Assert.Contains($"  total: {count} modules:", r.Out);
        Assert.Contains(r.Lines, l => l.StartsWith("result: clean, 0 findings", StringComparison.Ordinal));
    }

    /// <summary>
    /// A 5.10 kernel with one disabled branch's NOP turned into its JMP: on qemu64 (K8 NOPs) the emulated boot BUGs in
    /// jump_label_init with line 45, before the console; on an Intel CPU with P6 NOPs it boots (the BUG waits for the key).
    /// </summary>
    [Fact]
    public void V510_PokedSite_SimulateBootPredictsTheEarlyBug_OnK8NopsOnly()
    {
        string poked = EraPokes.PokedV510;
        var k8 = CliRun.Run("simulate", "--boot", poked, "--cpu", "qemu64");
        Assert.Equal(1, k8.Exit);
        Assert.Contains(k8.Lines, l => l.StartsWith("BUG in jump_label_init() at ", StringComparison.Ordinal));
        Assert.Contains(k8.Lines, l => l.StartsWith("  jump_label: Fatal kernel bug, unexpected op at ", StringComparison.Ordinal) && l.EndsWith(") 45"));
        Assert.Contains("  kernel BUG at arch/x86/kernel/jump_label.c:27!", k8.Lines);
        var p6 = CliRun.Run("simulate", "--boot", poked, "--cpu", "qemu64,vendor=intel,family=6,model=0x5e");
        Assert.Equal(0, p6.Exit);
    }
}
