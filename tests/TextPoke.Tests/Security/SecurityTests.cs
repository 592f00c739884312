using System.Text.Json;
using TextPoke.Boot;
using TextPoke.Images;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Security;

/// <summary>
/// Attacks a shared machine allows: links planted where textpoke writes, and control sequences in untrusted text. Each
/// test has the attack and asserts that nothing outside the intended output changed and no raw control character
/// reached text output.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public class SecurityTests
{
    [Fact]
    public void AtomicWrite_ReplacesAPlantedLink_NeverWritesThroughIt_AndKeepsTheTargetsMode()
    {
        var dir = Repo.Scratch("atomic");
        var victim = Path.Combine(dir, "victim");
        File.WriteAllText(victim, "precious");
        var output = Path.Combine(dir, "out.elf");
        File.CreateSymbolicLink(output, victim);
        ImageWriter.WriteAtomically(output, [1, 2, 3]);
        Assert.Equal("precious", File.ReadAllText(victim));
        Assert.Null(new FileInfo(output).LinkTarget);
        Assert.Equal([1, 2, 3], File.ReadAllBytes(output));

        var mine = Path.Combine(dir, "private.elf");
        File.WriteAllBytes(mine, [0]);
        File.SetUnixFileMode(mine, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        ImageWriter.WriteAtomically(mine, [9]);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(mine));

        var fresh = Path.Combine(dir, "new.elf");
        ImageWriter.WriteAtomically(fresh, [7]);
        Assert.Equal(UnixFileMode.None, File.GetUnixFileMode(fresh) & (UnixFileMode.OtherWrite | UnixFileMode.GroupWrite));
        Assert.Equal(["new.elf", "out.elf", "private.elf", "victim"], Directory.GetFiles(dir).Select(f => Path.GetFileName(f)).Order().ToArray());
    }

    [Fact]
    public void BootLogs_GoToAPrivateFolder_CreatedExclusively()
    {
        var dir = Repo.Scratch("boot-session");
        var qemu = Path.Combine(dir, "qemu");
        File.WriteAllText(qemu, "#!/bin/sh\necho 'Linux version 6.1.0'\necho 'MARKER-OK'\nexec sleep 600\n");
        Tool.Run("chmod", ["+x", qemu]);
        var initrd = Path.Combine(dir, "initrd");
        File.WriteAllBytes(initrd, [0]);
        var kernel = Path.Combine(dir, "bzImage");
        File.WriteAllBytes(kernel, BzImageMaker.Make(BzImageMaker.Payload("gzip", File.ReadAllBytes(Fixtures.Build("jump-clean")))));
        var session = BootSession.Prepare(new BootSessionRequest(kernel, Initrd: initrd, Marker: "MARKER-OK", TimeoutSeconds: 30, Accel: "tcg", Binary: qemu,
            Repeat: 2));
        var results = session.Run();
        Assert.Equal(2, results.Count);
        Assert.All(results, r => Assert.Equal(BootOutcome.Booted, r.Outcome));
        var logDir = Path.GetDirectoryName(results[0].LogPath)!;
        Assert.Equal(logDir, Path.GetDirectoryName(results[1].LogPath));
        Assert.NotEqual(Path.GetFullPath(Path.GetTempPath()).TrimEnd('/'), logDir.TrimEnd('/'));
        Assert.StartsWith("textpoke-boot-logs-", Path.GetFileName(logDir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(logDir));
        Assert.Contains("MARKER-OK", File.ReadAllText(results[1].LogPath));
        Directory.Delete(logDir, recursive: true);
    }

    [Fact]
    public void ControlSequencesInALog_AreEscapedInText_AndExactInJson()
    {
        var log = Path.Combine(Repo.Scratch("escapes"), "log");
        File.WriteAllLines(log,
        [
            "[    1.000000] kernel BUG at mm/x.c:5!",
            "[    1.000001] CPU: 0 PID: 1 Comm: a\u001b]52;c;aGk=\u0007b Not tainted 6.1.0 #1",
            "[    1.000002] RIP: 0010:foo+0x1/0x2",
            "[    1.000003] Call Trace:",
            "[    1.000004]  foo+0x1/0x2",
            "[    1.000005]  bar\u202e+0x1/0x2",
        ]);
        var text = CliRun.Run("decode", log);
        Assert.Contains(@"Comm a\x1b]52;c;aGk=\x07b", text.Out);
        Assert.DoesNotContain(text.Out, c => c < 0x20 && c is not '\n' and not '\t' || c == '\u202e' || c == '\u001b');
        var json = CliRun.Run("decode", log, "--json");
        using var doc = JsonDocument.Parse(json.Out);
        Assert.Equal("a\u001b]52;c;aGk=\u0007b", doc.RootElement.GetProperty("reports")[0].GetProperty("comm").GetString());
    }
}
