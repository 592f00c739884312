using System.Text.Json;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Cli;

/// <summary>textpoke decode on real logs: the seed's, the Debian reproduction with its kernel, a clean boot, bad input.</summary>
public class DecodeTests
{
    static string BootLog(string name) => Repo.BootLog(name);
    static string SeedLog => Repo.SeedLog;

    [Fact]
    public void SeedLog_OneJumpLabelBug_ExitOne()
    {
        var r = CliRun.Run("decode", SeedLog);
        Assert.Equal(1, r.Exit);
        Assert.Contains("report   kernel BUG in __jump_label_patch  [BUG]", r.Lines);
        Assert.Contains(r.Lines, l => l.TrimStart() == "2a:* 0f 0b                 ud2    <-- trapping instruction");
        Assert.Contains("           ? frontswap_register_ops+0x2c/0x40", r.Lines);
        Assert.Contains("explain  give --vmlinux IMAGE (the booted vmlinux or vmlinuz) to look the jump-label site up", r.Lines);
        Assert.Contains("summary  1 report: kernel BUG in __jump_label_patch", r.Lines);
    }

    [Fact]
    public void RepeatedReports_EachReported_SummaryGroupsTheirTitles()
    {
        // The seed's report three times over (a CI log of a kernel that crashed on every run), then a WARNING (no RIP
        // line: named after its first frame).
        var seed = File.ReadAllLines(SeedLog);
        var log = Path.Combine(Path.GetTempPath(), $"textpoke-repeated-{Environment.ProcessId}.log");
        File.WriteAllLines(log, seed.Concat(seed).Concat(seed).Append("[   99.000000] WARNING: CPU: 0 PID: 1 at fs/inode.c:10 iget_locked+0x1/0x2")
            .Append("[   99.000001] Call Trace:").Append("[   99.000002]  ext4_iget+0x10/0x20").Append("[   99.000003]  ext4_lookup+0x10/0x20"));
        try
        {
            var r = CliRun.Run("decode", log);
            Assert.Equal(1, r.Exit);
            Assert.Equal(3, r.Lines.Count(l => l == "report   kernel BUG in __jump_label_patch  [BUG]"));
            Assert.Contains("summary  4 reports: kernel BUG in __jump_label_patch (3 times); WARNING in ext4_iget", r.Lines);
        }
        finally { File.Delete(log); }
    }

    [Fact]
    public void CleanBootLog_NoCrash_ExitZero()
    {
        var r = CliRun.Run("decode", BootLog("debian-6.1.0-53-amd64-ok.log"));
        Assert.Equal(0, r.Exit);
        Assert.Contains("summary  no crash found", r.Lines);
        var json = JsonDocument.Parse(CliRun.Run("decode", BootLog("debian-6.1.0-53-amd64-ok.log"), "--json").Out);
        Assert.Equal(0, json.RootElement.GetProperty("reports").GetArrayLength());
    }

    [Trait("Tier", "full")]
    [Fact]
    public void DebianCrash_WithItsKernel_ExplainsTheSite_Json()
    {
        var r = CliRun.Run("decode", BootLog("debian-6.1.0-53-amd64-swap_writepage-jmp.log"), "--vmlinux", DebianKernels.GoldenVmlinuz, "--json");
        Assert.Equal(1, r.Exit);
        var report = Assert.Single(JsonDocument.Parse(r.Out).RootElement.GetProperty("reports").EnumerateArray());
        Assert.Equal("kernel BUG in __jump_label_patch", report.GetProperty("title").GetString());
        Assert.Equal("BUG", report.GetProperty("type").GetString());
        Assert.True(report.GetProperty("panicked").GetBoolean());
        Assert.False(report.GetProperty("corrupted").GetBoolean());
        Assert.Equal("__jump_label_patch.cold+0x24/0x26", report.GetProperty("rip").GetString());
        var trap = Assert.Single(report.GetProperty("codeDisassembly").EnumerateArray(), i => i.GetProperty("faulting").GetBoolean());
        Assert.Equal("ud2", trap.GetProperty("text").GetString());
        var frames = report.GetProperty("frames").EnumerateArray().ToList();
        Assert.Equal("arch_jump_label_transform_queue", frames[0].GetProperty("function").GetString());
        var explanation = string.Join('\n', report.GetProperty("explanation").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("swap_writepage+0x27/0xa0", explanation);
        Assert.Contains("key frontswap_enabled_key", explanation);
        Assert.Contains("changed by frontswap_register_ops, called from init_zswap", explanation);
        Assert.Contains("on disk the image holds 66 90", explanation);
    }

    [Fact]
    public void IntelSyntax_OnRequest()
    {
        var r = CliRun.Run("decode", BootLog("debian-6.1.0-53-amd64-swap_writepage-jmp.log"), "--intel");
        Assert.Contains(r.Lines, l => l.EndsWith("lea     rdi,[rdi+0xd0]"));
        Assert.DoesNotContain(r.Lines, l => l.Contains("%rdi"));
    }

    [Fact]
    public void BadInput_OneLine_ExitTwo()
    {
        var dir = Repo.Scratch("decode-bad");
        var binary = Path.Combine(dir, "binary");
        var bytes = new byte[8192];
        new Random(1731).NextBytes(bytes);
        File.WriteAllBytes(binary, bytes);
        foreach (var (path, expected) in new[] { (binary, "binary data, not a console log"), (dir, "is a directory"), (Path.Combine(dir, "nope"),
            "no such file") })
        {
            var r = CliRun.Run("decode", path);
            Assert.Equal(2, r.Exit);
            Assert.Equal("", r.Out);
            Assert.Equal($"textpoke: {path}", r.Err.TrimEnd('\n').Split('\n').Single()[..($"textpoke: {path}".Length)]);
            Assert.Contains(expected, r.Err);
        }
        var missingImage = CliRun.Run("decode", SeedLog, "--vmlinux", Path.Combine(dir, "nope"));
        Assert.Equal(2, missingImage.Exit);
    }

    /// <summary>
    /// Numbers no kernel prints (a CPU or PID past int, a frame offset of 20 hex digits, a BUG line number of 12 digits)
    /// do not end the decode: the lines that hold them are read as ordinary text, and the reports around them are found.
    /// </summary>
    [Fact]
    public void OverlongNumbers_InALog_NeverEndTheDecode()
    {
        var log = Path.Combine(Repo.Scratch("decode-numbers"), "numbers.log");
        File.WriteAllLines(log,
        [
            "[    1.000000] kernel BUG at mm/swap.c:999999999999!",
            "[    1.000001] invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
            "[    1.000002] CPU: 99999999999 PID: 99999999999999999999 Comm: x Not tainted 6.1.0 #1",
            "[    1.000003] RIP: 0010:swap_writepage+0x1c/0x60",
            "[    1.000004] Call Trace:",
            "[    1.000005]  <TASK>",
            "[    1.000006]  frontswap_store+0xffffffffffffffffffff/0x10",
            "[    1.000007]  swap_writepage+0x1c/0x60",
            "[    1.000008]  </TASK>",
            "[    2.000000] BUG: kernel NULL pointer dereference, address: 0000000000000008",
            "[    2.000001] #PF: supervisor read access in kernel mode",
            "[    2.000002] Oops: 0000 [#2] PREEMPT SMP NOPTI",
            "[    2.000003] CPU: 1 PID: 42 Comm: kworker/1:1 Not tainted 6.1.0 #1",
            "[    2.000004] RIP: 0010:ext4_readdir+0x10/0x200",
            "[    2.000005] Code: Kernel Offset: 0x99999999999999999999 from 0xffffffff81000000",
        ]);
        var r = CliRun.Run("decode", log, "--json");
        Assert.Equal(1, r.Exit);
        Assert.Equal("", r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        var reports = doc.RootElement.GetProperty("reports");
        Assert.Equal(2, reports.GetArrayLength());
        Assert.Equal(1, reports[1].GetProperty("cpu").GetInt32());
        Assert.Equal(42, reports[1].GetProperty("pid").GetInt32());
    }
}
