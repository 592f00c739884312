using System.Text.Json;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Real;

/// <summary>
/// SARIF with source lines on a real kernel: Debian's 6.1.0-53 vmlinuz with one jump-label site flipped, checked with
/// its unstripped vmlinux (the -dbg package) — the result points at the C line addr2line names for the site; and the
/// seed's Debian crash log decoded with the same vmlinux points at the line of the BUG.
/// </summary>
[Trait("Tier", "full")]
public class SarifDwarfTests
{
    [Fact]
    public void PokedDebianKernel_ResultAtTheSitesSourceLine()
    {
        var dbg = DebianKernels.Get("GOLDEN_DBG_VMLINUX");
        var poked = Path.Combine(Repo.Scratch("sarif-dwarf"), "vmlinuz");
        Assert.Equal(0, CliRun.Run("poke", DebianKernels.GoldenVmlinuz, "--flip-jump-key", "sched_schedstats", "-o", poked).Exit);
        var r = CliRun.Run("check", poked, "--vmlinux", dbg, "--format", "sarif");
        Assert.Equal(1, r.Exit);
        using var doc = JsonDocument.Parse(r.Out);
        var result = Assert.Single(doc.RootElement.GetProperty("runs")[0].GetProperty("results").EnumerateArray());
        var address = result.GetProperty("properties").GetProperty("address").GetString()!;
        var physical = result.GetProperty("locations")[0].GetProperty("physicalLocation");
        string uri = physical.GetProperty("artifactLocation").GetProperty("uri").GetString()!;
        int line = physical.GetProperty("region").GetProperty("startLine").GetInt32();
        // addr2line -i prints the innermost frame first and the function that holds the site last.
        var outer = Tool.Run("addr2line", ["-i", "-e", dbg, address]).Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Split(" (discriminator")[0];
        Assert.Equal(outer.Replace("debian/build/build_amd64_none_amd64/", ""), $"{uri}:{line}");
        Assert.Equal("kernel/sched/core.c", uri);
        Assert.Equal("SRCROOT", physical.GetProperty("artifactLocation").GetProperty("uriBaseId").GetString());

        // Another kernel's vmlinux is refused rather than giving wrong lines.
        var other = CliRun.Run("check", poked, "--vmlinux", DebianKernels.GenericVmlinuz, "--format", "sarif");
        Assert.Equal(2, other.Exit);
        Assert.Contains("another kernel", other.Err);
    }

    [Fact]
    public void DebianCrashLog_DecodedWithDwarf_ResultAtTheBugsLine()
    {
        var r = CliRun.Run("decode", Repo.BootLog("debian-6.1.0-53-amd64-swap_writepage-jmp.log"), "--vmlinux", DebianKernels.Get("GOLDEN_DBG_VMLINUX"),
            "--format", "sarif");
        Assert.Equal(1, r.Exit);
        using var doc = JsonDocument.Parse(r.Out);
        var result = Assert.Single(doc.RootElement.GetProperty("runs")[0].GetProperty("results").EnumerateArray());
        var physical = result.GetProperty("locations")[0].GetProperty("physicalLocation");
        Assert.Equal("arch/x86/kernel/jump_label.c", physical.GetProperty("artifactLocation").GetProperty("uri").GetString());
        Assert.Equal(73, physical.GetProperty("region").GetProperty("startLine").GetInt32());
        var inLog = result.GetProperty("relatedLocations")[0];
        Assert.EndsWith(".log", inLog.GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("uri").GetString());
    }
}
