using System.Buffers.Binary;
using TextPoke.Images.Elf;
using static TextPoke.Images.Elf.ElfConstants;

namespace TextPoke.Images;

/// <summary>
/// Reads a few bytes of an unlinked section with only the relocations that overlap them applied, found by binary search
/// in the section's RELA entries (assemblers and linkers emit them sorted by offset). Checking a site of a large .text
/// then costs O(log n) instead of copying and relocating the whole section.
/// </summary>
internal static class RelocationWindow
{
    const int RelaSize = 24;

    /// <summary>Fills <paramref name="destination"/>; false when the RELA entries are not sorted (the caller relocates the whole section).</summary>
    public static bool TryApply(KernelImage image, ElfSection section, ulong offset, Span<byte> destination)
    {
        var elf = image.Elf;
        Span<byte> field = stackalloc byte[8];
        elf.SectionBytes(section).Slice((int)offset, destination.Length).CopyTo(destination);
        foreach (var rela in elf.RelocationSectionsFor(section))
        {
            if (rela.Type != SHT_RELA) return false;
            var bytes = elf.SectionBytes(rela);
            if (!IsSorted(image, rela, bytes)) return false;
            int count = bytes.Length / RelaSize;
            // First entry whose field could reach into the window (fields are at most 8 bytes wide).
            ulong from = offset >= 7 ? offset - 7 : 0, to = offset + (ulong)destination.Length;
            int lo = 0, hi = count;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (BinaryPrimitives.ReadUInt64LittleEndian(bytes[(mid * RelaSize)..]) < from) lo = mid + 1; else hi = mid;
            }
            var symbols = image.ElfSymbols;
            for (int i = lo; i < count; i++)
            {
                var r = bytes.Slice(i * RelaSize, RelaSize);
                ulong at = BinaryPrimitives.ReadUInt64LittleEndian(r);
                if (at >= to) break;
                ulong info = BinaryPrimitives.ReadUInt64LittleEndian(r[8..]);
                uint type = (uint)info, symbol = (uint)(info >> 32);
                int width = type switch { R_X86_64_64 or R_X86_64_PC64 => 8, R_X86_64_PC32 or R_X86_64_PLT32 or R_X86_64_32 or R_X86_64_32S => 4, _ => 0 };
                if (width == 0 || at + (ulong)width <= offset || symbol >= symbols.Length) continue;
                ulong s = image.SymbolAddress(symbols[symbol]) ?? 0;
                ulong value = unchecked(s + (ulong)BinaryPrimitives.ReadInt64LittleEndian(r[16..]));
                ulong place = image.SectionAddress(section) + at;
                switch (type)
                {
                    case R_X86_64_64: BinaryPrimitives.WriteUInt64LittleEndian(field, value); break;
                    case R_X86_64_PC64: BinaryPrimitives.WriteUInt64LittleEndian(field, unchecked(value - place)); break;
                    case R_X86_64_32: case R_X86_64_32S: BinaryPrimitives.WriteUInt32LittleEndian(field, (uint)value); break;
                    default: BinaryPrimitives.WriteUInt32LittleEndian(field, (uint)unchecked(value - place)); break;
                }
                for (int k = 0; k < width; k++)
                {
                    long d = (long)(at - offset) + k;
                    if (d >= 0 && d < destination.Length) destination[(int)d] = field[k];
                }
            }
        }
        return true;
    }

    static bool IsSorted(KernelImage image, ElfSection rela, ReadOnlySpan<byte> bytes)
    {
        if (image.SortedRelocations.TryGetValue(rela.Index, out bool sorted)) return sorted;
        sorted = true;
        ulong previous = 0;
        for (int i = 0; i + RelaSize <= bytes.Length && sorted; i += RelaSize)
        {
            ulong at = BinaryPrimitives.ReadUInt64LittleEndian(bytes[i..]);
            sorted = at >= previous;
            previous = at;
        }
        image.SortedRelocations[rela.Index] = sorted;
        return sorted;
    }

    /// <summary>The relocation applying exactly at a section offset: (type, symbol name), or null.</summary>
    public static (uint Type, string Symbol)? At(KernelImage image, ElfSection section, ulong offset)
    {
        var elf = image.Elf;
        foreach (var rela in elf.RelocationSectionsFor(section))
        {
            if (rela.Type != SHT_RELA) continue;
            var bytes = elf.SectionBytes(rela);
            int count = bytes.Length / RelaSize;
            if (!IsSorted(image, rela, bytes))
            {
                var relocated = image.RelocationsOf(section);
                int k = relocated?.At(offset) ?? -1;
                return k >= 0 ? (relocated!.Types[k], relocated.SymbolNames[k]) : null;
            }
            int lo = 0, hi = count;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (BinaryPrimitives.ReadUInt64LittleEndian(bytes[(mid * RelaSize)..]) < offset) lo = mid + 1; else hi = mid;
            }
            for (int i = lo; i < count && BinaryPrimitives.ReadUInt64LittleEndian(bytes[(i * RelaSize)..]) == offset; i++)
            {
                ulong info = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(i * RelaSize + 8)..]);
                if ((uint)info == R_X86_64_NONE) continue;
                uint symbol = (uint)(info >> 32);
                var symbols = image.ElfSymbols;
                string name = symbol >= symbols.Length ? "?" : symbols[symbol].Type == STT_SECTION && symbols[symbol].SectionIndex < elf.Sections.Count
                    ? elf.Sections[symbols[symbol].SectionIndex].Name : symbols[symbol].Name;
                return ((uint)info, name);
            }
        }
        return null;
    }
}
