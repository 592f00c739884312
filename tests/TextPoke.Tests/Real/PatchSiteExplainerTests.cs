using System.Text.Json;
using TextPoke.Images;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Real;

/// <summary>
/// The explainers for static calls, ftrace, return thunks and alternatives on Debian's 6.1.0-53 kernel: a real console
/// log of a poked kernel (tests/fixtures/logs), decoded against the poked image (the bad bytes are in the file) and
/// against the original (they are not: the text changed at run time, or it is another image).
/// </summary>
[Trait("Tier", "full")]
public class PatchSiteExplainerTests
{
    static readonly Lazy<(string Original, string Poked)> Images = new(() =>
    {
        var dir = Repo.Scratch("patch-explain");
        var original = Path.Combine(dir, "original.elf");
        using (var image = KernelImage.Open(DebianKernels.GoldenVmlinuz)) File.WriteAllBytes(original, image.ElfImage.ToArray());
        var once = Path.Combine(dir, "once.elf");
        var poked = Path.Combine(dir, "poked.elf");
        Assert.Equal(0, CliRun.Run("poke", original, "disconnect_bsp_APIC+0x0", "66 90 66 90 90", "-o", once).Exit);
        Assert.Equal(0, CliRun.Run("poke", once, "rdtgroup_locksetup_user_restore.part.0+0x38", "c3 cc cc cc cc", "-o", poked).Exit);
        return (original, poked);
    });

    static string Log => Path.Combine(Repo.Fixtures, "logs", "debian-6.1.0-53-ftrace-and-return-thunk.log");

    static List<(string Title, string Explanation)> Decode(string log, string image)
    {
        var r = CliRun.Run("decode", log, "--vmlinux", image, "--json");
        Assert.Equal(1, r.Exit);
        return JsonDocument.Parse(r.Out).RootElement.GetProperty("reports").EnumerateArray()
            .Select(x => (x.GetProperty("title").GetString()!, string.Join("\n", x.GetProperty("explanation").EnumerateArray().Select(e =>
                e.GetString())))).ToList();
    }

    [Fact]
    public void FtraceBugAndMissingReturnThunk_FromARealBoot_BadBytesInThePokedFile()
    {
        var reports = Decode(Log, Images.Value.Poked);
        Assert.Equal(["WARNING in ftrace_verify_code", "WARNING in ftrace_bug", "WARNING in apply_returns"], reports.Select(r => r.Title));
        var ftrace = reports[1].Explanation;
        Assert.Contains("disconnect_bsp_APIC+0x0/0xd0 is an entry of __mcount_loc", ftrace);
        Assert.Contains("on disk the image holds 66 90 66 90 90 at disconnect_bsp_APIC+0x0/0xd0, the bytes 66 90 66 90 90 the kernel complained about: the " +
            "bad instruction is in the file", ftrace);
        Assert.Contains("`textpoke check --tables mcount` finds 1 broken site", ftrace);
        var ret = reports[2].Explanation;
        Assert.Contains("rdtgroup_locksetup_user_restore.part.0+0x38/0xa0 is an entry of .return_sites", ret);
        Assert.Contains("on disk the image holds c3 cc cc cc cc", ret);
        Assert.Contains("the bad instruction is in the file", ret);
        Assert.Equal("", reports[0].Explanation); // ftrace_verify_code's own WARN comes before the ftrace_bug lines
    }

    [Fact]
    public void SameLog_AgainstTheOriginalImage_TheBytesChangedAtRunTime()
    {
        var reports = Decode(Log, Images.Value.Original);
        Assert.Contains("on disk the image holds e8 fb 69 00 00 at disconnect_bsp_APIC+0x0/0xd0, not the bytes 66 90 66 90 90 the kernel saw",
            reports[1].Explanation);
        Assert.Contains("on disk it is call __fentry__", reports[1].Explanation);
        Assert.Contains("not the bytes c3 cc cc cc cc the kernel saw: the text was changed at run time", reports[2].Explanation);
    }

    [Fact]
    public void StaticCallBug_SiteLookedUp_AndAlternativesBug_EmulatedBoot()
    {
        var dir = Repo.Scratch("patch-explain-sc");
        // The lines static_call_init prints for a site holding int3, as simulate --boot predicts them for the poked image.
        var sites = CliRun.Run("sites", Images.Value.Original, "--table", "static_calls");
        var site = sites.Lines.First(l => l.Contains(" call ")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        var poked = Path.Combine(dir, "sc.elf");
        Assert.Equal(0, CliRun.Run("poke", Images.Value.Original, site.Split('/')[0], "cc", "-o", poked).Exit);
        var boot = JsonDocument.Parse(CliRun.Run("simulate", "--boot", poked, "--json").Out).RootElement;
        var bug = boot.GetProperty("events")[0];
        var log = Path.Combine(dir, "sc.log");
        File.WriteAllLines(log, [
            .. bug.GetProperty("lines").EnumerateArray().Select(l => "[    0.000000] " + l.GetString()),
            "[    0.000000] invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
            "[    0.000000] CPU: 0 PID: 0 Comm: swapper Not tainted 6.1.0-53-amd64 #1  Debian 6.1.187-1",
            "[    0.000000] RIP: 0010:__static_call_validate.cold+0x2f/0x31",
        ]);
        var onPoked = Decode(log, poked).Single();
        Assert.StartsWith("kernel BUG in __static_call_validate", onPoked.Title);
        Assert.Contains("is an entry of .static_call_sites", onPoked.Explanation);
        Assert.Contains("the opcode 0xcc the kernel complained about: the bad instruction is in the file", onPoked.Explanation);
        Assert.Contains("not the opcode 0xcc the kernel saw", Decode(log, Images.Value.Original).Single().Explanation);

        // An alternatives BUG_ON: the emulated boot names the entry (here the paravirt entry cut to 3 bytes).
        var cut = Path.Combine(dir, "pv.elf");
        var table = JsonDocument.Parse(CliRun.Run("check", Images.Value.Original, "--tables", "paravirt", "--json").Out).RootElement;
        var start = table.GetProperty("tables").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "paravirt").GetProperty("start").GetString()!;
        Assert.Equal(0, CliRun.Run("poke", Images.Value.Original, $"0x{Convert.ToUInt64(start, 16) + 16 * 100 + 9:x}", "03", "-o", cut).Exit);
        var altLog = Path.Combine(dir, "alt.log");
        File.WriteAllLines(altLog, ["[    0.050000] kernel BUG at arch/x86/kernel/alternative.c:1055!",
            "[    0.050001] invalid opcode: 0000 [#1] PREEMPT SMP NOPTI"]);
        var alt = Decode(altLog, cut).Single().Explanation;
        Assert.Contains("textpoke simulate --boot finds 1 entry of this image that BUG during boot-time patching", alt);
        Assert.Contains("BUG_ON(used > p->len)", alt);
    }
}
