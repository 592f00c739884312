using System.Buffers.Binary;
using System.Text;
using TextPoke.Images;
using TextPoke.Images.Elf;
using static TextPoke.Images.Elf.ElfConstants;

namespace TextPoke.Symbols;

/// <summary>
/// Adds .symtab and .strtab to a linked ELF (the job of vmlinux-to-elf): the original bytes stay where they are, the new
/// tables, a new section name table and a new section header table are appended, and the ELF header points at them.
/// </summary>
public static class SymtabAppender
{
    const int SymbolSize = 24, SectionHeaderSize = 64;

    /// <summary>Returns a new ELF: <paramref name="image"/>'s bytes with the symbols appended as .symtab.</summary>
    public static byte[] Append(KernelImage image, SymbolTable symbols)
    {
        var elf = image.Elf;
        if (elf.IsRelocatable) throw new ImageFormatException(image.Path, "extract adds symbols to linked images only; this is a relocatable object");
        var original = image.ElfImage.Span(0, image.ElfImage.Length);
        var output = new MemoryStream((int)original.Length + symbols.Count * 40 + (1 << 20));
        output.Write(original);
        Align(output, 8);

        // String table and symbols: locals first (sh_info = index of the first non-local).
        var strtab = new MemoryStream();
        strtab.WriteByte(0);
        var entries = symbols.Entries;
        var order = Enumerable.Range(0, entries.Count).OrderBy(i => char.IsUpper(entries[i].Type) || entries[i].Type is 'w' or 'v' ? 1 : 0).ToArray();
        var symtab = new byte[SymbolSize * (entries.Count + 1)];
        int firstGlobal = 1;
        for (int n = 0; n < order.Length; n++)
        {
            var e = entries[order[n]];
            var span = symtab.AsSpan(SymbolSize * (n + 1), SymbolSize);
            BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)strtab.Position);
            strtab.Write(Encoding.Latin1.GetBytes(e.Name));
            strtab.WriteByte(0);
            bool local = char.IsLower(e.Type) && e.Type is not ('w' or 'v');
            if (local) firstGlobal = n + 2;
            byte bind = e.Type is 'W' or 'w' or 'V' or 'v' ? STB_WEAK : local ? STB_LOCAL : STB_GLOBAL;
            byte type = e.Type is 'T' or 't' or 'W' or 'w' ? STT_FUNC : e.Type is 'A' or 'a' ? STT_NOTYPE : STT_OBJECT;
            var section = e.Type is 'A' or 'a' ? null : image.SectionAt(e.Address);
            ushort shndx = section == null ? SHN_ABS : (ushort)section.Index;
            ulong size = 0;
            if (section != null && symbols.Lookup(e.Address) is { } hit && hit.Symbol.Address == e.Address)
                size = Math.Min(hit.Size, section.Address + section.Size - e.Address);
            span[4] = (byte)(bind << 4 | type);
            BinaryPrimitives.WriteUInt16LittleEndian(span[6..], shndx);
            BinaryPrimitives.WriteUInt64LittleEndian(span[8..], e.Address);
            BinaryPrimitives.WriteUInt64LittleEndian(span[16..], size);
        }
        long symtabOffset = output.Position;
        output.Write(symtab);
        long strtabOffset = output.Position;
        output.Write(strtab.ToArray());

        // Section names: the old table plus the two new names.
        var oldNames = elf.Sections[ShStrIndex(original)];
        var shstr = new MemoryStream();
        shstr.Write(elf.SectionBytes(oldNames));
        uint symtabName = (uint)shstr.Position; shstr.Write(".symtab\0"u8);
        uint strtabName = (uint)shstr.Position; shstr.Write(".strtab\0"u8);
        long shstrOffset = output.Position;
        output.Write(shstr.ToArray());
        Align(output, 8);

        long shoff = output.Position;
        int oldCount = elf.Sections.Count;
        ulong oldShoff = BinaryPrimitives.ReadUInt64LittleEndian(original[40..]);
        var headers = new byte[SectionHeaderSize * (oldCount + 2)];
        original.Slice((int)oldShoff, SectionHeaderSize * oldCount).CopyTo(headers);
        var names = headers.AsSpan(SectionHeaderSize * oldNames.Index);
        BinaryPrimitives.WriteUInt64LittleEndian(names[24..], (ulong)shstrOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(names[32..], (ulong)shstr.Length);
        ElfBuilder.WriteSection(headers.AsSpan(SectionHeaderSize * oldCount), symtabName, SHT_SYMTAB, 0, 0, (ulong)symtabOffset, (ulong)symtab.Length,
            (uint)oldCount + 1, (uint)firstGlobal, 8, SymbolSize);
        ElfBuilder.WriteSection(headers.AsSpan(SectionHeaderSize * (oldCount + 1)), strtabName, SHT_STRTAB, 0, 0, (ulong)strtabOffset, (ulong)strtab.Length, 0,
            0, 1, 0);
        output.Write(headers);

        var result = output.ToArray();
        BinaryPrimitives.WriteUInt64LittleEndian(result.AsSpan(40), (ulong)shoff);
        BinaryPrimitives.WriteUInt16LittleEndian(result.AsSpan(60), (ushort)(oldCount + 2));
        return result;
    }

    static int ShStrIndex(ReadOnlySpan<byte> elf) => BinaryPrimitives.ReadUInt16LittleEndian(elf[62..]);

    static void Align(MemoryStream s, int alignment)
    {
        while (s.Position % alignment != 0) s.WriteByte(0);
    }
}
