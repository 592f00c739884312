namespace TextPoke.Tests.Support;

/// <summary>Paths inside the repository and a scratch folder per test run.</summary>
public static class Repo
{
    public static string Root { get; } = FindRoot();

    static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "TextPoke.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (TextPoke.slnx)");
    }

    public static string Fixtures => Path.Combine(Root, "tests", "fixtures");
    /// <summary>The data the tests read (crash logs, boot logs, the seed); see tests/data/README.md.</summary>
    public static string Data => Path.Combine(Root, "tests", "data");
    public static string BootLog(string name) => Path.Combine(Data, "boot-logs", name);
    public static string SeedLog => Path.Combine(Data, "seed", "000_ef90ed5475707ff5.txt");

    /// <summary>
    /// The run's scratch folder, removed when the test process exits (TEXTPOKE_KEEP_SCRATCH=1 keeps it for a look);
    /// folders that runs killed before their exit left behind are removed too.
    /// </summary>
    static readonly Lazy<string> ScratchRoot = new(() =>
    {
        foreach (var stale in Directory.EnumerateDirectories(Path.GetTempPath(), "textpoke-tests-*"))
            if (int.TryParse(Path.GetFileName(stale)["textpoke-tests-".Length..], out int pid) && pid != Environment.ProcessId && !Running(pid))
                TryDelete(stale);
        var dir = Path.Combine(Path.GetTempPath(), $"textpoke-tests-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        if (Environment.GetEnvironmentVariable("TEXTPOKE_KEEP_SCRATCH") != "1")
            AppDomain.CurrentDomain.ProcessExit += (_, _) => TryDelete(dir);
        return dir;
    });

    static bool Running(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>A new empty folder for one test.</summary>
    public static string Scratch(string name)
    {
        var dir = Path.Combine(ScratchRoot.Value, $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static string Sha256(string path) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)));
}
