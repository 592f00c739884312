using TextPoke.Boot;
using TextPoke.Crash;
using TextPoke.Images;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Boot;

public class BootUnitTests
{
    [Fact]
    public void Cpio_ListsAndExtractsWithTheSystemCpio()
    {
        var archive = Cpio.Write(
        [
            CpioEntry.Dir("bin"), CpioEntry.Dir("dev"),
            CpioEntry.Char("dev/console", 5, 1),
            CpioEntry.File("bin/hello", "echo hi\n"u8.ToArray(), executable: true),
            CpioEntry.Link("bin/sh", "hello"),
            CpioEntry.File("init", "odd length!"u8.ToArray()),
        ]);
        Assert.Equal(0, archive.Length % 512);
        var dir = Repo.Scratch("cpio");
        var file = Path.Combine(dir, "a.cpio");
        File.WriteAllBytes(file, archive);
        var listing = Tool.Run("cpio", ["-t", "-F", file]).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["bin", "dev", "dev/console", "bin/hello", "bin/sh", "init"], listing);
        var verbose = Tool.Run("cpio", ["-tv", "-F", file]);
        Assert.Matches(@"crw-------\s+1 root\s+root\s+5,\s+1 .* dev/console", verbose);
        Assert.Matches(@"lrwxrwxrwx .* bin/sh -> hello", verbose);
        Assert.Matches(@"-rwxr-xr-x .* 8 .* bin/hello", verbose);
        var into = Path.Combine(dir, "x");
        Directory.CreateDirectory(into);
        Tool.Run("sh", ["-c", $"cpio -id --no-absolute-filenames --quiet -F '{file}' bin/hello init"], into);
        Assert.Equal("echo hi\n", File.ReadAllText(Path.Combine(into, "bin/hello")));
        Assert.Equal("odd length!", File.ReadAllText(Path.Combine(into, "init")));
    }

    [Fact]
    public void DefaultInitramfs_HasBusyboxInitAndConsole()
    {
        var busybox = Initramfs.FindBusybox();
        Assert.NotNull(busybox);
        var file = Path.Combine(Repo.Scratch("initramfs"), "i.cpio");
        File.WriteAllBytes(file, Initramfs.Build(busybox!, "MARKER-42", ["echo 1 > /sys/kernel/debug/x"]));
        var listing = Tool.Run("cpio", ["-t", "-F", file]);
        foreach (var member in new[] { "init", "bin/busybox", "bin/sh", "dev/console", "proc", "sys" }) Assert.Contains(member + "\n", listing);
        var script = Initramfs.InitScript("MARKER-42", ["echo 1 > /sys/kernel/debug/x"]);
        Assert.StartsWith("#!/bin/busybox sh\n", script);
        Assert.True(script.IndexOf("mount -t proc", StringComparison.Ordinal) < script.IndexOf("echo 1 > /sys/kernel/debug/x", StringComparison.Ordinal));
        Assert.True(script.IndexOf("echo 1 > /sys/kernel/debug/x", StringComparison.Ordinal) < script.IndexOf("echo MARKER-42", StringComparison.Ordinal));
        Assert.EndsWith("echo MARKER-42\npoweroff -f\n", script);
    }

    [Fact]
    public void QemuCommandLine()
    {
        Assert.Equal(
            ["-kernel", "k", "-initrd", "i", "-append", "console=ttyS0 panic=-1 oops=panic", "-no-reboot", "-nographic", "-m", "1024", "-smp", "1", "-accel",
                "tcg"],
            Qemu.Arguments(new QemuOptions("k", "i", Qemu.DefaultAppend)));
        Assert.Equal(["-accel", "kvm", "-cpu", "host"], Qemu.Arguments(new QemuOptions("k", "i", "a", 512, 2, "kvm"))[^4..]);
        Assert.Contains("2", Qemu.Arguments(new QemuOptions("k", "i", "a", 512, 2, "kvm")));
    }

    [Fact]
    public void OnlyBootableImagesAreBooted()
    {
        var e = Assert.Throws<ImageFormatException>(() => Qemu.Bootable(Fixtures.Build("jump-clean")));
        Assert.Contains("no PVH entry note", e.Message);
        Assert.Throws<ImageFormatException>(() => Qemu.Bootable(Fixtures.Build("jump-module")));
    }

    /// <summary>A stand-in for QEMU that replays a recorded console log, then stays alive (or exits) like QEMU would.</summary>
    static string FakeQemu(string log, bool hangAfter, double delay = 0.0005)
    {
        var dir = Repo.Scratch("fakeqemu");
        var script = Path.Combine(dir, "qemu");
        File.WriteAllText(script,
            $"#!/bin/sh\nwhile IFS= read -r line; do printf '%s\\n' \"$line\"; sleep {delay}; done < '{log}'\n{(hangAfter ? "exec sleep 600\n" : "exit 0\n")}");
        Tool.Run("chmod", ["+x", script]);
        return script;
    }

    static BootResult Watch(string log, string marker, bool hangAfter, int timeout = 60, int silence = 60, bool markerKnown = true)
    {
        var logPath = Path.Combine(Repo.Scratch("watch"), "console.log");
        var request = new BootRequest(new QemuOptions("k", "i", "a", Binary: FakeQemu(log, hangAfter)), marker, TimeSpan.FromSeconds(timeout),
            TimeSpan.FromSeconds(silence), logPath, markerKnown);
        var result = BootRunner.Run(request);
        Assert.Equal(result.Lines, File.ReadAllLines(logPath));
        return result;
    }

    static string Corpus(string name) => Repo.BootLog(name);

    /// <summary>The success marker of the recorded good boot.</summary>
    internal const string OkMarker = "INIT-DONE";

    /// <summary>A recorded console replayed through the watcher (QEMU stays alive after it, as it does).</summary>
    internal static BootResult WatchLog(string log, string marker) => Watch(log, marker, hangAfter: true);

    [Fact]
    public void Watcher_RecordedCrash_StopsAtTheCrash_EvenIfQemuHangs()
    {
        var r = Watch(Corpus("debian-6.1.0-53-amd64-swap_writepage-jmp.log"), "never-printed", hangAfter: true);
        Assert.Equal(BootOutcome.Crashed, r.Outcome);
        Assert.Equal("kernel BUG in __jump_label_patch", r.Reason);
        Assert.True(r.Elapsed < TimeSpan.FromSeconds(30), $"took {r.Elapsed}");
        var report = Assert.Single(r.Reports);
        Assert.True(report.Panicked);
        Assert.Equal("__jump_label_patch.cold+0x24/0x26", report.Rip);
        Assert.Equal(["arch_jump_label_transform_queue", "__jump_label_update", "static_key_slow_inc_cpuslocked", "static_key_slow_inc",
            "frontswap_register_ops", "init_zswap"],
            report.Frames.Where(f => f.Reliable).Take(6).Select(f => f.Function));
        var explanation = JumpLabelExplainer.Explain(report, null, null)!;
        Assert.Equal("frontswap_register_ops", explanation.Enabler);
        Assert.Equal("init_zswap", explanation.EnablerCaller);
    }

    [Fact]
    public void Watcher_RecordedGoodBoot_BootsAtTheMarker()
    {
        var r = Watch(Corpus("debian-6.1.0-53-amd64-ok.log"), "INIT-DONE", hangAfter: true);
        Assert.Equal(BootOutcome.Booted, r.Outcome);
        Assert.Empty(r.Reports);
        Assert.Contains(r.Lines, l => l.Contains("INIT-DONE"));
    }

    [Fact]
    public void Watcher_QemuExitsWithoutMarkerOrReport_IsACrash_AndSilenceTimesOut()
    {
        var ok = Corpus("debian-6.1.0-53-amd64-ok.log");
        var exited = Watch(ok, "never-printed", hangAfter: false);
        Assert.Equal(BootOutcome.Crashed, exited.Outcome);
        Assert.Contains("before printing never-printed", exited.Reason);
        // With the user's own initramfs and no marker, a clean power-off is the verdict "booted".
        Assert.Equal(BootOutcome.Booted, Watch(ok, "unknown", hangAfter: false, markerKnown: false).Outcome);
        var silent = Watch(ok, "never-printed", hangAfter: true, timeout: 30, silence: 2);
        Assert.Equal(BootOutcome.TimedOut, silent.Outcome);
        Assert.Equal("silent for 2 s", silent.Reason);
    }

    [Fact]
    public void Watcher_QemuThatCannotStart_IsQemuFailed()
    {
        var request = new BootRequest(new QemuOptions("k", "i", "a", Binary: "/nonexistent/qemu"), "m", TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5),
            Path.Combine(Repo.Scratch("qf"), "log"));
        Assert.Equal(BootOutcome.QemuFailed, BootRunner.Run(request).Outcome);
    }

    [Fact]
    public void Parser_SeedLog()
    {
        var report = Assert.Single(ConsoleLog.Parse(File.ReadAllLines(Repo.SeedLog)));
        Assert.Equal("kernel BUG in __jump_label_patch", report.Title);
        Assert.Equal("5.19.0-local+", report.KernelVersion);
        Assert.Equal("swapper/0", report.Comm);
        Assert.All(report.Frames, f => Assert.False(f.Reliable));
        Assert.StartsWith("jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60", report.Lines[0]);
    }

    /// <summary>
    /// The success marker printed on the same line as a kernel message (console output of two writers interleaved, as a
    /// real Debian boot did: "TEXTPOKE-BOOTED-...[    2.369523] tsc: Refined TSC ...") still means the boot succeeded.
    /// </summary>
    [Fact]
    public void Watcher_MarkerSharingALineWithAKernelMessage_IsFound()
    {
        var log = Path.Combine(Repo.Scratch("merged-marker"), "console.log");
        File.WriteAllLines(log,
        [
            "[    0.000000] Linux version 6.1.0-53-amd64 (gcc) #1 SMP",
            "MARKER-0123[    2.369523] tsc: Refined TSC clocksource calibration: 2095.984 MHz",
            "[    2.386854] reboot: Power down",
        ]);
        var result = Watch(log, "MARKER-0123", hangAfter: false);
        Assert.Equal(BootOutcome.Booted, result.Outcome);
    }
}
