using System.Buffers.Binary;

namespace TextPoke.Tests.Support;

/// <summary>Wraps a compressed payload in a minimal bzImage: the x86 boot protocol setup header and nothing else.</summary>
public static class BzImageMaker
{
    public const int SetupSectors = 1;
    public const int PayloadOffset = 0x200;

    public static byte[] Make(byte[] payload)
    {
        int protectedMode = (SetupSectors + 1) * 512;
        var file = new byte[protectedMode + PayloadOffset + payload.Length];
        file[0x1f1] = SetupSectors;
        file[0x1fe] = 0x55;
        file[0x1ff] = 0xaa;
        "HdrS"u8.CopyTo(file.AsSpan(0x202));
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(0x206), 0x020f);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(0x248), PayloadOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(0x24c), (uint)payload.Length);
        payload.CopyTo(file.AsSpan(protectedMode + PayloadOffset));
        return file;
    }

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
