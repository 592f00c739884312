using TextPoke.Images;

namespace TextPoke.Dwarf;

/// <summary>One line of `addr2line -i -f`: the function and where in it; the first is the innermost (inlined) function.</summary>
public sealed record SourceFrame(string? Function, string? File, int Line, int Discriminator)
{
    /// <summary>As addr2line prints it: FILE:LINE, "FILE:?" for line 0 (compiler-made code), "??:0" when unknown.</summary>
    public string Location => File == null ? "??:0" : Line == 0 ? $"{File}:?" : Discriminator != 0 ? $"{File}:{Line} (discriminator {Discriminator})"
        : $"{File}:{Line}";
}

/// <summary>
/// Line and inline information from an image's own DWARF (versions 2 to 5): .debug_info (compile units, subprograms,
/// inlined subroutines and their ranges), .debug_abbrev, .debug_line, .debug_str, .debug_line_str, .debug_str_offsets,
/// .debug_addr, .debug_rnglists and .debug_ranges. Read lazily: .debug_aranges (or the units' own ranges) finds the one
/// compile unit an address belongs to, and only that unit's DIEs and line program are decoded, once.
/// </summary>
public sealed partial class DwarfInfo
{
    enum Sec { Info, Abbrev, Line, Str, LineStr, StrOffsets, Addr, RngLists, Ranges, Aranges, Count }
    static readonly string[] SectionNames =
        [".debug_info", ".debug_abbrev", ".debug_line", ".debug_str", ".debug_line_str", ".debug_str_offsets", ".debug_addr", ".debug_rnglists",
            ".debug_ranges", ".debug_aranges"];

    readonly KernelImage _image;
    readonly ElfSectionRef?[] _sections = new ElfSectionRef?[(int)Sec.Count];
    readonly byte[]?[] _relocated = new byte[]?[(int)Sec.Count];
    readonly object _lock = new();
    List<Unit>? _units;
    (ulong Start, ulong End, int Unit)[]? _ranges;
    readonly Dictionary<long, string?> _names = new();

    sealed record ElfSectionRef(TextPoke.Images.Elf.ElfSection Section);

    DwarfInfo(KernelImage image) => _image = image;

    /// <summary>The DWARF of an image, or null when it has no .debug_info (stripped, or a vmlinuz).</summary>
    public static DwarfInfo? Open(KernelImage image)
    {
        if (image.Elf.Section(".debug_info") is not { HasFileBytes: true }) return null;
        var d = new DwarfInfo(image);
        for (int i = 0; i < SectionNames.Length; i++)
        {
            if (image.Elf.Section(SectionNames[i]) is not { HasFileBytes: true } s) continue;
            d._sections[i] = new ElfSectionRef(s);
            // In an unlinked object (a module) the DWARF still refers to other sections through relocations.
            if (image.Elf.IsRelocatable && image.Elf.RelocationSectionsFor(s).Count > 0)
                d._relocated[i] = RelocatedSection.Build(image, s).Bytes;
        }
        return d;
    }

    ReadOnlySpan<byte> Data(Sec s) =>
        _relocated[(int)s] is { } bytes ? bytes : _sections[(int)s] is { } r ? _image.Elf.SectionBytes(r.Section) : ReadOnlySpan<byte>.Empty;

    bool HasSection(Sec s) => _sections[(int)s] != null;

    /// <summary>
    /// What `addr2line -i -f` says for an address: the innermost function first (an inlined one when the address is in
    /// inlined code) with the line-table location, then each function it was inlined into with the call site. Empty when
    /// no compile unit covers the address.
    /// </summary>
    /// <remarks>
    /// Like llvm-symbolizer, the outermost function is named from the symbol table when <paramref name="symbolName"/>
    /// knows the address (so `.cold` and `.isra` parts keep their names), and from DWARF otherwise.
    /// </remarks>
    public IReadOnlyList<SourceFrame> Lookup(ulong address, Func<ulong, string?>? symbolName = null)
    {
        IReadOnlyList<SourceFrame> frames;
        lock (_lock)
        {
            try
            {
                var unit = UnitFor(address);
                frames = unit == null ? [] : LookupIn(unit, address);
            }
            catch (DwarfFormatException)
            {
                frames = []; // corrupt DWARF: no answer for this address (every read is bounds-checked by DwarfCursor)
            }
        }
        if (symbolName?.Invoke(address) is not { } symbol) return frames;
        if (frames.Count == 0) return [new SourceFrame(symbol, null, 0, 0)];
        var list = frames.ToList();
        list[^1] = list[^1] with { Function = symbol };
        return list;
    }

    IReadOnlyList<SourceFrame> LookupIn(Unit unit, ulong address)
    {
        var nodes = Nodes(unit);
        var lines = Lines(unit);
        var (file, line, discriminator) = lines?.Find(address) ?? (null, 0, 0);
        int deepest = -1;
        for (int i = 0; i < nodes.Count; i++)
            if ((deepest < 0 || nodes[i].Depth > nodes[deepest].Depth) && nodes[i].Contains(address)) deepest = i;
        var result = new List<SourceFrame>();
        if (deepest < 0)
        {
            result.Add(new SourceFrame(null, file, line, discriminator));
            return result;
        }
        var current = (File: file, Line: line, Discriminator: discriminator);
        for (int n = deepest; n >= 0; n = nodes[n].Parent)
        {
            var node = nodes[n];
            result.Add(new SourceFrame(NameOf(node.DieOffset), current.File, current.Line, current.Discriminator));
            if (!node.Inlined) break;
            current = (lines?.FilePath((int)node.CallFile), node.CallLine, node.CallDiscriminator);
        }
        return result;
    }

    // --- units ----------------------------------------------------------------------------------------------------------

    sealed class Unit
    {
        public int Index;
        public int Offset, DieStart, End, Version, AddressSize, AbbrevOffset;
        public bool Dwarf64;
        public byte Type;
        public Dictionary<ulong, Abbrev>? Abbrevs;
        public bool RootRead;
        public ulong LowPc, StmtList = ulong.MaxValue, StrOffsetsBase, AddrBase, RngListsBase;
        public string? CompDir, Name;
        public List<Node>? Nodes;
        public LineTable? Lines;
        public bool LinesRead;
    }

    sealed record Abbrev(ulong Tag, bool Children, (ulong Attr, ulong Form, long Implicit)[] Specs);

    sealed class Node
    {
        public required long DieOffset;
        public required int Parent, Depth;
        public required bool Inlined;
        public required (ulong Start, ulong End)[] Ranges;
        public ulong CallFile;
        public int CallLine, CallDiscriminator;
        public bool Contains(ulong a)
        {
            foreach (var (s, e) in Ranges) if (a >= s && a < e) return true;
            return false;
        }
    }

    List<Unit> Units()
    {
        if (_units != null) return _units;
        var units = new List<Unit>();
        var info = Data(Sec.Info);
        var c = new DwarfCursor(info);
        while (c.Position < info.Length)
        {
            var u = new Unit { Index = units.Count, Offset = c.Position };
            ulong length = c.UnitLength(out u.Dwarf64);
            int after = c.Position;
            if (length > (ulong)(info.Length - after)) break;
            u.End = after + (int)length;
            u.Version = c.U16();
            if (u.Version is < 2 or > 5) { c.Position = u.End; continue; }
            if (u.Version >= 5)
            {
                u.Type = c.U8();
                u.AddressSize = c.U8();
                u.AbbrevOffset = (int)c.Offset(u.Dwarf64);
                if (u.Type is 4 or 5) c.Skip(8);           // DW_UT_skeleton / split_compile: dwo_id
                else if (u.Type is 2 or 6) c.Skip(8 + (u.Dwarf64 ? 8 : 4)); // type units: signature, type offset
            }
            else
            {
                u.Type = 1;
                u.AbbrevOffset = (int)c.Offset(u.Dwarf64);
                u.AddressSize = c.U8();
            }
            u.DieStart = c.Position;
            units.Add(u);
            c.Position = u.End;
        }
        return _units = units;
    }

    Unit? UnitAt(long dieOffset)
    {
        var units = Units();
        int lo = 0, hi = units.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) / 2;
            if (dieOffset < units[mid].Offset) hi = mid - 1;
            else if (dieOffset >= units[mid].End) lo = mid + 1;
            else return units[mid];
        }
        return null;
    }

    Unit? UnitFor(ulong address)
    {
        var ranges = _ranges ??= BuildRanges();
        int lo = 0, hi = ranges.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) / 2;
            if (ranges[mid].Start <= address) { found = mid; lo = mid + 1; } else hi = mid - 1;
        }
        // Ranges may nest or overlap a little; look back over the few that start before the address.
        for (int i = found; i >= 0 && i > found - 64; i--)
            if (address >= ranges[i].Start && address < ranges[i].End) return Units()[ranges[i].Unit];
        return null;
    }

    // .debug_aranges when it is there (one entry per contiguous range of each unit), else each unit's root DIE ranges.
    (ulong, ulong, int)[] BuildRanges()
    {
        var list = new List<(ulong Start, ulong End, int Unit)>();
        var units = Units();
        var byOffset = units.ToDictionary(u => (long)u.Offset, u => u.Index);
        var covered = new HashSet<int>();
        if (HasSection(Sec.Aranges))
        {
            var data = Data(Sec.Aranges);
            var c = new DwarfCursor(data);
            try
            {
                while (c.Position < data.Length)
                {
                    int setStart = c.Position;
                    ulong length = c.UnitLength(out bool dwarf64);
                    int end = c.Position + (int)Math.Min(length, (ulong)(data.Length - c.Position));
                    c.U16();
                    long cu = (long)c.Offset(dwarf64);
                    int addressSize = c.U8();
                    c.U8(); // segment selector size
                    if (addressSize is not (4 or 8)) { c.Position = end; continue; }
                    int tuple = 2 * addressSize;
                    int header = c.Position - setStart; // tuples are aligned to their size from the start of the set
                    if (header % tuple != 0) c.Skip(tuple - header % tuple);
                    if (byOffset.TryGetValue(cu, out int index))
                    {
                        covered.Add(index);
                        while (c.Position + tuple <= end)
                        {
                            ulong start = c.Sized(addressSize), len = c.Sized(addressSize);
                            if (start == 0 && len == 0) break;
                            if (len > 0) list.Add((start, start + len, index));
                        }
                    }
                    c.Position = end;
                }
            }
            catch (DwarfFormatException) { }
        }
        foreach (var u in units)
        {
            if (covered.Contains(u.Index) || u.Type is not (1 or 3)) continue;
            try
            {
                ReadRoot(u);
                foreach (var (s, e) in RootRanges(u)) list.Add((s, e, u.Index));
            }
            catch (DwarfFormatException) { }
        }
        list.Sort((a, b) => a.Start.CompareTo(b.Start));
        return list.ToArray();
    }

    Dictionary<ulong, Abbrev> Abbrevs(Unit u)
    {
        if (u.Abbrevs != null) return u.Abbrevs;
        var table = new Dictionary<ulong, Abbrev>();
        var data = Data(Sec.Abbrev);
        var c = new DwarfCursor(data, u.AbbrevOffset);
        var specs = new List<(ulong, ulong, long)>();
        while (true)
        {
            ulong code = c.Uleb();
            if (code == 0) break;
            ulong tag = c.Uleb();
            bool children = c.U8() != 0;
            specs.Clear();
            while (true)
            {
                ulong attr = c.Uleb(), form = c.Uleb();
                long implicitConst = form == Form.ImplicitConst ? c.Sleb() : 0;
                if (attr == 0 && form == 0) break;
                specs.Add((attr, form, implicitConst));
            }
            table[code] = new Abbrev(tag, children, specs.ToArray());
        }
        return u.Abbrevs = table;
    }
}
