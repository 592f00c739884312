using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Real;

/// <summary>
/// A Clang ThinLTO kernel — the seed's build mode — built from Debian's linux-source-6.1 with clang-19/lld-19 by
/// scripts/build-clang-kernel (config: tests/kernels/clang-thinlto.config), cached after the first build.
/// </summary>
[Trait("Tier", "full")]
public class ClangKernelTests
{
    static readonly Lazy<Dictionary<string, string>> Build = new(() =>
        Tool.Run(Path.Combine(Repo.Root, "scripts", "build-clang-kernel"), [])
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]));

    [Theory]
    [InlineData("VMLINUX")]
    [InlineData("BZIMAGE")]
    public void ClangThinLtoKernel_EveryTableReadWithoutFindings(string which)
    {
        Assert.Contains("CONFIG_LTO_CLANG_THIN=y", File.ReadAllText(Build.Value["CONFIG"]));
        using var image = KernelImage.Open(Build.Value[which]);
        Assert.Contains("clang version 19", image.Banner);
        var symbols = ImageSymbols.Load(image, lookBeside: false);
        var result = CheckRunner.Run(image, symbols);
        Assert.Empty(result.Findings);
        Assert.True(result.Jump!.Stats!.Entries > 100, "a ThinLTO kernel with JUMP_LABEL has jump entries");
        Assert.Equal(global::TextPoke.Tables.JumpLabelEra.RelativeVariable, result.Jump.Era);
        Assert.Contains(result.Jump.Keys, k => k.Name == "frontswap_enabled_key");
        // Every table the config enables is read, none is left undecided.
        foreach (var name in new[] { "return_sites", "retpoline_sites", "mcount", "static_calls", "bug_table", "orc", "alt", "paravirt" })
        {
            var table = result.Tables.Single(t => t.Name == name);
            Assert.True(table.Absent == null, $"{name}: {table.Absent}");
        }
    }

    [Fact]
    public void ClangThinLtoKernel_BootSimulationOnQemu64IsClean()
    {
        using var image = KernelImage.Open(Build.Value["VMLINUX"]);
        var symbols = ImageSymbols.Load(image, lookBeside: false);
        var names = global::TextPoke.Emulation.CpuFeatureNames.Load(image, symbols);
        var boot = global::TextPoke.Emulation.BootPatcher.Run(image, symbols, global::TextPoke.Emulation.CpuModel.Parse("qemu64", names), names);
        Assert.Equal(0, boot.Bugs + boot.Warnings);
        var steps = boot.Steps.ToDictionary(s => s.Name);
        // objtool --mnop wrote the ftrace NOPs at build time (CC_USING_NOP_MCOUNT): ftrace_init leaves them.
        Assert.StartsWith("every site is already the 5-byte NOP", steps["ftrace"].Skipped);
        Assert.True(steps["returns"].Changed > 1000 && steps["alternatives"].Changed > 100 && steps["static_calls"].Changed > 100);
    }
}
