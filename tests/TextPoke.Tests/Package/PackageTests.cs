using System.Diagnostics;
using TextPoke.Demo;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Package;

/// <summary>
/// scripts/package builds the native binary (Native AOT) and its tarball, and the .NET tool package. The binary runs
/// where no .NET exists: an empty environment whose PATH has no dotnet and no DOTNET_ROOT. The tool package installs
/// with 'dotnet tool install --tool-path' from the package folder alone (a NuGet configuration with no other source).
/// </summary>
[Trait("Tier", "full")]
public class PackageTests
{
    static (int Exit, string Out) RunBare(string binary, params string[] args) => Exec(binary, true, args);

    static (int Exit, string Out) Exec(string binary, bool emptyEnvironment, params string[] args)
    {
        var psi = new ProcessStartInfo(binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (emptyEnvironment)
        {
            psi.Environment.Clear();
            psi.Environment["PATH"] = "/nonexistent";
        }
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    static readonly Lazy<(string Dir, string Tarball, string ToolPackage)> Packaged = new(() =>
    {
        var dir = Repo.Scratch("package");
        var lines = Tool.Run(Path.Combine(Repo.Root, "scripts", "package"), [dir]).Trim().Split('\n');
        return (dir, lines[^2], lines[^1]);
    });

    [Fact]
    public void NativeBinary_FromTheTarball_RunsWithoutDotnet()
    {
        var (dir, tarball, _) = Packaged.Value;
        Assert.Matches(@"textpoke-[0-9a-f]+(?:-dirty)?-linux-x64\.tar\.gz$", tarball);
        Tool.Run("tar", ["-C", dir, "-xzf", tarball]);
        var folder = Directory.EnumerateDirectories(dir, "textpoke-*").Single();
        Assert.Equal(["LICENSE", "README.md", "THIRD-PARTY-NOTICES.md", "textpoke"],
            Directory.GetFiles(folder).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray());
        var binary = Path.Combine(folder, "textpoke");

        var demo = RunBare(binary, "demo");
        Assert.Equal(0, demo.Exit);
        Assert.Contains(SeedDemo.ExpectedLine, demo.Out);
        var seed = RunBare(binary, "check", Fixtures.Build("jump-seed"));
        Assert.Equal(1, seed.Exit);
        Assert.Contains("jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60", seed.Out);
        // A real Debian vmlinuz (xz payload through the system's liblzma, kallsyms recovered): clean, exit 0.
        var debian = RunBare(binary, "check", DebianKernels.GoldenVmlinuz);
        Assert.True(debian.Exit == 0, debian.Out);
        Assert.Contains("result: clean, 0 findings", debian.Out);
        var clean = RunBare(binary, "check", Fixtures.Build("jump-clean"), "--format", "sarif");
        Assert.Equal(0, clean.Exit);
        Assert.Contains("\"version\": \"2.1.0\"", clean.Out);
    }

    [Fact]
    public void ToolPackage_InstallsWithDotnetTool_AndRuns()
    {
        var (dir, _, package) = Packaged.Value;
        var m = System.Text.RegularExpressions.Regex.Match(Path.GetFileName(package), @"^textpoke\.(0\.1\.0-g[0-9a-f]+(?:-dirty)?)\.nupkg$");
        Assert.True(m.Success, package);
        var config = Path.Combine(dir, "nuget.config");
        File.WriteAllText(config, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration><packageSources><clear />" +
            $"<add key=\"textpoke\" value=\"{Path.GetDirectoryName(package)}\" /></packageSources></configuration>\n");
        var tools = Path.Combine(dir, "tools");
        Tool.Run("dotnet", ["tool", "install", "--tool-path", tools, "--configfile", config, "textpoke", "--version", m.Groups[1].Value]);
        var textpoke = Path.Combine(tools, "textpoke");

        var demo = Exec(textpoke, false, "demo");
        Assert.Equal(0, demo.Exit);
        Assert.Contains(SeedDemo.ExpectedLine, demo.Out);
        var seed = Exec(textpoke, false, "check", Fixtures.Build("jump-seed"));
        Assert.Equal(1, seed.Exit);
        Assert.Contains("jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60", seed.Out);
    }
}
