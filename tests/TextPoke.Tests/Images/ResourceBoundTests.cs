using System.Buffers.Binary;
using System.Diagnostics;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Images;

/// <summary>
/// Inputs built to exhaust memory or time end in bounded work and one clear line: decompression bombs (a size word far
/// beyond any kernel, a few bytes that claim a gigabyte, a stream that expands beyond its size word), a kallsyms count of
/// 2^31, a table section of a billion entries. The limits are documented in docs/reliability.md.
/// </summary>
public class ResourceBoundTests
{
    static byte[] SeedElf => File.ReadAllBytes(Fixtures.Build("jump-seed"));

    static byte[] WithSizeWord(byte[] compressed, uint size)
    {
        var word = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(word, size);
        return [.. compressed, .. word];
    }

    /// <summary>Bytes allocated by this thread while <paramref name="action"/> runs, and what it threw.</summary>
    static (long Allocated, ImageFormatException? Error) Measure(Action action)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        ImageFormatException? error = null;
        try { action(); }
        catch (ImageFormatException e) { error = e; }
        return (GC.GetAllocatedBytesForCurrentThread() - before, error);
    }

    [Fact]
    public void SizeWordBeyondAnyKernel_IsRefusedBeforeDecompressing()
    {
        var bz = BzImageMaker.Make(WithSizeWord(Tool.Compress("zstd", SeedElf, "-19", "-c"), 0xf0000000));
        var (allocated, error) = Measure(() => KernelImage.FromBytes("bomb", bz).Dispose());
        Assert.NotNull(error);
        Assert.Contains("implausible uncompressed size word 4026531840", error.Message);
        Assert.True(allocated < 16 << 20, $"{allocated} bytes allocated");
    }

    /// <summary>
    /// A 100-byte xz stream whose size word claims 1 GB (fuzzing found one claiming 1.2 GB: it allocated the claimed size up front).
    /// Now the output buffer starts at what the input could expand to, and grows only as bytes come.
    /// </summary>
    [Fact]
    public void AFewBytesClaimingAGigabyte_AllocateAFewMegabytes()
    {
        var bz = BzImageMaker.Make(WithSizeWord(Tool.Compress("xz", SeedElf, "--check=crc32", "-c")[..100], 1_000_000_000));
        var clock = Stopwatch.StartNew();
        var (allocated, error) = Measure(() => KernelImage.FromBytes("bomb", bz).Dispose());
        Assert.NotNull(error);
        Assert.Contains("corrupt xz payload", error.Message);
        Assert.True(allocated < 64 << 20, $"{allocated} bytes allocated");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
    }

    /// <summary>64 MiB of zeros (a 2 KB zstd stream) under a size word of 1 MiB: decoding stops at the size word.</summary>
    [Theory]
    [InlineData("zstd")]
    [InlineData("xz")]
    [InlineData("gzip")]
    public void AStreamExpandingBeyondItsSizeWord_StopsThere(string format)
    {
        var zeros = new byte[64 << 20];
        var compressed = format switch
        {
            "zstd" => Tool.Compress("zstd", zeros, "-1", "-c"),
            "xz" => Tool.Compress("xz", zeros, "--check=crc32", "-0", "-c"),
            _ => Tool.Compress("gzip", zeros, "-1", "-c")[..^4],
        };
        var bz = BzImageMaker.Make(WithSizeWord(compressed, 1 << 20));
        var (allocated, error) = Measure(() => KernelImage.FromBytes("bomb", bz).Dispose());
        Assert.NotNull(error);
        Assert.Contains("more than the size word's 1048576 bytes", error.Message);
        Assert.True(allocated < 40 << 20, $"{allocated} bytes allocated for a 64 MiB stream");
    }

    [Fact]
    public void KallsymsCountOf2Pow31_IsNotKallsyms_AndTheCheckEndsInALine()
    {
        var layout = new KallsymsMaker.Layout(KallsymsOrder.OffsetsFirst, 3, false, false);
        var elf = KallsymsMaker.BuildElf(layout, KallsymsMaker.Symbols(layout, 600), numSyms: 0x80000000);
        using var image = KernelImage.FromElfBytes("huge-count", elf);
        var clock = Stopwatch.StartNew();
        var (found, symbols, _) = Kallsyms.Recover(image);
        Assert.Null(found);
        Assert.Empty(symbols);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
        var path = Path.Combine(Repo.Scratch("huge-count"), "vmlinux");
        File.WriteAllBytes(path, elf);
        var r = CliRun.Run("check", path);
        Assert.Equal(2, r.Exit);
        Assert.DoesNotContain("cannot be processed", r.Err);
    }

    /// <summary>A __jump_table section header claiming 16 GB (a billion entries) in a 10 KB file: one line, exit 2.</summary>
    [Fact]
    public void ATableOfABillionEntries_IsRefusedInOneLine()
    {
        var elf = File.ReadAllBytes(Fixtures.Build("jump-section"));
        long shoff = BinaryPrimitives.ReadInt64LittleEndian(elf.AsSpan(0x28));
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x3a)), shnum = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x3c));
        int shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x3e));
        long strtab = BinaryPrimitives.ReadInt64LittleEndian(elf.AsSpan((int)(shoff + shstrndx * shentsize + 0x18)));
        int patched = 0;
        for (int i = 0; i < shnum; i++)
        {
            int header = (int)(shoff + i * shentsize);
            int name = (int)(strtab + BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(header)));
            if (System.Text.Encoding.ASCII.GetString(elf, name, "__jump_table".Length + 1) != "__jump_table\0") continue;
            BinaryPrimitives.WriteInt64LittleEndian(elf.AsSpan(header + 0x20), 16_000_000_000);
            patched++;
        }
        Assert.Equal(1, patched);
        var path = Path.Combine(Repo.Scratch("huge-table"), "vmlinux");
        File.WriteAllBytes(path, elf);
        var clock = Stopwatch.StartNew();
        var r = CliRun.Run("check", path);
        Assert.Equal(2, r.Exit);
        Assert.DoesNotContain("cannot be processed", r.Err);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
    }
}
