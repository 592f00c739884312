using System.Buffers.Binary;
using TextPoke.Images.Elf;
using static TextPoke.Images.Elf.ElfConstants;

namespace TextPoke.Images;

/// <summary>
/// A copy of one ET_REL section with its RELA relocations applied as the module loader does (S + A - P), and the
/// relocation sites kept sorted so checks can ask "is there a live relocation here?".
/// arch/x86/kernel/module.c (__write_relocate_add), v5.15..v6.12: R_X86_64_64, 32, 32S, PC32, PLT32, PC64.
/// </summary>
public sealed class RelocatedSection
{
    public required byte[] Bytes { get; init; }
    public required ulong[] Offsets { get; init; }
    public required uint[] Types { get; init; }
    /// <summary>False where the symbol is undefined in this object (resolved later against vmlinux or another module).</summary>
    public required bool[] Resolved { get; init; }
    public required string[] SymbolNames { get; init; }
    /// <summary>Offsets whose field was not zero before relocation (the 6.x loader rejects these).</summary>
    public required List<ulong> NonZeroTargets { get; init; }

    /// <summary>The index of the relocation at exactly this offset, or -1.</summary>
    public int At(ulong offset)
    {
        int i = Array.BinarySearch(Offsets, offset);
        return i >= 0 ? i : -1;
    }

    public static RelocatedSection Build(KernelImage image, ElfSection section)
    {
        var elf = image.Elf;
        var bytes = elf.SectionBytes(section).ToArray();
        var symbols = image.ElfSymbols;
        ulong p0 = image.SectionAddress(section);
        var relas = elf.RelocationSectionsFor(section);
        int capacity = 0;
        foreach (var rela in relas) capacity += elf.Relocations(rela).Count;
        var offsets = new ulong[capacity];
        var types = new uint[capacity];
        var resolved = new bool[capacity];
        var names = new string[capacity];
        var nonZero = new List<ulong>();
        int n = 0;
        bool sorted = true;
        foreach (var rela in relas)
        {
            foreach (var r in elf.Relocations(rela))
            {
                if (r.Type == R_X86_64_NONE) continue;
                if (r.SymbolIndex >= symbols.Length)
                    throw new ImageFormatException(image.Path,
                        $"relocation in {rela.Name} at 0x{r.Offset:x} names symbol {r.SymbolIndex}, past the symbol table");
                var sym = symbols[r.SymbolIndex];
                ulong? s = image.SymbolAddress(sym);
                int width = r.Type switch
                {
                    R_X86_64_64 or R_X86_64_PC64 => 8,
                    R_X86_64_PC32 or R_X86_64_PLT32 or R_X86_64_32 or R_X86_64_32S => 4,
                    _ => 0, // the module loader rejects it; ModuleCheck reports it
                };
                if (width == 0) continue;
                if (r.Offset > (ulong)bytes.Length || (ulong)bytes.Length - r.Offset < (ulong)width)
                    throw new ImageFormatException(image.Path, $"relocation in {rela.Name} at 0x{r.Offset:x} lies outside section {section.Name}");
                var field = bytes.AsSpan((int)r.Offset, width);
                if (field.IndexOfAnyExcept((byte)0) >= 0) nonZero.Add(r.Offset);
                if (n > 0 && r.Offset < offsets[n - 1]) sorted = false;
                offsets[n] = r.Offset;
                types[n] = r.Type;
                resolved[n] = s.HasValue;
                names[n] = sym.Type == STT_SECTION && sym.SectionIndex < elf.Sections.Count ? elf.Sections[sym.SectionIndex].Name : sym.Name;
                n++;
                ulong value = unchecked((s ?? 0) + (ulong)r.Addend);
                ulong place = p0 + r.Offset;
                switch (r.Type)
                {
                    case R_X86_64_64: BinaryPrimitives.WriteUInt64LittleEndian(field, value); break;
                    case R_X86_64_PC64: BinaryPrimitives.WriteUInt64LittleEndian(field, unchecked(value - place)); break;
                    case R_X86_64_32: case R_X86_64_32S: BinaryPrimitives.WriteUInt32LittleEndian(field, (uint)value); break;
                    default: BinaryPrimitives.WriteUInt32LittleEndian(field, (uint)unchecked(value - place)); break;
                }
            }
        }
        if (n != capacity)
        {
            Array.Resize(ref offsets, n);
            Array.Resize(ref types, n);
            Array.Resize(ref resolved, n);
            Array.Resize(ref names, n);
        }
        if (!sorted)
        {
            var order = Enumerable.Range(0, n).ToArray();
            Array.Sort(offsets.ToArray(), order);
            offsets = order.Select(i => offsets[i]).ToArray();
            types = order.Select(i => types[i]).ToArray();
            resolved = order.Select(i => resolved[i]).ToArray();
            names = order.Select(i => names[i]).ToArray();
        }
        return new RelocatedSection { Bytes = bytes, Offsets = offsets, Types = types, Resolved = resolved, SymbolNames = names, NonZeroTargets = nonZero };
    }
}
