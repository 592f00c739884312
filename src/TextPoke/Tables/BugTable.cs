using System.Buffers.Binary;
using System.Text;
using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Tables;

/// <summary>One struct bug_entry: the ud2 of a BUG()/WARN() and, with DEBUG_BUGVERBOSE, its file and line.</summary>
public readonly record struct BugEntry(ulong Address, string? File, int Line, int Flags)
{
    /// <summary>include/asm-generic/bug.h: BUGFLAG_WARNING.</summary>
    public bool IsWarning => (Flags & 1) != 0;
}

/// <summary>The displacement base of struct bug_entry's relative fields (patch-tables.md §7).</summary>
public enum BugEntryFormat
{
    /// <summary>v4.19..v5.18: "x - 2b", both displacements relative to the entry start.</summary>
    EntryRelative,
    /// <summary>v5.19+ (69505e3d9a39): "x - .", each relative to its own field.</summary>
    FieldRelative,
    /// <summary>Without DEBUG_BUGVERBOSE: 8 bytes, address and flags only.</summary>
    NoVerbose,
}

/// <summary>
/// Reads __bug_table (GENERIC_BUG, relative pointers on x86-64): 12-byte entries {s32 bug_addr_disp; s32 file_disp;
/// u16 line; u16 flags} with DEBUG_BUGVERBOSE, else 8 bytes. The file displacement base is decided by which base lands on
/// a NUL-terminated path. Used to print the kernel's own "kernel BUG at file:line!" / "WARNING: ... at file:line" and RIP.
/// </summary>
public sealed class BugTable
{
    readonly BugEntry[] _entries;

    public BugEntryFormat Format { get; }
    public IReadOnlyList<BugEntry> Entries => _entries;

    BugTable(BugEntryFormat format, BugEntry[] entries)
    {
        Format = format;
        _entries = entries;
    }

    /// <summary>Reads the table, or returns null when the image has none (or it cannot be decoded).</summary>
    public static BugTable? Read(KernelImage image, ImageSymbols symbols)
    {
        ulong start, stop;
        if (symbols.TryFind("__start___bug_table", out start, out _) && symbols.TryFind("__stop___bug_table", out stop, out _)) { }
        else if (image.Elf.Section("__bug_table") is { } s) { start = image.SectionAddress(s); stop = start + s.Size; }
        else return null;
        var section = image.SectionAt(start);
        if (section == null || stop <= start || !section.HasFileBytes) return null;
        if (start < image.SectionAddress(section)) return null;
        ulong offset = start - image.SectionAddress(section);
        if (offset > section.Size || stop - start > section.Size - offset || stop - start > int.MaxValue) return null;
        var bytes = image.SectionContents(section).Slice((int)offset, (int)(stop - start));
        foreach (var format in new[] { BugEntryFormat.FieldRelative, BugEntryFormat.EntryRelative })
        {
            if (bytes.Length % 12 != 0) break;
            var entries = TryDecode(image, bytes, start, format);
            if (entries != null) return new BugTable(format, entries);
        }
        if (bytes.Length % 8 == 0)
        {
            var entries = new BugEntry[bytes.Length / 8];
            for (int i = 0; i < entries.Length; i++)
            {
                ulong at = start + (ulong)(8 * i);
                entries[i] = new BugEntry(at + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(bytes[(8 * i)..]), null, 0,
                    BinaryPrimitives.ReadUInt16LittleEndian(bytes[(8 * i + 4)..]));
            }
            if (entries.Take(16).All(e => image.IsText(e.Address))) return new BugTable(BugEntryFormat.NoVerbose, entries);
        }
        return null;
    }

    static BugEntry[]? TryDecode(KernelImage image, ReadOnlySpan<byte> bytes, ulong start, BugEntryFormat format)
    {
        int count = bytes.Length / 12;
        var entries = new BugEntry[count];
        var files = new Dictionary<ulong, string?>();
        Span<byte> path = stackalloc byte[256];
        int bad = 0;
        for (int i = 0; i < count; i++)
        {
            var e = bytes.Slice(12 * i, 12);
            ulong at = start + (ulong)(12 * i);
            ulong address = at + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(e);
            long fileDisp = BinaryPrimitives.ReadInt32LittleEndian(e[4..]);
            int line = BinaryPrimitives.ReadUInt16LittleEndian(e[8..]);
            // Zero file and line fields: an entry without a location (toolchain-test kernels), still an entry, when its
            // address is text (an 8-byte table read as 12-byte would put the next entry's address in the line field).
            if (fileDisp == 0 && line == 0)
            {
                if (!image.IsText(address)) bad++;
                if (i == 31 && bad > 4) return null;
                entries[i] = new BugEntry(address, null, 0, BinaryPrimitives.ReadUInt16LittleEndian(e[10..]));
                continue;
            }
            ulong file = (format == BugEntryFormat.FieldRelative ? at + 4 : at) + (ulong)fileDisp;
            if (!files.TryGetValue(file, out var name))
            {
                int n = image.Read(file, path);
                int nul = path[..n].IndexOf((byte)0);
                name = nul > 0 && path[..nul].IndexOfAnyExceptInRange((byte)0x20, (byte)0x7e) < 0 ? Encoding.ASCII.GetString(path[..nul]) : null;
                files[file] = name;
            }
            if (name == null || !name.Contains('/') && !name.EndsWith(".h", StringComparison.Ordinal) && !name.EndsWith(".c", StringComparison.Ordinal)) bad++;
            if (i == 31 && bad > 4) return null;
            entries[i] = new BugEntry(address, name, BinaryPrimitives.ReadUInt16LittleEndian(e[8..]), BinaryPrimitives.ReadUInt16LittleEndian(e[10..]));
        }
        return bad * 20 > count ? null : entries;
    }

    /// <summary>The entries of one source file whose ud2 lies inside the named function (or its .cold part).</summary>
    public IEnumerable<BugEntry> In(string file, string function, SymbolTable names) =>
        _entries.Where(e => e.File == file && names.FunctionAt(e.Address) is { } f && (f == function || f.StartsWith(function + ".",
            StringComparison.Ordinal)));
}
