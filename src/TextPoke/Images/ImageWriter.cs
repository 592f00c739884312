namespace TextPoke.Images;

/// <summary>Writes copies of images: patched bytes at virtual addresses, always atomically, never in place by accident.</summary>
public static class ImageWriter
{
    /// <summary>The offset in the ELF file of a virtual address in a section with file bytes.</summary>
    public static long FileOffset(KernelImage image, ulong address, int length = 1)
    {
        var section = image.SectionAt(address)
            ?? throw new ImageFormatException(image.Path, $"address {address:x16} lies outside every section of the image");
        if (!section.HasFileBytes)
            throw new ImageFormatException(image.Path, $"address {address:x16} lies in {section.Name}, which has no bytes in the file");
        ulong offset = address - image.SectionAddress(section);
        if (offset > section.Size || (ulong)length > section.Size - offset)
            throw new ImageFormatException(image.Path, $"{length} bytes at {address:x16} run past the end of {section.Name}");
        return (long)(section.Offset + offset);
    }

    /// <summary>A copy of the image's ELF bytes (the decompressed payload for a bzImage) with the given patches applied.</summary>
    public static byte[] PatchedElf(KernelImage image, IEnumerable<(ulong Address, byte[] Bytes)> patches)
    {
        var bytes = image.ElfImage.ToArray();
        foreach (var (address, patch) in patches)
            patch.CopyTo(bytes.AsSpan((int)FileOffset(image, address, patch.Length)));
        return bytes;
    }

    /// <summary>Writes a file atomically: a temporary file beside the target, then a rename over it.</summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> bytes)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? ".";
        // An unguessable name, created exclusively (O_CREAT|O_EXCL: never through a planted file or link), 0644 at most
        // for a new file, the target's own permission bits when it exists; the rename then replaces the target (a
        // symbolic link at the target is replaced, never followed).
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.textpoke-{Guid.NewGuid():N}.tmp");
        UnixFileMode? keep = null;
        try
        {
            if (!OperatingSystem.IsWindows() && File.Exists(full) && (File.GetAttributes(full) & FileAttributes.ReparsePoint) == 0)
                keep = File.GetUnixFileMode(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows())
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
            using (var stream = new FileStream(tmp, options))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            if (keep is { } mode && !OperatingSystem.IsWindows()) File.SetUnixFileMode(tmp, mode);
            File.Move(tmp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw new ImageFormatException(path, $"cannot write: {e.Message}");
        }
    }
}
