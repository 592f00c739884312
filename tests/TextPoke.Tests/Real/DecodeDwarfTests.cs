using System.Text.Json;
using TextPoke.Crash;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Real;

/// <summary>
/// The Debian crash log of tests/data/boot-logs decoded against its kernel's unstripped vmlinux (Debian's
/// linux-image-6.1.0-53-amd64-dbg): every frame gets file:line, the same as addr2line -i on the same vmlinux.
/// </summary>
[Trait("Tier", "full")]
public class DecodeDwarfTests
{
    static string CrashLog => Repo.BootLog("debian-6.1.0-53-amd64-swap_writepage-jmp.log");

    [Fact]
    public void DebianCrash_EveryFrameHasFileAndLine_AsAddr2LineSays()
    {
        var vmlinux = DebianKernels.Get("GOLDEN_DBG_VMLINUX");
        var r = CliRun.Run("decode", CrashLog, "--vmlinux", vmlinux, "--json");
        Assert.Equal(1, r.Exit);
        var doc = JsonDocument.Parse(r.Out).RootElement;
        Assert.True(doc.GetProperty("debugInfo").GetBoolean());
        Assert.Equal("0x0", doc.GetProperty("kaslrOffset").GetString()); // "Kernel Offset: disabled"
        var report = Assert.Single(doc.GetProperty("reports").EnumerateArray());
        var rip = report.GetProperty("ripSource");
        Assert.Equal("arch/x86/kernel/jump_label.c", rip.GetProperty("file").GetString());
        Assert.Equal(73, rip.GetProperty("line").GetInt32()); // the BUG() of "kernel BUG at arch/x86/kernel/jump_label.c:73!"

        var frames = report.GetProperty("frames").EnumerateArray().ToList();
        Assert.Equal(12, frames.Count);
        var addresses = new List<string>();
        foreach (var f in frames)
        {
            Assert.True(f.GetProperty("file").GetString() is { Length: > 0 }, f.ToString());
            Assert.True(f.GetProperty("line").GetInt32() > 0, f.ToString());
            Assert.Equal(JsonValueKind.Null, f.GetProperty("sizeProblem").ValueKind);
            addresses.Add(f.GetProperty("imageAddress").GetString()!);
        }
        var byFunction = frames.ToDictionary(f => f.GetProperty("function").GetString()!, f => f);
        Assert.Equal("mm/frontswap.c", byFunction["frontswap_register_ops"].GetProperty("file").GetString());
        Assert.Equal("arch/x86/kernel/jump_label.c", byFunction["arch_jump_label_transform_queue"].GetProperty("file").GetString());
        // kernel_init_freeable inlines do_basic_setup -> do_initcalls -> do_initcall_level: three levels above the line.
        var inlined = byFunction["kernel_init_freeable"].GetProperty("inlinedBy").EnumerateArray().Select(l => l.GetProperty("function").GetString()).ToList();
        Assert.Equal(["do_initcalls", "do_basic_setup", "kernel_init_freeable"], inlined);
        Assert.Equal("do_initcall_level", byFunction["kernel_init_freeable"].GetProperty("sourceFunction").GetString());

        // The same answers as binutils' addr2line -i on the same vmlinux, frame by frame.
        var output = Tool.Run("addr2line", ["-i", "-a", "-e", vmlinux, .. addresses]);
        var expected = new List<List<string>>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            if (line.StartsWith("0x", StringComparison.Ordinal)) expected.Add([]);
            else expected[^1].Add(line.Replace("debian/build/build_amd64_none_amd64/", ""));
        for (int i = 0; i < frames.Count; i++)
        {
            var f = frames[i];
            var ours = new List<string> { Where(f.GetProperty("file").GetString()!, f.GetProperty("line").GetInt32()) };
            ours.AddRange(f.GetProperty("inlinedBy").EnumerateArray().Select(l => Where(l.GetProperty("file").GetString()!, l.GetProperty("line").GetInt32())));
            Assert.Equal(expected[i].Select(e => e.Split(" (discriminator")[0]), ours);
        }
    }

    static string Where(string file, int line) => $"{file}:{line}";

    [Fact]
    public void DebianCrash_TextOutput_OneScreenWithFileLineForEveryFrame()
    {
        var r = CliRun.Run("decode", CrashLog, "--vmlinux", DebianKernels.Get("GOLDEN_DBG_VMLINUX"));
        Assert.Contains(r.Lines, l => l.StartsWith("source   DWARF of ") && l.Contains("paths relative to debian/build/build_amd64_none_amd64/"));
        Assert.Contains(r.Lines, l => l.Trim() == "frontswap_register_ops+0x22/0x40 mm/frontswap.c:104");
        Assert.Contains(r.Lines, l => l.Trim() == "arch/x86/kernel/jump_label.c:73 (__jump_label_patch.cold)");
        // The -dbg vmlinux is the unmodified image too: the explainer reads the site from it.
        Assert.Contains(r.Lines, l => l.Contains("on disk the image holds 66 90 at swap_writepage+0x27/0xa0"));
        Assert.True(r.Lines.Length < 80, $"{r.Lines.Length} lines");
    }

    [Fact]
    public void WrongVmlinux_SizesDisagree_AndTheFramesSaySo()
    {
        // The crash came from 6.1.0-53; the 6.1.0-56 cloud kernel's functions have other sizes.
        var r = CliRun.Run("decode", CrashLog, "--vmlinux", DebianKernels.CloudVmlinuz, "--json");
        var frames = JsonDocument.Parse(r.Out).RootElement.GetProperty("reports")[0].GetProperty("frames").EnumerateArray().ToList();
        Assert.Contains(frames, f => f.GetProperty("sizeProblem").GetString()?.Contains("probably not the vmlinux that crashed") == true);
    }

    [Fact]
    public void ModuleFrames_ResolvedFromTheModulesOwnDwarf_AsAddr2LineSays()
    {
        var modules = DebianKernels.Get("GOLDEN_DBG_MODULES");
        using var symbolizer = Symbolizer.Open(DebianKernels.Get("GOLDEN_DBG_VMLINUX"), modules);
        // veth_xmit is at .text+0x1a60 in veth.ko; kallsyms gives it 0x270 bytes (up to the next symbol).
        var frame = symbolizer.Resolve("veth_xmit", 0x40, 0x270, "veth");
        Assert.NotNull(frame);
        Assert.Null(frame!.Problem);
        var expected = Tool.Run("addr2line", ["-i", "-f", "-j", ".text", "-e", Path.Combine(modules, "veth.ko"), "0x1aa0"])
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Replace("debian/build/build_amd64_none_amd64/", "")).ToList();
        var ours = frame.Chain.SelectMany(c => new[] { c.Function!, c.Location }).ToList();
        Assert.Equal(expected, ours);
        Assert.Equal("drivers/net/veth.c", frame.Chain[^1].File);
        Assert.Null(symbolizer.Resolve("no_such_function", 0, 0x10, "veth"));
        Assert.Null(symbolizer.Resolve("veth_xmit", 0, 0x270, "not_a_module"));
    }
}
