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
    public static string Shared => Path.GetFullPath(Path.Combine(Root, "..", "shared"));

    static readonly Lazy<string> ScratchRoot = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), $"textpoke-tests-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        return dir;
    });

    /// <summary>A new empty folder for one test.</summary>
    public static string Scratch(string name)
    {
        var dir = Path.Combine(ScratchRoot.Value, $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static string Sha256(string path) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)));
}
