using System.Text.Json;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Real;

/// <summary>
/// Every kernel image package Debian's three suites serve — bullseye, bookworm and trixie, each with its -updates and
/// -security archives (scripts/fetch-kernels keeps each package's vmlinuz): each one opens, its kallsyms are recovered
/// (no System.map is given), every jump entry is counted, `check` says clean with exit 0, and the emulated boot on
/// qemu64 neither BUGs nor WARNs. One failure does not hide the others: every package is checked and all failures are
/// reported together.
/// </summary>
[Trait("Tier", "full")]
public class SweepTests
{
    sealed record Package(string Suite, string Name, string Version, bool Served, string Path);

    static List<Package> Packages() => File.ReadLines(DebianKernels.Get("SWEEP_LIST"))
        .Select(l => l.Split(' ')).Where(f => f.Length == 5)
        .Select(f => new Package(f[0], f[1], f[2], f[3] == "ok", f[4])).ToList();

    [Fact]
    public void EveryImagePackage_KallsymsRecovered_EveryJumpEntryCounted_ChecksClean_BootsInEmulation()
    {
        var packages = Packages();
        var served = packages.Where(p => p.Served).ToList();
        // Each suite and each kernel line it ships is there: 5.10 (bullseye), 6.1 (bookworm), 6.12 (bookworm's security
        // archive and trixie), in every flavour.
        foreach (var suite in new[] { "bullseye", "bookworm", "trixie" })
            Assert.Contains(served, p => p.Suite == suite);
        foreach (var line in new[] { "linux-image-5.10.", "linux-image-6.1.", "linux-image-6.12." })
            foreach (var flavour in new[] { "-amd64-unsigned", "-cloud-amd64-unsigned", "-rt-amd64-unsigned" })
                Assert.Contains(served, p => p.Name.StartsWith(line, StringComparison.Ordinal) && p.Name.EndsWith(flavour, StringComparison.Ordinal)
                    && (flavour != "-amd64-unsigned" || !p.Name.Contains("-cloud-") && !p.Name.Contains("-rt-")));
        Assert.True(served.Count >= 60, $"only {served.Count} of {packages.Count} packages served");

        var failures = new List<string>();
        foreach (var p in served)
        {
            string? why = Judge(p);
            if (why != null) failures.Add($"{p.Name} {p.Version}: {why}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {served.Count} packages:\n" + string.Join("\n", failures));
    }

    static string? Judge(Package p)
    {
        var r = CliRun.Run("check", p.Path, "--json");
        if (r.Exit != 0) return $"exit {r.Exit}: {CliRun.Run("check", p.Path).Out.Split('\n').LastOrDefault(l => l.Length > 0)} {r.Err}";
        using var json = JsonDocument.Parse(r.Out);
        var root = json.RootElement;
        if (root.GetProperty("result").GetString() != "clean") return $"result {root.GetProperty("result")}";
        var image = root.GetProperty("image");
        if (!image.GetProperty("banner").GetString()!.Contains($"Debian {p.Version} ")) return $"banner {image.GetProperty("banner")}";
        var symbols = image.GetProperty("symbols");
        if (symbols.GetProperty("source").GetString() != "kallsyms") return $"symbols from {symbols.GetProperty("source")}: {symbols.GetProperty("notes")}";
        if (symbols.GetProperty("count").GetInt32() < 60000) return $"only {symbols.GetProperty("count")} kallsyms";
        var jump = root.GetProperty("tables").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "jump");
        if (jump.GetProperty("status").GetString() != "checked") return $"jump table {jump.GetProperty("status")}: {jump.GetProperty("notChecked")}";
        var bounds = jump.GetProperty("boundsFrom").GetString()!;
        if (!bounds.EndsWith("from kallsyms", StringComparison.Ordinal)) return $"jump bounds {bounds}";
        ulong start = Convert.ToUInt64(jump.GetProperty("start").GetString(), 16), stop = Convert.ToUInt64(jump.GetProperty("stop").GetString(), 16);
        var stats = jump.GetProperty("stats");
        int entries = stats.GetProperty("entries").GetInt32();
        if ((ulong)entries != (stop - start) / 16 || entries < 1000) return $"{entries} jump entries in {stop - start} bytes";
        if (stats.GetProperty("nop").GetInt32() + stats.GetProperty("jump").GetInt32() != entries) return $"jump stats {stats}";
        // The emulated boot on QEMU's default CPU patches every table without a BUG or a WARNING, as the real boot does.
        var boot = CliRun.Run("simulate", "--boot", "--cpu", "qemu64", p.Path);
        if (boot.Exit != 0 || !boot.Out.Contains("result: booted: no BUG and no WARNING")) return $"simulate --boot exit {boot.Exit}: {boot.Out}{boot.Err}";
        return null;
    }
}
