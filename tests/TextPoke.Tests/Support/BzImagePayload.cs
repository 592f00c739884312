using System.Buffers.Binary;

namespace TextPoke.Tests.Support;

public static partial class BzImageMaker
{
    /// <summary>Compresses an ELF the way arch/x86/boot/compressed/Makefile does and appends the size word (gzip has its own).</summary>
    public static byte[] Payload(string format, byte[] elf)
    {
        byte[] compressed = format switch
        {
            "gzip" => Tool.Compress("gzip", elf, "-n", "-9", "-c"),
            "bzip2" => Tool.Compress("bzip2", elf, "-9", "-c"),
            "lzma" => Tool.Compress("xz", elf, "--format=lzma", "-9", "-c"),
            "xz" => Tool.Compress("xz", elf, "--check=crc32", "--x86", "--lzma2=dict=1MiB", "-c"),
            "lz4" => Tool.Compress("lz4", elf, "-l", "-9", "-c"),
            "zstd" => Tool.Compress("zstd", elf, "-19", "-c"),
            _ => throw new ArgumentException(format),
        };
        if (format == "gzip") return compressed;
        var size = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(size, (uint)elf.Length);
        return compressed.Concat(size).ToArray();
    }
}
