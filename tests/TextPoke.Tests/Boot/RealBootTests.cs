using System.Diagnostics;
using System.Text.Json;
using TextPoke.Images;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Boot;

/// <summary>The seed end to end on Debian's kernel under QEMU (TCG where KVM cannot run it): poke, boot, crash, fix, boot.</summary>
[Trait("Tier", "full")]
public class RealBootTests
{
    static string Payload(string name)
    {
        var path = Path.Combine(Repo.Scratch("realboot"), name);
        using var image = KernelImage.Open(DebianKernels.GoldenVmlinuz);
        File.WriteAllBytes(path, image.ElfImage.ToArray());
        return path;
    }

    static JsonElement Boot(params string[] args)
    {
        var r = CliRun.Run(["boot", .. args, "--json"]);
        Assert.True(r.Err.Length == 0 || r.Err.StartsWith("textpoke"), r.Err);
        return JsonDocument.Parse(r.Out).RootElement;
    }

    static bool QemuRunningFor(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("pgrep", ["-f", path]) { RedirectStandardOutput = true })!;
        p.WaitForExit();
        return p.ExitCode == 0;
    }

    [Fact]
    public void PokedKernelCrashes_FixedAndOriginalBoot()
    {
        var original = Payload("original.elf");
        var poked = Path.Combine(Path.GetDirectoryName(original)!, "poked.elf");
        var fixedElf = Path.Combine(Path.GetDirectoryName(original)!, "fixed.elf");
        Assert.Equal(0, CliRun.Run("poke", original, "--flip-jump-key", "frontswap_enabled_key", "-o", poked).Exit);

        var crash = CliRun.Run("boot", poked, "--timeout", "120");
        Assert.Equal(1, crash.Exit);
        Assert.Contains(crash.Lines, l => l.StartsWith("crashed after ") && l.EndsWith(": kernel BUG in __jump_label_patch"));
        Assert.Contains(crash.Lines, l => l.StartsWith("  | jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x27/0xa0 [")
            && l.EndsWith("(eb 0d 48 89 ee != 66 90 0f 1f 00)) size:2 type:1"));
        Assert.Contains(crash.Lines, l => l.Contains("the key was changed by frontswap_register_ops, called from init_zswap"));
        Assert.Contains(crash.Lines, l => l.Contains("key frontswap_enabled_key (initially off, .bss), static_branch_unlikely"));
        Assert.Contains(crash.Lines, l => l.Contains("on disk the image holds eb 0d at swap_writepage+0x27/0xa0: the bad instruction is in the file"));
        Assert.False(QemuRunningFor(poked));

        Assert.Equal(0, CliRun.Run("fix", poked, "-o", fixedElf).Exit);
        var fixedBoot = Boot(fixedElf, "--timeout", "120");
        Assert.Equal("booted", fixedBoot.GetProperty("boots")[0].GetProperty("outcome").GetString());
        Assert.Equal(0, fixedBoot.GetProperty("failed").GetInt32());

        var originalBoot = Boot(original, "--timeout", "120", "--run", "cat /proc/version");
        var boot = originalBoot.GetProperty("boots")[0];
        Assert.Equal("booted", boot.GetProperty("outcome").GetString());
        Assert.Equal(0, boot.GetProperty("reports").GetArrayLength());
        Assert.Contains("6.1.0-53-amd64", File.ReadAllText(boot.GetProperty("log").GetString()!));
    }

    [Fact]
    public void HangingKernelCommandLine_EndsAtTheTimeout_WithNoQemuLeft()
    {
        var original = Payload("hang.elf");
        var clock = Stopwatch.StartNew();
        var r = CliRun.Run("boot", original, "--append", "rdinit=/bin/busybox -- sleep 600", "--timeout", "15");
        clock.Stop();
        Assert.Equal(4, r.Exit);
        Assert.Contains(r.Lines, l => l.StartsWith("timed out after ") && l.EndsWith("no verdict within 15 s"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(40), $"took {clock.Elapsed}");
        Assert.False(QemuRunningFor(original));
    }
}
