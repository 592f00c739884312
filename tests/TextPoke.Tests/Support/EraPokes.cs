namespace TextPoke.Tests.Support;

/// <summary>Debian's 5.10 cloud kernel extracted, and a copy with sched_schedstats's first site flipped (built once per run).</summary>
public static class EraPokes
{
    static readonly Lazy<(string Elf, string Poked)> V510 = new(() =>
    {
        var dir = Repo.Scratch("era-5.10");
        string elf = Path.Combine(dir, "cloud.elf"), poked = Path.Combine(dir, "poked.elf");
        var extract = CliRun.Run("extract", DebianKernels.Era("5_10", "CLOUD"), "-o", elf);
        if (extract.Exit != 0) throw new InvalidOperationException(extract.Err);
        var poke = CliRun.Run("poke", elf, "--flip-jump-key", "sched_schedstats", "-o", poked);
        if (poke.Exit != 0) throw new InvalidOperationException(poke.Err);
        return (elf, poked);
    });

    /// <summary>The 5.10 cloud kernel with one disabled sched_schedstats site turned into its JMP.</summary>
    public static string PokedV510 => V510.Value.Poked;
}
