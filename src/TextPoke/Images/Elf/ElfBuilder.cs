using System.Buffers.Binary;
using System.Text;
using static TextPoke.Images.Elf.ElfConstants;

namespace TextPoke.Images.Elf;

/// <summary>
/// Writes small ELF64 x86-64 images: sections with bytes (or NOBITS sizes) at fixed addresses, a symbol table, and
/// optionally program headers covering the allocated sections. Used by the demo and by tests that build images in memory.
/// </summary>
public sealed class ElfBuilder
{
    public sealed record SectionSpec(string Name, uint Type, ulong Flags, ulong Address, byte[] Bytes, ulong Size, ulong Alignment);
    public sealed record SymbolSpec(string Name, ulong Value, ulong Size, byte Type, byte Bind, string? Section);

    readonly List<SectionSpec> _sections = [];
    readonly List<SymbolSpec> _symbols = [];

    public ushort Type { get; set; } = ET_EXEC;
    public ulong Entry { get; set; }

    public ElfBuilder AddSection(string name, ulong address, byte[] bytes, ulong flags, ulong alignment = 16, uint type = SHT_PROGBITS)
    {
        _sections.Add(new SectionSpec(name, type, flags, address, bytes, (ulong)bytes.Length, alignment));
        return this;
    }

    public ElfBuilder AddNoBits(string name, ulong address, ulong size, ulong flags = SHF_ALLOC | SHF_WRITE, ulong alignment = 64)
    {
        _sections.Add(new SectionSpec(name, SHT_NOBITS, flags, address, [], size, alignment));
        return this;
    }

    public ElfBuilder AddSymbol(string name, ulong value, ulong size, byte type, string? section, byte bind = STB_GLOBAL)
    {
        _symbols.Add(new SymbolSpec(name, value, size, type, bind, section));
        return this;
    }

    public byte[] Build()
    {
        var output = new MemoryStream();
        output.Write(new byte[64]);
        var offsets = new ulong[_sections.Count];
        for (int i = 0; i < _sections.Count; i++)
        {
            var s = _sections[i];
            if (s.Type == SHT_NOBITS) { offsets[i] = (ulong)output.Length; continue; }
            Pad(output, (long)Math.Max(s.Alignment, 1));
            offsets[i] = (ulong)output.Length;
            output.Write(s.Bytes);
        }
        var shstrtab = new StringTable();
        var strtab = new StringTable();
        // Symbols: null, then locals, then globals (sh_info = first global).
        var ordered = _symbols.Where(s => s.Bind == STB_LOCAL).Concat(_symbols.Where(s => s.Bind != STB_LOCAL)).ToList();
        var symtab = new byte[24 * (ordered.Count + 1)];
        for (int i = 0; i < ordered.Count; i++)
        {
            var s = ordered[i];
            var e = symtab.AsSpan(24 * (i + 1), 24);
            BinaryPrimitives.WriteUInt32LittleEndian(e, strtab.Add(s.Name));
            e[4] = (byte)(s.Bind << 4 | s.Type);
            int index = s.Section == null ? SHN_ABS : _sections.FindIndex(x => x.Name == s.Section) + 1;
            if (index == 0) throw new ArgumentException($"symbol {s.Name} names missing section {s.Section}");
            BinaryPrimitives.WriteUInt16LittleEndian(e[6..], (ushort)index);
            BinaryPrimitives.WriteUInt64LittleEndian(e[8..], s.Value);
            BinaryPrimitives.WriteUInt64LittleEndian(e[16..], s.Size);
        }
        int firstGlobal = 1 + ordered.Count(s => s.Bind == STB_LOCAL);
        Pad(output, 8);
        ulong symtabOffset = (ulong)output.Length;
        output.Write(symtab);
        ulong strtabOffset = (ulong)output.Length;
        var strBytes = strtab.ToArray();
        output.Write(strBytes);
        var names = new uint[_sections.Count + 4];
        for (int i = 0; i < _sections.Count; i++) names[i] = shstrtab.Add(_sections[i].Name);
        uint symtabName = shstrtab.Add(".symtab"), strtabName = shstrtab.Add(".strtab"), shstrtabName = shstrtab.Add(".shstrtab");
        ulong shstrtabOffset = (ulong)output.Length;
        var shBytes = shstrtab.ToArray();
        output.Write(shBytes);
        Pad(output, 8);
        ulong shoff = (ulong)output.Length;
        int shnum = _sections.Count + 4;
        var headers = new byte[64 * shnum];
        for (int i = 0; i < _sections.Count; i++)
        {
            var s = _sections[i];
            WriteSection(headers.AsSpan(64 * (i + 1)), names[i], s.Type, s.Flags, Type == ET_REL ? 0 : s.Address, offsets[i], s.Size, 0, 0, s.Alignment, 0);
        }
        int symIndex = _sections.Count + 1;
        WriteSection(headers.AsSpan(64 * symIndex), symtabName, SHT_SYMTAB, 0, 0, symtabOffset, (ulong)symtab.Length, (uint)symIndex + 1, (uint)firstGlobal, 8,
            24);
        WriteSection(headers.AsSpan(64 * (symIndex + 1)), strtabName, SHT_STRTAB, 0, 0, strtabOffset, (ulong)strBytes.Length, 0, 0, 1, 0);
        WriteSection(headers.AsSpan(64 * (symIndex + 2)), shstrtabName, SHT_STRTAB, 0, 0, shstrtabOffset, (ulong)shBytes.Length, 0, 0, 1, 0);
        output.Write(headers);
        var result = output.ToArray();
        var h = result.AsSpan();
        "\x7f"u8.CopyTo(h);
        "ELF"u8.CopyTo(h[1..]);
        h[4] = 2; h[5] = 1; h[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(h[16..], Type);
        BinaryPrimitives.WriteUInt16LittleEndian(h[18..], EM_X86_64);
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(h[24..], Entry);
        BinaryPrimitives.WriteUInt64LittleEndian(h[40..], shoff);
        BinaryPrimitives.WriteUInt16LittleEndian(h[52..], 64);
        BinaryPrimitives.WriteUInt16LittleEndian(h[54..], 56);
        BinaryPrimitives.WriteUInt16LittleEndian(h[58..], 64);
        BinaryPrimitives.WriteUInt16LittleEndian(h[60..], (ushort)shnum);
        BinaryPrimitives.WriteUInt16LittleEndian(h[62..], (ushort)(symIndex + 2));
        return result;
    }

    /// <summary>Writes one Elf64_Shdr.</summary>
    internal static void WriteSection(Span<byte> h, uint name, uint type, ulong flags, ulong address, ulong offset, ulong size, uint link, uint info,
        ulong align, ulong entsize)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(h, name);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], type);
        BinaryPrimitives.WriteUInt64LittleEndian(h[8..], flags);
        BinaryPrimitives.WriteUInt64LittleEndian(h[16..], address);
        BinaryPrimitives.WriteUInt64LittleEndian(h[24..], offset);
        BinaryPrimitives.WriteUInt64LittleEndian(h[32..], size);
        BinaryPrimitives.WriteUInt32LittleEndian(h[40..], link);
        BinaryPrimitives.WriteUInt32LittleEndian(h[44..], info);
        BinaryPrimitives.WriteUInt64LittleEndian(h[48..], align);
        BinaryPrimitives.WriteUInt64LittleEndian(h[56..], entsize);
    }

    static void Pad(MemoryStream s, long alignment)
    {
        while (s.Length % alignment != 0) s.WriteByte(0);
    }

    sealed class StringTable
    {
        // A list, not a MemoryStream: nothing here needs disposing.
        readonly List<byte> _bytes = [];
        readonly Dictionary<string, uint> _offsets = new() { [""] = 0 };

        public StringTable() => _bytes.Add(0);

        public uint Add(string s)
        {
            if (_offsets.TryGetValue(s, out uint o)) return o;
            o = (uint)_bytes.Count;
            _bytes.AddRange(Encoding.ASCII.GetBytes(s));
            _bytes.Add(0);
            _offsets[s] = o;
            return o;
        }

        public byte[] ToArray() => _bytes.ToArray();
    }
}
