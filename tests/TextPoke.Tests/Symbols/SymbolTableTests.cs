using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Symbols;

public class SymbolTableTests
{
    static SymbolTable Table(params SymbolEntry[] entries) =>
        new(SymbolSource.SystemMap, "test", SymbolTable.Sort(entries), _ => 0xffffffff81001000);

    [Fact]
    public void SizeIsTheDistanceToTheNextSymbol_NotTheElfSize()
    {
        var t = Table(new(0xffffffff81000000, "a", 'T'), new(0xffffffff81000060, "b", 'T'));
        Assert.Equal("a+0x1c/0x60", t.FormatPS(0xffffffff8100001c));
        Assert.Equal("a+0x0/0x60", t.FormatPS(0xffffffff81000000));
    }

    [Fact]
    public void AliasesPrintTheFirstInKallsymsOrder()
    {
        // scripts/kallsyms.c compare_symbols: non-weak, not linker-provided, fewer underscores first.
        var t = Table(new(0xffffffff81000000, "_text", 'T'), new(0xffffffff81000000, "__start_stuff", 'T'),
            new(0xffffffff81000000, "weak_fn", 'W'), new(0xffffffff81000000, "startup_64", 'T'), new(0xffffffff81000040, "next", 'T'));
        Assert.Equal("startup_64+0x4/0x40", t.FormatPS(0xffffffff81000004));
    }

    [Fact]
    public void ZeroSizeAndRepeatedLocalNames()
    {
        var t = Table(new(0xffffffff81000000, "helper", 't'), new(0xffffffff81000010, "marker", 'T'),
            new(0xffffffff81000010, "real", 'T'), new(0xffffffff81000030, "helper", 't'), new(0xffffffff81000050, "z", 'T'));
        Assert.Equal("marker+0x8/0x20", t.FormatPS(0xffffffff81000018));
        Assert.Equal("helper+0x4/0x20", t.FormatPS(0xffffffff81000034));
        Assert.Equal("helper+0x4/0x10", t.FormatPS(0xffffffff81000004));
        Assert.Equal(2, t.All("helper").Count());
    }

    [Fact]
    public void LastSymbolRunsToTheRegionEnd_AndUnknownAddressesPrintRaw()
    {
        var t = Table(new(0xffffffff81000000, "a", 'T'), new(0xffffffff81000800, "last", 'T'));
        Assert.Equal("last+0x10/0x800", t.FormatPS(0xffffffff81000810));
        Assert.Equal("0xffffffff80000000", t.FormatPS(0xffffffff80000000));
        Assert.Equal("a+0x0/0x800 [zfs]", t.FormatPS(0xffffffff81000000, "zfs"));
    }

    [Fact]
    public void SystemMapStub_IsRecognised()
    {
        var dir = Repo.Scratch("stub");
        var stub = Path.Combine(dir, "System.map-6.1.0-56-amd64");
        File.WriteAllText(stub, "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n");
        Assert.True(SystemMap.IsStub(stub));
        var e = Assert.Throws<ImageFormatException>(() => SystemMap.Read(stub));
        Assert.Contains("stub", e.Message);
    }

    [Fact]
    public void SystemMapBesideTheImage_IsUsedWhenItMatches_AndIgnoredWhenItDoesNot()
    {
        var elf = Fixtures.Build("jump-seed");
        var dir = Repo.Scratch("beside");
        var image = Path.Combine(dir, "vmlinux-6.1.0-test");
        File.Copy(elf, image);
        File.WriteAllText(Path.Combine(dir, "System.map-6.1.0-test"),
            "ffffffff81000000 T _stext\nffffffff81000000 T swap_writepage\nffffffff81000060 T swap_readpage\n");
        using (var img = KernelImage.Open(image))
        {
            var symbols = ImageSymbols.Load(img);
            Assert.NotNull(symbols.SystemMap);
        }
        File.WriteAllText(Path.Combine(dir, "System.map-6.1.0-test"), "ffffffff82000000 T _stext\nffffffff82000000 T swap_writepage\n");
        using (var img = KernelImage.Open(image))
        {
            var symbols = ImageSymbols.Load(img);
            Assert.Null(symbols.SystemMap);
            Assert.Contains(symbols.Notes, n => n.Contains("does not match"));
        }
    }
}
