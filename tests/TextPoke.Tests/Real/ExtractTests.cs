using TextPoke.Tests.Support;

namespace TextPoke.Tests.Real;

[Trait("Tier", "full")]
public class ExtractTests
{
    [Fact]
    public void Extract_GivesAnElfThatObjdumpDisassemblesWithSymbols()
    {
        var output = Path.Combine(Repo.Scratch("extract"), "vmlinux.elf");
        var r = CliRun.Run("extract", DebianKernels.GoldenVmlinuz, "-o", output);
        Assert.Equal(0, r.Exit);
        Assert.Contains(".symtab with 94177 symbols from kallsyms", r.Out);
        var disassembly = Tool.Run("objdump", ["-d", "--disassemble=swap_writepage", output]);
        Assert.Contains("ffffffff812ff3e0 <swap_writepage>:", disassembly);
        Assert.Contains("ffffffff812ff407:\t66 90", disassembly);
        Assert.Contains("<__fentry__>", disassembly);
        var nm = Tool.Run("nm", ["-S", output]);
        Assert.Contains("ffffffff812ff3e0 00000000000000a0 T swap_writepage", nm);
        Assert.Contains("ffffffff83fdfe70 0000000000000010 B frontswap_enabled_key", nm);
        Assert.Equal(94177, nm.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        // textpoke reads its own output, and the check agrees with the vmlinuz.
        Assert.Equal(0, CliRun.Run("check", output).Exit);
    }

    [Fact]
    public void Extract_RefusesToOverwriteItsInput_AndNeedsAnOutput()
    {
        Assert.Equal(2, CliRun.Run("extract", DebianKernels.GoldenVmlinuz).Exit);
        Assert.Equal(2, CliRun.Run("extract", DebianKernels.GoldenVmlinuz, "-o", DebianKernels.GoldenVmlinuz).Exit);
    }
}
