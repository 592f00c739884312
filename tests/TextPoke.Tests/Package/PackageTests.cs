using System.Diagnostics;
using TextPoke.Demo;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Package;

/// <summary>
/// scripts/package builds the native binary (Native AOT) and its tarball; the binary runs where no .NET exists: an empty
/// environment whose PATH has no dotnet and no DOTNET_ROOT.
/// </summary>
[Trait("Tier", "full")]
public class PackageTests
{
    static (int Exit, string Out) RunBare(string binary, params string[] args)
    {
        var psi = new ProcessStartInfo(binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Clear();
        psi.Environment["PATH"] = "/nonexistent";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    [Fact]
    public void NativeBinary_FromTheTarball_RunsWithoutDotnet()
    {
        var dir = Repo.Scratch("package");
        var tarball = Tool.Run(Path.Combine(Repo.Root, "scripts", "package"), [dir]).Trim().Split('\n')[^1];
        Assert.Matches(@"textpoke-[0-9a-f]+(?:-dirty)?-linux-x64\.tar\.gz$", tarball);
        Tool.Run("tar", ["-C", dir, "-xzf", tarball]);
        var folder = Directory.EnumerateDirectories(dir, "textpoke-*").Single();
        Assert.Equal(["README.md", "THIRD-PARTY-NOTICES.md", "textpoke"], Directory.GetFiles(folder).Select(f => Path.GetFileName(f)).Order().ToArray());
        var binary = Path.Combine(folder, "textpoke");

        var demo = RunBare(binary, "demo");
        Assert.Equal(0, demo.Exit);
        Assert.Contains(SeedDemo.ExpectedLine, demo.Out);
        var seed = RunBare(binary, "check", Fixtures.Build("jump-seed"));
        Assert.Equal(1, seed.Exit);
        Assert.Contains("jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60", seed.Out);
        var clean = RunBare(binary, "check", Fixtures.Build("jump-clean"), "--format", "sarif");
        Assert.Equal(0, clean.Exit);
        Assert.Contains("\"version\": \"2.1.0\"", clean.Out);
    }
}
