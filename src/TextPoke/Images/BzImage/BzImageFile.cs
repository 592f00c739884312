using System.Buffers.Binary;

namespace TextPoke.Images.BzImage;

/// <summary>
/// The x86 boot protocol setup header of a bzImage/vmlinuz (Documentation/arch/x86/boot.rst, v2.08+ for the payload fields).
/// </summary>
public sealed record BzImageHeader(int SetupSectors, ushort ProtocolVersion, long PayloadOffset, long PayloadLength, uint InitSize, string? KernelVersion)
{
    /// <summary>File offset of the protected-mode part: (setup_sects + 1) * 512.</summary>
    public long ProtectedModeOffset => (SetupSectors + 1) * 512L;

    public string ProtocolText => $"{ProtocolVersion >> 8}.{ProtocolVersion & 0xff:d2}";
}

/// <summary>Finds and decompresses the vmlinux inside a bzImage.</summary>
public static class BzImageFile
{
    /// <summary>True when the file carries the "HdrS" setup header signature and the boot sector magic.</summary>
    public static bool IsBzImage(ImageFile file) =>
        file.Length > 0x264 && file.U16(0x1fe) == 0xaa55 && file.Span(0x202, 4).SequenceEqual("HdrS"u8);

    public static BzImageHeader ReadHeader(ImageFile file)
    {
        if (!IsBzImage(file)) throw new ImageFormatException(file.Name, "not a bzImage (no \"HdrS\" setup header)");
        int setupSects = file.Span(0x1f1, 1)[0];
        if (setupSects == 0) setupSects = 4;
        ushort version = file.U16(0x206);
        if (version < 0x0208)
            throw new ImageFormatException(file.Name, 0x206,
                $"boot protocol {version >> 8}.{version & 0xff:d2} predates payload fields (2.08): too old a kernel");
        uint payloadOffset = file.U32(0x248), payloadLength = file.U32(0x24c), initSize = file.U32(0x260);
        var header = new BzImageHeader(setupSects, version, payloadOffset, payloadLength, initSize, ReadVersionString(file));
        long start = header.ProtectedModeOffset + payloadOffset;
        if (payloadLength < 8 || !file.Contains(start, payloadLength))
            throw new ImageFormatException(file.Name, 0x248,
                $"payload (offset 0x{start:x}, 0x{payloadLength:x} bytes) lies outside the file (size 0x{file.Length:x}): truncated bzImage");
        return header;
    }

    // kernel_version (0x20e) points to a NUL-terminated string at offset + 0x200.
    static string? ReadVersionString(ImageFile file)
    {
        int pointer = file.U16(0x20e);
        if (pointer == 0 || !file.TrySpan(pointer + 0x200, Math.Min(256, file.Length - pointer - 0x200), out var s)) return null;
        int nul = s.IndexOf((byte)0);
        if (nul <= 0) return null;
        return System.Text.Encoding.ASCII.GetString(s[..nul]);
    }

    /// <summary>
    /// Decompresses the payload. Every format ends with a 4-byte little-endian uncompressed size (size_append, or gzip's
    /// own ISIZE); decoders other than gzip must not see it.
    /// </summary>
    public static (byte[] Elf, CompressionFormat Format) Decompress(ImageFile file, BzImageHeader header)
    {
        var payload = file.Span(header.ProtectedModeOffset + header.PayloadOffset, header.PayloadLength, "payload");
        var format = Compression.Detect(payload);
        if (format == CompressionFormat.None)
        {
            if (Elf.ElfFile.IsElf(payload)) return (payload.ToArray(), format); // CONFIG_KERNEL_UNCOMPRESSED
            throw new ImageFormatException(file.Name, header.ProtectedModeOffset + header.PayloadOffset,
                $"payload has no known compression magic (starts {Convert.ToHexString(payload[..8]).ToLowerInvariant()})");
        }
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(payload[^4..]);
        if (size == 0 || size > Compression.MaxOutput)
            throw new ImageFormatException(file.Name, $"{Compression.Name(format)} payload: implausible uncompressed size word {size}");
        var stream = format == CompressionFormat.Gzip ? payload : payload[..^4];
        byte[] elf;
        try
        {
            elf = Compression.Decompress(format, stream, size);
        }
        catch (InvalidDataException e)
        {
            throw new ImageFormatException(file.Name, $"corrupt {Compression.Name(format)} payload: {e.Message}");
        }
        if (!Elf.ElfFile.IsElf(elf))
            throw new ImageFormatException(file.Name, $"the {Compression.Name(format)} payload does not decompress to an ELF file");
        return (elf, format);
    }
}
