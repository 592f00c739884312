namespace TextPoke.Dwarf;

/// <summary>DW_FORM_* values (DWARF 5, section 7.5.6, plus the GNU extensions GCC emits).</summary>
static class Form
{
    public const ulong Addr = 0x01, Block2 = 0x03, Block4 = 0x04, Data2 = 0x05, Data4 = 0x06, Data8 = 0x07, String = 0x08, Block = 0x09,
        Block1 = 0x0a, Data1 = 0x0b, Flag = 0x0c, Sdata = 0x0d, Strp = 0x0e, Udata = 0x0f, RefAddr = 0x10, Ref1 = 0x11, Ref2 = 0x12,
        Ref4 = 0x13, Ref8 = 0x14, RefUdata = 0x15, Indirect = 0x16, SecOffset = 0x17, Exprloc = 0x18, FlagPresent = 0x19, Strx = 0x1a,
        Addrx = 0x1b, RefSup4 = 0x1c, StrpSup = 0x1d, Data16 = 0x1e, LineStrp = 0x1f, RefSig8 = 0x20, ImplicitConst = 0x21,
        Loclistx = 0x22, Rnglistx = 0x23, RefSup8 = 0x24, Strx1 = 0x25, Strx2 = 0x26, Strx3 = 0x27, Strx4 = 0x28, Addrx1 = 0x29,
        Addrx2 = 0x2a, Addrx3 = 0x2b, Addrx4 = 0x2c, GnuAddrIndex = 0x1f01, GnuStrIndex = 0x1f02, GnuRefAlt = 0x1f20, GnuStrpAlt = 0x1f21;
}

static class At
{
    public const ulong Name = 0x03, StmtList = 0x10, LowPc = 0x11, HighPc = 0x12, CompDir = 0x1b, AbstractOrigin = 0x31, Specification = 0x47,
        EntryPc = 0x52, Ranges = 0x55, CallColumn = 0x57, CallFile = 0x58, CallLine = 0x59, LinkageName = 0x6e, StrOffsetsBase = 0x72,
        AddrBase = 0x73, RngListsBase = 0x74, GnuDiscriminator = 0x2136, MipsLinkageName = 0x2007, GnuRangesBase = 0x2132, GnuAddrBase = 0x2133;
}

static class Tag
{
    public const ulong CompileUnit = 0x11, PartialUnit = 0x3c, Subprogram = 0x2e, InlinedSubroutine = 0x1d;
}

public sealed partial class DwarfInfo
{
    /// <summary>A decoded attribute value: a number (address, constant, offset, index), a reference or a string.</summary>
    readonly struct Value(ulong form, ulong number, string? text = null)
    {
        public readonly ulong Form = form;
        public readonly ulong Number = number;
        public readonly string? Text = text;
        public bool IsConstantClass => Form is Dwarf.Form.Data1 or Dwarf.Form.Data2 or Dwarf.Form.Data4 or Dwarf.Form.Data8 or Dwarf.Form.Udata
            or Dwarf.Form.Sdata or Dwarf.Form.ImplicitConst;
    }

    /// <summary>Reads one attribute value. References come back as absolute .debug_info offsets.</summary>
    static Value ReadValue(ref DwarfCursor c, Unit u, ulong form, long implicitConst)
    {
        switch (form)
        {
            case Form.Addr: return new(form, c.Sized(u.AddressSize));
            case Form.Data1: case Form.Flag: return new(form, c.U8());
            case Form.Data2: return new(form, c.U16());
            case Form.Data4: return new(form, c.U32());
            case Form.Data8: return new(form, c.U64());
            case Form.Data16: c.Skip(16); return new(form, 0);
            case Form.Sdata: return new(form, (ulong)c.Sleb());
            case Form.Udata: return new(form, c.Uleb());
            case Form.ImplicitConst: return new(form, (ulong)implicitConst);
            case Form.FlagPresent: return new(form, 1);
            case Form.String: return new(form, 0, c.CString());
            case Form.Strp: case Form.LineStrp: case Form.SecOffset: case Form.StrpSup: case Form.GnuStrpAlt: case Form.GnuRefAlt:
                return new(form, c.Offset(u.Dwarf64));
            case Form.RefAddr: return new(form, u.Version <= 2 ? c.Sized(u.AddressSize) : c.Offset(u.Dwarf64));
            case Form.Ref1: return new(form, (ulong)u.Offset + c.U8());
            case Form.Ref2: return new(form, (ulong)u.Offset + c.U16());
            case Form.Ref4: return new(form, (ulong)u.Offset + c.U32());
            case Form.Ref8: return new(form, (ulong)u.Offset + c.U64());
            case Form.RefUdata: return new(form, (ulong)u.Offset + c.Uleb());
            case Form.RefSig8: return new(form, c.U64());
            case Form.RefSup4: return new(form, c.U32());
            case Form.RefSup8: return new(form, c.U64());
            case Form.Strx: case Form.Addrx: case Form.Loclistx: case Form.Rnglistx: case Form.GnuAddrIndex: case Form.GnuStrIndex:
                return new(form, c.Uleb());
            case Form.Strx1: case Form.Addrx1: return new(form, c.U8());
            case Form.Strx2: case Form.Addrx2: return new(form, c.U16());
            case Form.Strx3: case Form.Addrx3: return new(form, c.U24());
            case Form.Strx4: case Form.Addrx4: return new(form, c.U32());
            case Form.Block1: c.Skip(c.U8()); return new(form, 0);
            case Form.Block2: c.Skip(c.U16()); return new(form, 0);
            case Form.Block4: c.Skip(c.U32()); return new(form, 0);
            case Form.Block: case Form.Exprloc: c.Skip((long)c.Uleb()); return new(form, 0);
            case Form.Indirect:
                ulong actual = c.Uleb();
                return ReadValue(ref c, u, actual, actual == Form.ImplicitConst ? c.Sleb() : 0);
            default: throw new DwarfFormatException($"unknown DW_FORM 0x{form:x} in the unit at 0x{u.Offset:x}");
        }
    }

    string? StringOf(Unit u, Value v)
    {
        switch (v.Form)
        {
            case Form.String: return v.Text;
            case Form.Strp: return DwarfCursor.StringAt(Data(Sec.Str), v.Number);
            case Form.LineStrp: return DwarfCursor.StringAt(Data(Sec.LineStr), v.Number);
            case Form.Strx: case Form.Strx1: case Form.Strx2: case Form.Strx3: case Form.Strx4: case Form.GnuStrIndex:
                var offsets = Data(Sec.StrOffsets);
                int size = u.Dwarf64 ? 8 : 4;
                ulong at = u.StrOffsetsBase + v.Number * (ulong)size;
                if (at + (ulong)size > (ulong)offsets.Length) return null;
                var c = new DwarfCursor(offsets, (int)at);
                return DwarfCursor.StringAt(Data(Sec.Str), c.Offset(u.Dwarf64));
            default: return null;
        }
    }

    ulong AddressOf(Unit u, Value v)
    {
        if (v.Form is not (Form.Addrx or Form.Addrx1 or Form.Addrx2 or Form.Addrx3 or Form.Addrx4 or Form.GnuAddrIndex)) return v.Number;
        var data = Data(Sec.Addr);
        ulong at = u.AddrBase + v.Number * (ulong)u.AddressSize;
        if (at + (ulong)u.AddressSize > (ulong)data.Length) throw new DwarfFormatException($"address index {v.Number} past .debug_addr");
        var c = new DwarfCursor(data, (int)at);
        return c.Sized(u.AddressSize);
    }

    // The unit's root DIE: bases first (strx and addrx in the root itself need them), then names and the low pc.
    void ReadRoot(Unit u)
    {
        if (u.RootRead) return;
        u.RootRead = true;
        var c = new DwarfCursor(Data(Sec.Info), u.DieStart);
        ulong code = c.Uleb();
        if (code == 0 || !Abbrevs(u).TryGetValue(code, out var abbrev)) return;
        var values = new List<(ulong Attr, Value Value)>(abbrev.Specs.Length);
        foreach (var (attr, form, implicitConst) in abbrev.Specs) values.Add((attr, ReadValue(ref c, u, form, implicitConst)));
        if (u.Version >= 5) { u.StrOffsetsBase = 8; u.AddrBase = 8; u.RngListsBase = 0; } // DWARF 5 headers are 8 bytes
        foreach (var (attr, v) in values)
        {
            if (attr == At.StrOffsetsBase) u.StrOffsetsBase = v.Number;
            else if (attr is At.AddrBase or At.GnuAddrBase) u.AddrBase = v.Number;
            else if (attr == At.RngListsBase) u.RngListsBase = v.Number;
        }
        foreach (var (attr, v) in values)
        {
            if (attr == At.Name) u.Name = StringOf(u, v);
            else if (attr == At.CompDir) u.CompDir = StringOf(u, v);
            else if (attr == At.StmtList) u.StmtList = v.Number;
            else if (attr is At.LowPc or At.EntryPc && u.LowPc == 0) u.LowPc = AddressOf(u, v);
        }
        _rootValues[u.Index] = values;
    }

    readonly Dictionary<int, List<(ulong Attr, Value Value)>> _rootValues = new();

    IEnumerable<(ulong, ulong)> RootRanges(Unit u) =>
        _rootValues.TryGetValue(u.Index, out var values) ? RangesOf(u, values) : [];

    // DW_AT_low_pc/high_pc (high as an address or as a length) or DW_AT_ranges (.debug_rnglists, or .debug_ranges before v5).
    List<(ulong, ulong)> RangesOf(Unit u, IEnumerable<(ulong Attr, Value Value)> values)
    {
        ulong? low = null;
        Value? high = null, ranges = null;
        foreach (var (attr, v) in values)
        {
            if (attr == At.LowPc) low = AddressOf(u, v);
            else if (attr == At.HighPc) high = v;
            else if (attr == At.Ranges) ranges = v;
        }
        var result = new List<(ulong, ulong)>();
        if (ranges is { } r) ReadRanges(u, r, result);
        else if (low is { } l && high is { } h)
        {
            ulong end = h.IsConstantClass ? l + h.Number : AddressOf(u, h);
            if (end > l) result.Add((l, end));
        }
        return result;
    }

    void ReadRanges(Unit u, Value v, List<(ulong, ulong)> result)
    {
        ulong baseAddress = u.LowPc;
        if (u.Version < 5)
        {
            var data = Data(Sec.Ranges);
            if (v.Number >= (ulong)data.Length) return;
            var c = new DwarfCursor(data, (int)v.Number);
            ulong max = u.AddressSize == 8 ? ulong.MaxValue : uint.MaxValue;
            while (!c.AtEnd)
            {
                ulong s = c.Sized(u.AddressSize), e = c.Sized(u.AddressSize);
                if (s == 0 && e == 0) break;
                if (s == max) { baseAddress = e; continue; }
                if (e > s) result.Add((baseAddress + s, baseAddress + e));
            }
            return;
        }
        var lists = Data(Sec.RngLists);
        ulong offset = v.Number;
        if (v.Form == Form.Rnglistx)
        {
            int size = u.Dwarf64 ? 8 : 4;
            ulong at = u.RngListsBase + v.Number * (ulong)size;
            if (at + (ulong)size > (ulong)lists.Length) return;
            var oc = new DwarfCursor(lists, (int)at);
            offset = u.RngListsBase + oc.Offset(u.Dwarf64);
        }
        if (offset >= (ulong)lists.Length) return;
        var rc = new DwarfCursor(lists, (int)offset);
        while (!rc.AtEnd)
        {
            byte kind = rc.U8();
            switch (kind)
            {
                case 0: return; // DW_RLE_end_of_list
                case 1: baseAddress = AddressOf(u, new Value(Form.Addrx, rc.Uleb())); break;
                case 2: { ulong s = AddressOf(u, new Value(Form.Addrx, rc.Uleb())), e = AddressOf(u, new Value(Form.Addrx,
                    rc.Uleb())); if (e > s) result.Add((s, e)); break; }
                case 3: { ulong s = AddressOf(u, new Value(Form.Addrx, rc.Uleb())), n = rc.Uleb(); if (n > 0) result.Add((s, s + n)); break; }
                case 4: { ulong s = rc.Uleb(), e = rc.Uleb(); if (e > s) result.Add((baseAddress + s, baseAddress + e)); break; }
                case 5: baseAddress = rc.Sized(u.AddressSize); break;
                case 6: { ulong s = rc.Sized(u.AddressSize), e = rc.Sized(u.AddressSize); if (e > s) result.Add((s, e)); break; }
                case 7: { ulong s = rc.Sized(u.AddressSize), n = rc.Uleb(); if (n > 0) result.Add((s, s + n)); break; }
                default: throw new DwarfFormatException($"unknown DW_RLE 0x{kind:x} in .debug_rnglists at 0x{rc.Position - 1:x}");
            }
        }
    }

    // Every subprogram and inlined subroutine with code, in DIE order, each with its enclosing one.
    List<Node> Nodes(Unit u)
    {
        if (u.Nodes != null) return u.Nodes;
        ReadRoot(u);
        var nodes = new List<Node>();
        var abbrevs = Abbrevs(u);
        var c = new DwarfCursor(Data(Sec.Info), u.DieStart);
        var enclosing = new Stack<int>();
        enclosing.Push(-1);
        var values = new List<(ulong, Value)>();
        int depth = 0;
        while (c.Position < u.End)
        {
            long dieOffset = c.Position;
            ulong code = c.Uleb();
            if (code == 0)
            {
                if (enclosing.Count > 1) enclosing.Pop();
                depth--;
                if (depth <= 0) break;
                continue;
            }
            if (!abbrevs.TryGetValue(code, out var abbrev)) throw new DwarfFormatException($"abbreviation {code} missing for the DIE at 0x{dieOffset:x}");
            bool wanted = abbrev.Tag is Tag.Subprogram or Tag.InlinedSubroutine;
            values.Clear();
            ulong callFile = 0, callLine = 0, discriminator = 0;
            foreach (var (attr, form, implicitConst) in abbrev.Specs)
            {
                var v = ReadValue(ref c, u, form, implicitConst);
                if (!wanted) continue;
                if (attr is At.LowPc or At.HighPc or At.Ranges) values.Add((attr, v));
                else if (attr == At.CallFile) callFile = v.Number;
                else if (attr == At.CallLine) callLine = v.Number;
                else if (attr == At.GnuDiscriminator) discriminator = v.Number;
            }
            int parent = enclosing.Peek();
            int self = parent;
            if (wanted && values.Count > 0)
            {
                var ranges = RangesOf(u, values);
                if (ranges.Count > 0)
                {
                    self = nodes.Count;
                    nodes.Add(new Node
                    {
                        DieOffset = dieOffset, Parent = parent, Depth = depth, Inlined = abbrev.Tag == Tag.InlinedSubroutine, Ranges = ranges.ToArray(),
                        CallFile = callFile, CallLine = (int)callLine, CallDiscriminator = (int)discriminator,
                    });
                }
            }
            if (abbrev.Children)
            {
                enclosing.Push(self);
                depth++;
            }
        }
        return u.Nodes = nodes;
    }

    /// <summary>The name of a DIE: DW_AT_name, else the linkage name, else through abstract_origin/specification.</summary>
    string? NameOf(long dieOffset, int hops = 0)
    {
        if (_names.TryGetValue(dieOffset, out var cached)) return cached;
        string? name = null;
        var u = UnitAt(dieOffset);
        if (u != null && hops < 8)
        {
            ReadRoot(u);
            var c = new DwarfCursor(Data(Sec.Info), (int)dieOffset);
            ulong code = c.Uleb();
            if (code != 0 && Abbrevs(u).TryGetValue(code, out var abbrev))
            {
                string? linkage = null;
                long? origin = null;
                foreach (var (attr, form, implicitConst) in abbrev.Specs)
                {
                    var v = ReadValue(ref c, u, form, implicitConst);
                    if (attr == At.Name) name = StringOf(u, v);
                    else if (attr is At.LinkageName or At.MipsLinkageName) linkage = StringOf(u, v);
                    else if (attr is At.AbstractOrigin or At.Specification
                        && form is not (Form.RefSig8 or Form.RefSup4 or Form.RefSup8 or Form.GnuRefAlt)) origin = (long)v.Number;
                }
                name ??= linkage ?? (origin is { } o ? NameOf(o, hops + 1) : null);
            }
        }
        _names[dieOffset] = name;
        return name;
    }

    LineTable? Lines(Unit u)
    {
        if (u.LinesRead) return u.Lines;
        u.LinesRead = true;
        ReadRoot(u);
        if (u.StmtList == ulong.MaxValue || !HasSection(Sec.Line)) return null;
        try { u.Lines = LineTable.Read(Data(Sec.Line), (int)u.StmtList, u.AddressSize, u.CompDir, Data(Sec.Str), Data(Sec.LineStr)); }
        catch (DwarfFormatException) { u.Lines = null; }
        return u.Lines;
    }
}
