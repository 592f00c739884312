using System.Text;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Modules;

/// <summary>The whole module tree of Debian's generic package, as installed, checked in one command.</summary>
[Trait("Tier", "full")]
public class ModuleTreeTests
{
    [Fact]
    public void DebianModuleTree_WithItsVmlinuz_IsClean()
    {
        var tree = DebianKernels.GenericModules;
        int count = Directory.EnumerateFiles(tree, "*.ko", SearchOption.AllDirectories).Count();
        Assert.True(count > 3000);
        var r = CliRun.Run("check", tree);
        Assert.Equal(0, r.Exit);
        Assert.Contains(r.Lines, l => l.StartsWith("image    ") && l.Contains($"vmlinuz-{DebianKernels.Abi}-amd64"));
        Assert.Contains($"  total: {count} modules: {count} clean, 0 with findings (0 findings), 0 errors;", r.Out);
        Assert.Contains("result: clean, 0 findings", r.Lines);
    }

    [Fact]
    public void PokedModuleAndBadFiles_OneFindingNamingTheModule_ErrorsForTheBadOnes_RestChecked()
    {
        var source = DebianKernels.GenericModules;
        var tree = Path.Combine(Repo.Scratch("tree"), "modules");
        var files = Directory.EnumerateFiles(source, "*.ko", SearchOption.AllDirectories).ToList();
        foreach (var f in files)
        {
            var link = Path.Combine(tree, Path.GetRelativePath(source, f));
            Directory.CreateDirectory(Path.GetDirectoryName(link)!);
            File.CreateSymbolicLink(link, f);
        }
        // One module with one 2-byte NOP site turned into its JMP.
        const string victim = "kernel/fs/nfs/nfs.ko";
        var victimPath = Path.Combine(tree, victim);
        File.Delete(victimPath);
        var poke = CliRun.Run("poke", Path.Combine(source, victim), "--flip-jump-key", "__tracepoint_nfs_mkdir_exit+0x8", "-o", victimPath);
        Assert.Equal(0, poke.Exit);
        // A truncated module, a corrupt compressed module, and a module for another kernel.
        var extra = Path.Combine(tree, "extra");
        Directory.CreateDirectory(extra);
        var sample = File.ReadAllBytes(Path.Combine(source, "kernel/fs/nfs/nfs.ko"));
        File.WriteAllBytes(Path.Combine(extra, "truncated.ko"), sample[..4096]);
        File.WriteAllBytes(Path.Combine(extra, "corrupt.ko.xz"), [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, .. new byte[300]]);
        var other = (byte[])sample.Clone();
        var release = Encoding.ASCII.GetBytes($"vermagic={DebianKernels.Abi}-amd64");
        int at = sample.AsSpan().IndexOf(release);
        Assert.True(at > 0);
        Encoding.ASCII.GetBytes("vermagic=9.9.9-99-amd64".PadRight(release.Length, 'x')).CopyTo(other, at);
        File.WriteAllBytes(Path.Combine(extra, "other.ko"), other);

        var r = CliRun.Run("check", tree, "--vmlinux", DebianKernels.GenericVmlinuz);
        Assert.Equal(2, r.Exit);
        Assert.Contains($"== {victim} (nfs): 1 finding", r.Lines);
        Assert.Contains(r.Lines, l => l.StartsWith("jump_label: Fatal kernel bug, unexpected op at nfs_mkdir+0x82/0x160 [nfs] [")
            && l.EndsWith("!= 66 90 0f 1f 00)) size:2 type:1"));
        Assert.Contains(r.Lines, l => l.StartsWith("textpoke: ") && l.Contains("truncated.ko") && l.Contains("truncated"));
        Assert.Contains(r.Lines, l => l.StartsWith("textpoke: ") && l.Contains("corrupt.ko.xz: corrupt xz data"));
        Assert.Contains(r.Lines, l => l.StartsWith("textpoke: ") && l.Contains("other.ko: a module for another kernel"));
        int total = files.Count + 3;
        Assert.Contains($"  total: {total} modules: {files.Count - 1} clean, 1 with findings (1 findings), 3 errors;", r.Out);
    }
}
