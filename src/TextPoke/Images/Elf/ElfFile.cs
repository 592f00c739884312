using System.Buffers.Binary;
using System.Text;
using static TextPoke.Images.Elf.ElfConstants;

namespace TextPoke.Images.Elf;

/// <summary>
/// A bounds-checked ELF64 little-endian x86-64 reader over an <see cref="ImageFile"/>.
/// Headers, sections and segments are parsed eagerly (they are few); symbols on demand; relocations are streamed.
/// </summary>
public sealed class ElfFile
{
    const int HeaderSize = 64, SectionHeaderSize = 64, ProgramHeaderSize = 56, SymbolSize = 24, RelaSize = 24;

    readonly ElfSection[] _byAddress;

    public ImageFile File { get; }
    public ushort Type { get; }
    public ulong Entry { get; }
    public IReadOnlyList<ElfSection> Sections { get; }
    public IReadOnlyList<ElfSegment> Segments { get; }

    /// <summary>The file length the headers account for (the highest section or segment end); bytes after it are appended data.</summary>
    public long ElfEnd { get; }

    public bool IsRelocatable => Type == ET_REL;

    /// <summary>True when the first bytes are an ELF magic.</summary>
    public static bool IsElf(ReadOnlySpan<byte> head) => head.Length >= 4 && head[0] == 0x7f && head[1] == (byte)'E' && head[2] == (byte)'L'
        && head[3] == (byte)'F';

    public ElfFile(ImageFile file)
    {
        File = file;
        if (file.Length < HeaderSize || !IsElf(file.Span(0, Math.Min(16, file.Length))))
            throw new ImageFormatException(file.Name, file.Length < 4 ? "too short to be a kernel image" : "not an ELF file");
        var h = file.Span(0, HeaderSize, "ELF header");
        if (h[4] != 2)
            throw new ImageFormatException(file.Name, h[4] == 1 ? "32-bit ELF: textpoke reads x86-64 (ELF64) images" : $"bad ELF class {h[4]}");
        if (h[5] != 1)
            throw new ImageFormatException(file.Name, "big-endian ELF: textpoke reads little-endian x86-64 images");
        Type = BinaryPrimitives.ReadUInt16LittleEndian(h[16..]);
        ushort machine = BinaryPrimitives.ReadUInt16LittleEndian(h[18..]);
        if (machine != EM_X86_64)
            throw new ImageFormatException(file.Name, $"ELF for {MachineName(machine)}, not x86-64");
        if (Type != ET_EXEC && Type != ET_REL && Type != ET_DYN)
            throw new ImageFormatException(file.Name, $"ELF type {Type} is neither an executable nor a relocatable object");
        Entry = BinaryPrimitives.ReadUInt64LittleEndian(h[24..]);
        ulong phoff = BinaryPrimitives.ReadUInt64LittleEndian(h[32..]);
        ulong shoff = BinaryPrimitives.ReadUInt64LittleEndian(h[40..]);
        ushort phentsize = BinaryPrimitives.ReadUInt16LittleEndian(h[54..]);
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(h[56..]);
        ushort shentsize = BinaryPrimitives.ReadUInt16LittleEndian(h[58..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(h[60..]);
        int shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(h[62..]);
        long end = HeaderSize;

        var segments = new ElfSegment[phnum];
        if (phnum > 0)
        {
            if (phentsize != ProgramHeaderSize)
                throw new ImageFormatException(file.Name, 54, $"program header size {phentsize}, expected {ProgramHeaderSize}");
            var ph = file.Span((long)phoff, (long)phnum * ProgramHeaderSize, "program header table");
            for (int i = 0; i < phnum; i++)
            {
                var p = ph.Slice(i * ProgramHeaderSize, ProgramHeaderSize);
                segments[i] = new ElfSegment(
                    BinaryPrimitives.ReadUInt32LittleEndian(p), BinaryPrimitives.ReadUInt32LittleEndian(p[4..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(p[8..]), BinaryPrimitives.ReadUInt64LittleEndian(p[16..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(p[24..]), BinaryPrimitives.ReadUInt64LittleEndian(p[32..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(p[40..]));
                end = Math.Max(end, (long)phoff + (long)phnum * ProgramHeaderSize);
                if (segments[i].FileSize > 0)
                {
                    if (!file.Contains((long)segments[i].Offset, (long)segments[i].FileSize))
                        throw new ImageFormatException(file.Name, (long)segments[i].Offset,
                            $"segment {i} (0x{segments[i].FileSize:x} bytes) runs past the end of the file: truncated image");
                    end = Math.Max(end, (long)(segments[i].Offset + segments[i].FileSize));
                }
            }
        }
        Segments = segments;

        var sections = new ElfSection[shnum];
        if (shnum > 0)
        {
            if (shentsize != SectionHeaderSize)
                throw new ImageFormatException(file.Name, 58, $"section header size {shentsize}, expected {SectionHeaderSize}");
            var sh = file.Span((long)shoff, (long)shnum * SectionHeaderSize, "section header table");
            end = Math.Max(end, (long)shoff + (long)shnum * SectionHeaderSize);
            if (shstrndx >= shnum)
                throw new ImageFormatException(file.Name, 62, $"section name table index {shstrndx} is out of range ({shnum} sections)");
            var raw = new (uint name, uint type, ulong flags, ulong addr, ulong off, ulong size, uint link, uint info, ulong align, ulong entsize)[shnum];
            for (int i = 0; i < shnum; i++)
            {
                var s = sh.Slice(i * SectionHeaderSize, SectionHeaderSize);
                raw[i] = (BinaryPrimitives.ReadUInt32LittleEndian(s), BinaryPrimitives.ReadUInt32LittleEndian(s[4..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(s[8..]), BinaryPrimitives.ReadUInt64LittleEndian(s[16..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(s[24..]), BinaryPrimitives.ReadUInt64LittleEndian(s[32..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(s[40..]), BinaryPrimitives.ReadUInt32LittleEndian(s[44..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(s[48..]), BinaryPrimitives.ReadUInt64LittleEndian(s[56..]));
                if (raw[i].type != SHT_NOBITS && raw[i].type != SHT_NULL && raw[i].size > 0)
                {
                    if (!file.Contains((long)raw[i].off, (long)raw[i].size))
                        throw new ImageFormatException(file.Name, (long)raw[i].off,
                            $"section {i} (0x{raw[i].size:x} bytes) runs past the end of the file: truncated image");
                    end = Math.Max(end, (long)(raw[i].off + raw[i].size));
                }
            }
            var names = raw[shstrndx];
            var nameTable = file.Span((long)names.off, (long)names.size, "section name table");
            for (int i = 0; i < shnum; i++)
            {
                var r = raw[i];
                sections[i] = new ElfSection(i, ReadString(nameTable, r.name), r.type, r.flags, r.addr, r.off, r.size, r.link, r.info, r.align, r.entsize);
            }
        }
        Sections = sections;
        ElfEnd = end;
        _byAddress = sections.Where(s => s.IsAllocated && s.Size > 0).OrderBy(s => s.Address).ThenBy(s => s.Index).ToArray();
    }

    static string ReadString(ReadOnlySpan<byte> table, uint offset)
    {
        if (offset >= table.Length) return "";
        var rest = table[(int)offset..];
        int nul = rest.IndexOf((byte)0);
        return Encoding.ASCII.GetString(nul < 0 ? rest : rest[..nul]);
    }

    public ElfSection? Section(string name)
    {
        foreach (var s in Sections)
            if (s.Name == name) return s;
        return null;
    }

    /// <summary>The allocated section that holds a virtual address (ET_EXEC), or null.</summary>
    public ElfSection? SectionAt(ulong address)
    {
        int lo = 0, hi = _byAddress.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_byAddress[mid].Address <= address) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        // Several sections may start at or before the address; walk back over overlapping/empty neighbours.
        for (int i = found; i >= 0 && i >= found - 4; i--)
            if (_byAddress[i].ContainsAddress(address)) return _byAddress[i];
        return null;
    }

    /// <summary>The bytes of a section (empty for NOBITS).</summary>
    public ReadOnlySpan<byte> SectionBytes(ElfSection section) =>
        section.HasFileBytes ? File.Span((long)section.Offset, (long)section.Size, "section data") : ReadOnlySpan<byte>.Empty;

    /// <summary>Notes from PT_NOTE segments, or from SHT_NOTE sections when there are no segments.</summary>
    public IEnumerable<ElfNote> Notes()
    {
        var ranges = Segments.Where(p => p.Type == PT_NOTE).Select(p => ((long)p.Offset, (long)p.FileSize)).ToList();
        if (ranges.Count == 0)
            ranges = Sections.Where(s => s.Type == SHT_NOTE).Select(s => ((long)s.Offset, (long)s.Size)).ToList();
        foreach (var (offset, size) in ranges)
        {
            long at = offset, end = offset + size;
            while (at + 12 <= end)
            {
                uint namesz = File.U32(at), descsz = File.U32(at + 4), type = File.U32(at + 8);
                long nameAt = at + 12, descAt = nameAt + Align4(namesz);
                long next = descAt + Align4(descsz);
                if (next > end || namesz > 4096 || descsz > int.MaxValue) break;
                var nameBytes = File.Span(nameAt, namesz);
                int nul = nameBytes.IndexOf((byte)0);
                yield return new ElfNote(Encoding.ASCII.GetString(nul < 0 ? nameBytes : nameBytes[..nul]), type, descAt, (int)descsz);
                at = next;
            }
        }
    }

    static long Align4(uint value) => (value + 3L) & ~3L;

    /// <summary>The SHT_SYMTAB section, if the image has one.</summary>
    public ElfSection? SymbolTableSection => Sections.FirstOrDefault(s => s.Type == SHT_SYMTAB);

    /// <summary>Reads every symbol of the symbol table (empty if there is none).</summary>
    public ElfSymbol[] ReadSymbols()
    {
        var symtab = SymbolTableSection;
        if (symtab == null) return [];
        if (symtab.Link >= Sections.Count)
            throw new ImageFormatException(File.Name, $"symbol table links to missing string table {symtab.Link}");
        var strtab = SectionBytes(Sections[(int)symtab.Link]);
        var bytes = SectionBytes(symtab);
        int count = bytes.Length / SymbolSize;
        var result = new ElfSymbol[count];
        var cache = new Dictionary<uint, string>();
        for (int i = 0; i < count; i++)
        {
            var s = bytes.Slice(i * SymbolSize, SymbolSize);
            uint nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(s);
            if (!cache.TryGetValue(nameOffset, out var name))
                cache[nameOffset] = name = ReadString(strtab, nameOffset);
            byte info = s[4];
            result[i] = new ElfSymbol(name, BinaryPrimitives.ReadUInt64LittleEndian(s[8..]), BinaryPrimitives.ReadUInt64LittleEndian(s[16..]),
                (byte)(info & 0xf), (byte)(info >> 4), BinaryPrimitives.ReadUInt16LittleEndian(s[6..]));
        }
        return result;
    }

    /// <summary>The SHT_RELA sections that apply to a section.</summary>
    public IReadOnlyList<ElfSection> RelocationSectionsFor(ElfSection target)
    {
        _relaByTarget ??= Sections.Where(s => s.Type is SHT_RELA or SHT_REL).GroupBy(s => (int)s.Info).ToDictionary(g => g.Key, g => g.ToArray());
        return _relaByTarget.TryGetValue(target.Index, out var list) ? list : [];
    }

    Dictionary<int, ElfSection[]>? _relaByTarget;

    /// <summary>Streams the entries of one SHT_RELA section without materialising them all.</summary>
    public RelocationReader Relocations(ElfSection rela)
    {
        if (rela.Type == SHT_REL)
            throw new ImageFormatException(File.Name, $"section {rela.Name} uses REL relocations; x86-64 kernels use RELA");
        return new RelocationReader(SectionBytes(rela));
    }

    /// <summary>A forward-only reader of RELA entries over the mapped bytes.</summary>
    public ref struct RelocationReader
    {
        readonly ReadOnlySpan<byte> _bytes;
        int _at;

        public RelocationReader(ReadOnlySpan<byte> bytes) { _bytes = bytes; _at = -RelaSize; }

        public readonly int Count => _bytes.Length / RelaSize;

        public ElfRelocation Current
        {
            get
            {
                var r = _bytes.Slice(_at, RelaSize);
                ulong info = BinaryPrimitives.ReadUInt64LittleEndian(r[8..]);
                return new ElfRelocation(BinaryPrimitives.ReadUInt64LittleEndian(r), (uint)info, (uint)(info >> 32),
                    BinaryPrimitives.ReadInt64LittleEndian(r[16..]));
            }
        }

        public bool MoveNext()
        {
            _at += RelaSize;
            return _at + RelaSize <= _bytes.Length;
        }

        public readonly RelocationReader GetEnumerator() => this;
    }
}
