using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Images.BzImage;
using TextPoke.Symbols;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Images;

public class BzImageTests
{
    [Theory]
    [InlineData("gzip", CompressionFormat.Gzip)]
    [InlineData("bzip2", CompressionFormat.Bzip2)]
    [InlineData("lzma", CompressionFormat.Lzma)]
    [InlineData("xz", CompressionFormat.Xz)]
    [InlineData("lz4", CompressionFormat.Lz4Legacy)]
    [InlineData("zstd", CompressionFormat.Zstd)]
    public void EveryKernelCompression_OpensTheElfInside(string format, CompressionFormat expected)
    {
        var elf = File.ReadAllBytes(Fixtures.Build("jump-seed"));
        var path = Path.Combine(Repo.Scratch("bz"), "vmlinuz");
        File.WriteAllBytes(path, BzImageMaker.Make(BzImageMaker.Payload(format, elf)));
        using var image = KernelImage.Open(path);
        Assert.Equal(ImageKind.BzImage, image.Kind);
        Assert.Equal(expected, image.Compression);
        Assert.Equal(elf, image.ElfImage.ToArray());
        var report = JumpLabelCheck.Run(image, ImageSymbols.Load(image, lookBeside: false));
        Assert.Equal("jump.objtool-not-run", Assert.Single(report.Findings).Rule);
    }

    [Theory]
    [InlineData("xz")]
    [InlineData("lz4")]
    [InlineData("gzip")]
    [InlineData("zstd")]
    public void CorruptPayload_IsOneClearError(string format)
    {
        var elf = File.ReadAllBytes(Fixtures.Build("jump-clean"));
        var payload = BzImageMaker.Payload(format, elf);
        for (int i = 24; i < payload.Length - 8; i += 7) payload[i] ^= 0x5a;
        var path = Path.Combine(Repo.Scratch("bzcorrupt"), "vmlinuz");
        File.WriteAllBytes(path, BzImageMaker.Make(payload));
        var e = Assert.Throws<ImageFormatException>(() => KernelImage.Open(path).Dispose());
        Assert.StartsWith(path, e.Message);
        Assert.Contains(format == "lz4" ? "lz4" : format, e.Message);
    }

    [Fact]
    public void PayloadOutsideTheFile_IsATruncatedBzImage()
    {
        var elf = File.ReadAllBytes(Fixtures.Build("jump-clean"));
        var file = BzImageMaker.Make(BzImageMaker.Payload("gzip", elf));
        var path = Path.Combine(Repo.Scratch("bztrunc"), "vmlinuz");
        File.WriteAllBytes(path, file[..(file.Length / 2)]);
        var e = Assert.Throws<ImageFormatException>(() => KernelImage.Open(path).Dispose());
        Assert.Contains("truncated bzImage", e.Message);
    }
}
