using System.Buffers.Binary;
using TextPoke.Images;
using TextPoke.Images.Elf;
using TextPoke.Symbols;

namespace TextPoke.Tables;

/// <summary>struct jump_entry encodings (jump-labels.md §2.1).</summary>
public enum JumpEntryFormat
{
    /// <summary>v4.14..v4.19: {u64 code; u64 target; u64 key}, 24 bytes.</summary>
    Absolute,
    /// <summary>v4.20+ (HAVE_ARCH_JUMP_LABEL_RELATIVE): {s32 code; s32 target; long key}, 16 bytes, each relative to its field.</summary>
    Relative,
}

/// <summary>
/// A kernel era of the x86 jump-label patcher: the entry format, which site lengths exist, and the message the patcher
/// prints. Version differences are data, chosen by <see cref="JumpTable.Probe"/>.
/// </summary>
public sealed record JumpLabelEra(string Name, string Kernels, JumpEntryFormat Format, bool VariableLength,
    int? EnableLine, int? DisableLine, int? BugLine, string LineSource, int? InitLine = null)
{
    public int EntrySize => Format == JumpEntryFormat.Absolute ? 24 : 16;

    /// <summary>v4.14..v4.19: absolute entries, 5-byte sites, bug_at(ip, __LINE__); lines of v4.19.</summary>
    public static readonly JumpLabelEra Absolute = new("absolute", "v4.14..v4.19", JumpEntryFormat.Absolute, false, 68, 89, null, "line numbers of v4.19");
    /// <summary>
    /// v4.20..v5.13: relative entries, 5-byte sites, __jump_label_set_jump_code() then bug_at(ip, __LINE__); lines of v5.10:
    /// 45 when jump_label_init() finds a site that is not the compiler's NOP, 47 on enable, 49 on disable, BUG() in bug_at at 27.
    /// </summary>
    public static readonly JumpLabelEra RelativeFixed = new("relative, 5-byte sites", "v4.20..v5.13", JumpEntryFormat.Relative, false, 47, 49, 27,
        "line numbers of v5.10", InitLine: 45);
    /// <summary>v5.14+: relative entries, 2- or 5-byte sites rewritten by objtool, __jump_label_patch (BUG() at line 73).</summary>
    public static readonly JumpLabelEra RelativeVariable = new("relative, 2/5-byte sites", "v5.14..v6.12", JumpEntryFormat.Relative, true, null, null, 73,
        "v5.15, v5.19, v6.1, v6.6, v6.12");
}

/// <summary>Where the table is and how that was found.</summary>
public sealed record TableBounds(ulong Start, ulong Stop, string How, ElfSection? Section)
{
    public ulong Length => Stop - Start;
}

/// <summary>One decoded jump_entry with the facts the checks need.</summary>
public readonly record struct JumpEntry(
    int Index, ulong EntryAddress, ulong Code, ulong Target, ulong Key, int Flags, bool KeyResolved, string? ExternalKey)
{
    /// <summary>Bit 0 of the key field: the branch polarity (1 = static_branch_likely).</summary>
    public bool Branch => (Flags & 1) != 0;
    /// <summary>Bit 1 on disk (v5.14+): objtool must NOP this site (arch_static_branch emits "2 | branch").</summary>
    public bool NopMark => (Flags & 2) != 0;
}

/// <summary>Reads __jump_table: bounds, format probe, entries. Zero-copy over the image bytes.</summary>
public static class JumpTable
{
    public const string StartSymbol = "__start___jump_table", StopSymbol = "__stop___jump_table", SectionName = "__jump_table";

    /// <summary>Finds the table: start/stop symbols from any source, else a section named __jump_table. Null if neither.</summary>
    public static TableBounds? Locate(KernelImage image, ImageSymbols symbols)
    {
        if (!image.Elf.IsRelocatable && symbols.TryFind(StartSymbol, out ulong start, out var source) && symbols.TryFind(StopSymbol, out ulong stop, out _))
            return new TableBounds(start, stop, $"{StartSymbol}/{StopSymbol} from {SourceName(source!)}", image.SectionAt(start));
        var section = image.Elf.Section(SectionName);
        if (section != null)
        {
            ulong address = image.SectionAddress(section);
            return new TableBounds(address, address + section.Size, $"section {SectionName}", section);
        }
        return null;
    }

    static string SourceName(SymbolTable table) => table.Source switch
    {
        SymbolSource.Kallsyms => "kallsyms",
        SymbolSource.ElfSymtab => ".symtab",
        SymbolSource.SystemMap => "System.map",
        _ => "symbols",
    };

    /// <summary>
    /// Decides the entry format from the bytes: the length must divide and sampled entries must decode to code and
    /// target addresses in text. Returns null when neither format fits. The era also uses the build-time NOP mark and
    /// 2-byte sites (only v5.14+ has them), and the version banner only to break a tie.
    /// </summary>
    public static (JumpEntryFormat? Format, string Evidence) ProbeFormat(KernelImage image, TableBounds bounds)
    {
        if (bounds.Length == 0) return (JumpEntryFormat.Relative, "empty table");
        int relScore = bounds.Length % 16 == 0 ? Score(image, bounds, JumpEntryFormat.Relative) : -1;
        int absScore = bounds.Length % 24 == 0 ? Score(image, bounds, JumpEntryFormat.Absolute) : -1;
        int best = Math.Max(relScore, absScore);
        if (best < 50) return (null, $"length {bounds.Length} bytes: neither 16-byte relative nor 24-byte absolute entries decode to text addresses");
        var format = relScore >= absScore ? JumpEntryFormat.Relative : JumpEntryFormat.Absolute;
        return (format,
            $"{(format == JumpEntryFormat.Relative ? "16-byte relative" : "24-byte absolute")} entries ({best}% of sampled entries point into text)");
    }

    static int Score(KernelImage image, TableBounds bounds, JumpEntryFormat format)
    {
        int size = format == JumpEntryFormat.Absolute ? 24 : 16;
        int count = (int)(bounds.Length / (ulong)size);
        int sample = Math.Min(count, 64), good = 0;
        if (sample == 0) return 0;
        var table = TableBytes(image, bounds);
        for (int s = 0; s < sample; s++)
        {
            int i = (int)((long)s * count / sample);
            var e = Read(table, bounds.Start, i, format, null);
            if (image.IsText(e.Code) && image.IsText(e.Target)) good++;
        }
        return good * 100 / sample;
    }

    /// <summary>The table bytes as the kernel sees them (relocated for ET_REL).</summary>
    public static ReadOnlySpan<byte> TableBytes(KernelImage image, TableBounds bounds)
    {
        var section = bounds.Section ?? throw new ImageFormatException(image.Path, $"jump table at {bounds.Start:x16} lies outside every section");
        ulong sectionStart = image.SectionAddress(section);
        ulong offset = bounds.Start - sectionStart;
        if (bounds.Start < sectionStart || offset > section.Size || bounds.Length > section.Size - offset || bounds.Length > int.MaxValue)
            throw new ImageFormatException(image.Path, $"jump table [{bounds.Start:x16}, {bounds.Stop:x16}) runs past the end of section {section.Name}");
        if (!section.HasFileBytes)
            throw new ImageFormatException(image.Path, $"jump table lies in {section.Name}, which has no bytes in the file");
        return image.SectionContents(section).Slice((int)offset, (int)bounds.Length);
    }

    /// <summary>Decodes entry <paramref name="index"/> from the table bytes. Relative fields are relative to their own address.</summary>
    public static JumpEntry Read(ReadOnlySpan<byte> table, ulong tableAddress, int index, JumpEntryFormat format, RelocatedSection? relocations,
        ulong tableOffsetInSection = 0)
    {
        if (format == JumpEntryFormat.Absolute)
        {
            var a = table.Slice(index * 24, 24);
            ulong keyField = BinaryPrimitives.ReadUInt64LittleEndian(a[16..]);
            return new JumpEntry(index, tableAddress + (ulong)index * 24, BinaryPrimitives.ReadUInt64LittleEndian(a),
                BinaryPrimitives.ReadUInt64LittleEndian(a[8..]), keyField & ~1UL, (int)(keyField & 1), true, null);
        }
        var r = table.Slice(index * 16, 16);
        ulong entry = tableAddress + (ulong)index * 16;
        ulong code = entry + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(r);
        ulong target = entry + 4 + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(r[4..]);
        long key = BinaryPrimitives.ReadInt64LittleEndian(r[8..]);
        bool resolved = true;
        string? external = null;
        if (relocations != null)
        {
            int k = relocations.At(tableOffsetInSection + (ulong)index * 16 + 8);
            if (k >= 0 && !relocations.Resolved[k]) { resolved = false; external = relocations.SymbolNames[k]; }
        }
        return new JumpEntry(index, entry, code, target, entry + 8 + (ulong)(key & ~3L), (int)(key & 3), resolved, external);
    }

    /// <summary>Every entry of the table, relocated where the image is an unlinked object.</summary>
    public static JumpEntry[] ReadAll(KernelImage image, TableBounds bounds, JumpEntryFormat format)
    {
        var table = TableBytes(image, bounds);
        var relocations = image.RelocationsOf(bounds.Section!);
        ulong tableOffset = bounds.Start - image.SectionAddress(bounds.Section!);
        int count = (int)(bounds.Length / (ulong)(format == JumpEntryFormat.Absolute ? 24 : 16));
        var entries = new JumpEntry[count];
        for (int i = 0; i < count; i++) entries[i] = Read(table, bounds.Start, i, format, relocations, tableOffset);
        return entries;
    }

    /// <summary>
    /// The era of the table, from the bytes: absolute entries are v4.14..v4.19; relative entries with objtool's NOP mark
    /// or a 2-byte site are v5.14+; otherwise the banner's version decides, and without one the 5-byte era is assumed.
    /// </summary>
    public static (JumpLabelEra Era, string Evidence) DecideEra(KernelImage image, JumpEntryFormat format, ReadOnlySpan<JumpEntry> entries)
    {
        if (format == JumpEntryFormat.Absolute) return (JumpLabelEra.Absolute, "24-byte absolute entries");
        bool anyMark = false;
        foreach (var e in entries) anyMark |= e.NopMark;
        if (anyMark) return (JumpLabelEra.RelativeVariable, "entries carry objtool's NOP mark (key bit 1)");
        var decoder = new X86.InstructionDecoder();
        Span<byte> buffer = stackalloc byte[16];
        foreach (var e in entries)
        {
            int n = image.Read(e.Code, buffer);
            if (n >= 2 && decoder.Decode(buffer[..n], e.Code) is { IsValid: true, Length: 2 }) return (JumpLabelEra.RelativeVariable, "2-byte sites present");
        }
        if (image.Version is { } v && (v.Major > 5 || v.Major == 5 && v.Minor >= 14))
            return (JumpLabelEra.RelativeVariable, $"relative entries, banner says {v.Major}.{v.Minor}");
        return (JumpLabelEra.RelativeFixed, "relative entries, only 5-byte sites and no objtool NOP marks");
    }
}
