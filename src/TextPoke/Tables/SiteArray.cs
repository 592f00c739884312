using System.Buffers.Binary;
using TextPoke.Images;
using TextPoke.Images.Elf;
using TextPoke.Symbols;

namespace TextPoke.Tables;

/// <summary>Locating and reading the kernel's simple site tables (patch-tables.md §0: rel32 fields, start/stop symbols).</summary>
public static class SiteArray
{
    /// <summary>
    /// Finds a table by its start/stop symbols (from any symbol source) or, failing that, by its own section. Tables such
    /// as __mcount_loc or .static_call_sites have no section of their own in a linked vmlinux.
    /// </summary>
    public static TableBounds? Locate(KernelImage image, ImageSymbols symbols, string? startSymbol, string? stopSymbol, string? sectionName)
    {
        if (!image.Elf.IsRelocatable && startSymbol != null && stopSymbol != null
            && symbols.TryFind(startSymbol, out ulong start, out var source) && symbols.TryFind(stopSymbol, out ulong stop, out _))
            return new TableBounds(start, stop, $"{startSymbol}/{stopSymbol} from {source!.Source.ToString().ToLowerInvariant()}", image.SectionAt(start)
                ?? image.SectionAt(stop - 1));
        if (sectionName != null && image.Elf.Section(sectionName) is { } section)
        {
            ulong address = image.SectionAddress(section);
            return new TableBounds(address, address + section.Size, $"section {sectionName}", section);
        }
        return null;
    }

    /// <summary>The table's bytes (relocated for ET_REL), or null with a reason when the bounds are unusable.</summary>
    public static byte[]? Bytes(KernelImage image, TableBounds bounds, out string? problem)
    {
        problem = null;
        if (bounds.Stop < bounds.Start) { problem = "ends before it starts"; return null; }
        if (bounds.Length == 0) return [];
        var section = bounds.Section;
        if (section == null || !section.HasFileBytes) { problem = section == null ? "lies outside every section"
            : $"lies in {section.Name}, which has no bytes in the file"; return null; }
        ulong sectionStart = image.SectionAddress(section);
        if (bounds.Start < sectionStart) { problem = $"starts before {section.Name}"; return null; }
        ulong offset = bounds.Start - sectionStart;
        // Written so that hostile bounds cannot wrap around.
        if (offset > section.Size || bounds.Length > section.Size - offset
            || bounds.Length > int.MaxValue) { problem = $"runs past the end of {section.Name}"; return null; }
        return image.SectionContents(section).Slice((int)offset, (int)bounds.Length).ToArray();
    }

    /// <summary>Target of the s32 rel32 field at <paramref name="index"/> (4-byte entries): its own address + value.</summary>
    public static ulong Rel32(ReadOnlySpan<byte> table, ulong tableAddress, int offset) =>
        tableAddress + (ulong)offset + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(table[offset..]);
}
