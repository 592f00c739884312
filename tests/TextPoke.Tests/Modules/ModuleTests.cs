using System.Buffers.Binary;
using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Images.BzImage;
using TextPoke.Images.Elf;
using TextPoke.Symbols;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Modules;

public class ModuleTests
{
    [Theory]
    [InlineData(".ko", CompressionFormat.None)]
    [InlineData(".ko.gz", CompressionFormat.Gzip)]
    [InlineData(".ko.xz", CompressionFormat.Xz)]
    [InlineData(".ko.zst", CompressionFormat.Zstd)]
    public void EveryModuleCompression_GivesTheSameModuleAndFinding(string suffix, CompressionFormat format)
    {
        var ko = File.ReadAllBytes(Fixtures.Build("jump-module"));
        byte[] bytes = format switch
        {
            CompressionFormat.Gzip => Tool.Compress("gzip", ko, "-n", "-c"),
            CompressionFormat.Xz => Tool.Compress("xz", ko, "--check=crc32", "--lzma2=dict=1MiB", "-c"),
            CompressionFormat.Zstd => Tool.Compress("zstd", ko, "-c"),
            _ => ko,
        };
        var path = Path.Combine(Repo.Scratch("ko"), "zfs" + suffix);
        File.WriteAllBytes(path, bytes);
        using var image = KernelImage.Open(path);
        Assert.Equal(ImageKind.Module, image.Kind);
        Assert.Equal(format, image.Compression);
        Assert.Equal("zfs", image.ModuleName);
        var r = CheckRunner.Run(image, ImageSymbols.Load(image, lookBeside: false));
        Assert.Equal("jump.objtool-not-run", Assert.Single(r.Findings).Rule);
    }

    [Fact]
    public void CorruptCompressedModule_IsOneClearError()
    {
        var path = Path.Combine(Repo.Scratch("ko"), "bad.ko.xz");
        File.WriteAllBytes(path, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, .. Enumerable.Repeat((byte)0x42, 200)]);
        var e = Assert.Throws<ImageFormatException>(() => KernelImage.Open(path).Dispose());
        Assert.StartsWith($"{path}: corrupt xz data", e.Message);
    }

    [Fact]
    public void EveryRelocationType_IsAppliedAsTheModuleLoaderDoes()
    {
        using var image = KernelImage.Open(Fixtures.Build("reloc-types"));
        var symbols = image.ElfSymbols;
        ulong Sym(string name) => image.SymbolAddress(symbols.Single(s => s.Name == name))!.Value;
        var data = image.Elf.Section(".data")!;
        var text = image.Elf.Section(".text")!;
        ulong d = image.SectionAddress(data), t = image.SectionAddress(text), target = Sym("target_data"), func = Sym("target_func");
        var rd = image.RelocationsOf(data)!;
        var rt = image.RelocationsOf(text)!;
        Assert.Equal(
            [ElfConstants.R_X86_64_64, ElfConstants.R_X86_64_PC32, ElfConstants.R_X86_64_PC64, ElfConstants.R_X86_64_32],
            rd.Types);
        Assert.Equal([ElfConstants.R_X86_64_32S, ElfConstants.R_X86_64_PLT32], rt.Types);
        var db = rd.Bytes;
        Assert.Equal(target + 8, BinaryPrimitives.ReadUInt64LittleEndian(db));                                   // S + A
        Assert.Equal(unchecked((uint)(target + 4 - (d + 8))), BinaryPrimitives.ReadUInt32LittleEndian(db.AsSpan(8)));   // S + A - P
        Assert.Equal(unchecked(target - (d + 0x10)), BinaryPrimitives.ReadUInt64LittleEndian(db.AsSpan(0x10)));        // S + A - P, 64-bit
        Assert.Equal(unchecked((uint)target), BinaryPrimitives.ReadUInt32LittleEndian(db.AsSpan(0x18)));                // S + A, truncated
        Assert.Equal(unchecked((uint)target), BinaryPrimitives.ReadUInt32LittleEndian(rt.Bytes.AsSpan(3)));             // S + A, sign-extended
        Assert.Equal(unchecked((uint)(func - 4 - (t + 8))), BinaryPrimitives.ReadUInt32LittleEndian(rt.Bytes.AsSpan(8)));
        Assert.Empty(ModuleCheck.Relocations(image));
    }

    [Fact]
    public void NonzeroRelocationTarget_IsWhatThe61LoaderRejects()
    {
        using var image = KernelImage.Open(Fixtures.Build("reloc-nonzero"));
        var f = Assert.Single(ModuleCheck.Relocations(image));
        Assert.Equal("module.nonzero-relocation-target", f.Rule);
        ulong loc = image.SectionAddress(image.Elf.Section(".data")!);
        ulong val = image.SectionAddress(image.Elf.Section(".text")!);
        Assert.Equal($"x86/modules: Skipping invalid relocation target, existing value is nonzero for type 2, loc {loc:x16}, val {val:x}", f.KernelLines[0]);
        Assert.Equal(1, CliRun.Run("check", Fixtures.Build("reloc-nonzero")).Exit);
    }

    [Fact]
    public void ModuleKeysDefinedInVmlinux_AreJudgedWithTheVmlinuxKey()
    {
        var without = CliRun.Run("keys", Fixtures.Build("jump-module-extern"));
        Assert.Matches(@"memalloc_socks_key\s+extern", without.Out);
        var with = CliRun.Run("keys", Fixtures.Build("jump-module-extern"), "--vmlinux", Fixtures.Build("jump-socks"));
        Assert.Matches(@"memalloc_socks_key\s+ffffffff8100\w{4}\s+off\s+\.bss", with.Out);
        var check = CliRun.Run("check", Fixtures.Build("jump-module-extern"), "--vmlinux", Fixtures.Build("jump-socks"));
        Assert.Equal(1, check.Exit);
        Assert.Contains("jump_label: Fatal kernel bug, unexpected op at nfs_write+0x0/0x5 [nfs] [ffffffffc0000000] (eb 02 31 c0 c3 != 66 90 0f 1f 00)) " +
            "size:2 type:1", check.Lines);
    }
}
