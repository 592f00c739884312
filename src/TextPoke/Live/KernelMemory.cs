using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using TextPoke.Images;

namespace TextPoke.Live;

/// <summary>The memory of a running kernel, read at its (virtual) kernel addresses.</summary>
public interface IKernelMemory
{
    /// <summary>Where the bytes come from ("QEMU guest memory", "/proc/kcore").</summary>
    string Description { get; }

    /// <summary>Fills <paramref name="destination"/> from <paramref name="address"/>; false when any byte is not readable.</summary>
    bool TryRead(ulong address, Span<byte> destination);
}

/// <summary>Little-endian reads of kernel memory.</summary>
public static class KernelMemoryReads
{
    public static bool TryReadU64(this IKernelMemory memory, ulong address, out ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        bool ok = memory.TryRead(address, b);
        value = ok ? BinaryPrimitives.ReadUInt64LittleEndian(b) : 0;
        return ok;
    }

    public static bool TryReadS32(this IKernelMemory memory, ulong address, out int value)
    {
        Span<byte> b = stackalloc byte[4];
        bool ok = memory.TryRead(address, b);
        value = ok ? BinaryPrimitives.ReadInt32LittleEndian(b) : 0;
        return ok;
    }
}

/// <summary>Regions of kernel memory copied out at one moment (a QEMU monitor dump), looked up by address.</summary>
public sealed class MemorySnapshot(string description) : IKernelMemory
{
    readonly List<(ulong Start, byte[] Bytes)> _regions = [];

    public string Description { get; } = description;
    public long Bytes => _regions.Sum(r => (long)r.Bytes.Length);

    public void Add(ulong start, byte[] bytes)
    {
        _regions.Add((start, bytes));
        _regions.Sort((a, b) => a.Start.CompareTo(b.Start));
    }

    public bool TryRead(ulong address, Span<byte> destination)
    {
        foreach (var (start, bytes) in _regions)
        {
            if (address < start || address - start >= (ulong)bytes.Length) continue;
            ulong offset = address - start;
            if ((ulong)destination.Length > (ulong)bytes.Length - offset) return false;
            bytes.AsSpan((int)offset, destination.Length).CopyTo(destination);
            return true;
        }
        return false;
    }
}

/// <summary>
/// /proc/kcore (or a file laid out like it): an ELF64 core file whose PT_LOAD segments map kernel virtual addresses
/// to file offsets. Read with positioned reads; nothing is loaded up front.
/// </summary>
public sealed class KcoreMemory : IKernelMemory, IDisposable
{
    readonly SafeFileHandle _file;
    readonly (ulong Address, ulong Size, long Offset)[] _segments;

    KcoreMemory(string path, SafeFileHandle file, (ulong, ulong, long)[] segments)
    {
        Description = path;
        _file = file;
        _segments = segments;
    }

    public string Description { get; }
    public int Segments => _segments.Length;

    /// <summary>Opens a core file; <see cref="ImageFormatException"/> when it is not an x86-64 ELF core with loadable segments.</summary>
    public static KcoreMemory Open(string path)
    {
        SafeFileHandle file;
        if (Directory.Exists(path)) throw new ImageFormatException(path, "cannot open: it is a directory");
        try { file = File.OpenHandle(path, FileMode.Open, FileAccess.Read); }
        catch (UnauthorizedAccessException) { throw new ImageFormatException(path, "cannot open: permission denied (reading /proc/kcore needs root)"); }
        catch (FileNotFoundException) { throw new ImageFormatException(path, "cannot open: no such file"); }
        catch (IOException e) { throw new ImageFormatException(path, $"cannot open: {e.Message}"); }
        try
        {
            Span<byte> header = stackalloc byte[64];
            if (RandomAccess.Read(file, header, 0) < 64 || !header[..4].SequenceEqual((ReadOnlySpan<byte>)[0x7f, (byte)'E', (byte)'L', (byte)'F']))
                throw new ImageFormatException(path, "not an ELF core file (no ELF header)");
            if (header[4] != 2 || header[5] != 1) throw new ImageFormatException(path, "not a 64-bit little-endian ELF core file");
            if (BinaryPrimitives.ReadUInt16LittleEndian(header[16..]) != 4)
                throw new ImageFormatException(path, "an ELF file, but not a core file (e_type is not ET_CORE)");
            if (BinaryPrimitives.ReadUInt16LittleEndian(header[18..]) != 62)
                throw new ImageFormatException(path, "a core file of another architecture (not x86-64)");
            long phoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(header[32..]);
            int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(header[54..]), phnum = BinaryPrimitives.ReadUInt16LittleEndian(header[56..]);
            if (phentsize < 56 || phnum == 0 || phnum > 65535 || phoff < 64) throw new ImageFormatException(path, "its program header table is malformed");
            var table = new byte[phentsize * phnum];
            if (RandomAccess.Read(file, table, phoff) != table.Length) throw new ImageFormatException(path, "truncated: the program header table is cut off");
            var segments = new List<(ulong, ulong, long)>();
            for (int i = 0; i < phnum; i++)
            {
                var ph = table.AsSpan(i * phentsize, 56);
                if (BinaryPrimitives.ReadUInt32LittleEndian(ph) != 1) continue; // PT_LOAD
                long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(ph[8..]);
                ulong vaddr = BinaryPrimitives.ReadUInt64LittleEndian(ph[16..]), size = BinaryPrimitives.ReadUInt64LittleEndian(ph[32..]);
                if (offset < 0 || size == 0) continue;
                segments.Add((vaddr, size, offset));
            }
            if (segments.Count == 0) throw new ImageFormatException(path, "a core file without loadable segments");
            segments.Sort((a, b) => a.Item1.CompareTo(b.Item1));
            return new KcoreMemory(path, file, [.. segments]);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public bool TryRead(ulong address, Span<byte> destination)
    {
        foreach (var (start, size, offset) in _segments)
        {
            if (address < start || address - start >= size) continue;
            if ((ulong)destination.Length > size - (address - start)) return false;
            try { return RandomAccess.Read(_file, destination, offset + (long)(address - start)) == destination.Length; }
            catch (IOException) { return false; }
        }
        return false;
    }

    public void Dispose() => _file.Dispose();
}
