namespace TextPoke.Dwarf;

/// <summary>
/// One unit's .debug_line program (versions 2 to 5) run to its rows, kept as sorted sequences for address lookups.
/// File paths are joined as binutils does: an absolute name stands; else its directory, and a relative directory is
/// taken below the unit's compilation directory.
/// </summary>
sealed class LineTable
{
    readonly List<(string Name, int Dir)> _files = [];
    readonly List<string> _dirs = [];
    readonly string? _compDir;
    readonly int _version;
    readonly string?[] _paths;
    // Rows of all sequences, each sequence sorted by address and closed by its end_sequence row.
    readonly List<(ulong Address, int File, int Line, int Discriminator, bool End)> _rows = [];
    readonly List<(ulong Start, ulong End, int First, int Last)> _sequences = [];

    LineTable(int version, string? compDir, int files)
    {
        _version = version;
        _compDir = compDir;
        _paths = new string?[Math.Max(files, 0)];
    }

    public static LineTable Read(ReadOnlySpan<byte> data, int offset, int addressSize, string? compDir, ReadOnlySpan<byte> str, ReadOnlySpan<byte> lineStr)
    {
        var c = new DwarfCursor(data, offset);
        ulong unitLength = c.UnitLength(out bool dwarf64);
        if (unitLength > (ulong)(data.Length - c.Position)) throw new DwarfFormatException($".debug_line unit at 0x{offset:x} runs past the section");
        int end = c.Position + (int)unitLength;
        int version = c.U16();
        if (version is < 2 or > 5) throw new DwarfFormatException($".debug_line version {version} at 0x{offset:x}");
        if (version >= 5) { addressSize = c.U8(); c.U8(); }
        ulong headerLength = c.Offset(dwarf64);
        int programStart = c.Position + (int)headerLength;
        int minInstruction = c.U8();
        int maxOps = version >= 4 ? c.U8() : 1;
        bool defaultIsStmt = c.U8() != 0;
        int lineBase = (sbyte)c.U8();
        int lineRange = c.U8();
        int opcodeBase = c.U8();
        if (lineRange == 0) throw new DwarfFormatException($".debug_line unit at 0x{offset:x} has line_range 0");
        var standardLengths = new int[Math.Max(opcodeBase, 1)];
        for (int i = 1; i < opcodeBase; i++) standardLengths[i] = c.U8();

        var dirs = new List<string>();
        var files = new List<(string, int)>();
        if (version >= 5)
        {
            ReadEntries(ref c, dwarf64, str, lineStr, (path, _) => dirs.Add(path ?? ""));
            ReadEntries(ref c, dwarf64, str, lineStr, (path, dir) => files.Add((path ?? "", dir)));
        }
        else
        {
            dirs.Add(compDir ?? ""); // directory 0 is the compilation directory
            while (true) { var d = c.CString(); if (d.Length == 0) break; dirs.Add(d); }
            files.Add(("", 0)); // file numbers start at 1 before v5
            while (true)
            {
                var name = c.CString();
                if (name.Length == 0) break;
                int dir = (int)c.Uleb();
                c.Uleb(); c.Uleb();
                files.Add((name, dir));
            }
        }
        var table = new LineTable(version, compDir, files.Count + 64);
        table._dirs.AddRange(dirs);
        table._files.AddRange(files);

        c.Position = programStart;
        ulong address = 0;
        int file = 1, line = 1, discriminator = 0, sequenceStart = table._rows.Count;
        bool isStmt = defaultIsStmt;
        void Row(bool endSequence)
        {
            table._rows.Add((address, file, line, discriminator, endSequence));
            discriminator = 0;
            if (!endSequence) return;
            int first = sequenceStart, last = table._rows.Count - 1;
            if (last > first) table._sequences.Add((table._rows[first].Address, address, first, last));
            sequenceStart = table._rows.Count;
            address = 0; file = 1; line = 1; isStmt = defaultIsStmt;
        }
        while (c.Position < end)
        {
            byte op = c.U8();
            if (op >= opcodeBase)
            {
                int adjusted = op - opcodeBase;
                address += (ulong)(adjusted / lineRange * minInstruction);
                line += lineBase + adjusted % lineRange;
                Row(false);
                continue;
            }
            switch (op)
            {
                case 0:
                    ulong length = c.Uleb();
                    int next = c.Position + (int)Math.Min(length, (ulong)(end - c.Position));
                    if (length == 0) break;
                    byte sub = c.U8();
                    if (sub == 1) Row(true);
                    else if (sub == 2) address = c.Sized(length - 1 is 1 or 2 or 4 or 8 ? (int)(length - 1) : addressSize);
                    else if (sub == 3) { var name = c.CString(); int dir = (int)c.Uleb(); c.Uleb(); c.Uleb(); table._files.Add((name, dir)); }
                    else if (sub == 4) discriminator = (int)c.Uleb();
                    c.Position = next;
                    break;
                case 1: Row(false); break;                                                  // copy
                case 2: address += c.Uleb() * (ulong)minInstruction; break;                  // advance_pc
                case 3: line += (int)c.Sleb(); break;                                        // advance_line
                case 4: file = (int)c.Uleb(); break;                                         // set_file
                case 5: c.Uleb(); break;                                                     // set_column
                case 6: isStmt = !isStmt; break;                                             // negate_stmt
                case 7: break;                                                               // set_basic_block
                case 8: address += (ulong)((255 - opcodeBase) / lineRange * minInstruction); break; // const_add_pc
                case 9: address += c.U16(); break;                                           // fixed_advance_pc
                case 10: case 11: break;                                                     // prologue_end, epilogue_begin
                case 12: c.Uleb(); break;                                                    // set_isa
                default:
                    for (int i = 0; i < standardLengths[op]; i++) c.Uleb();
                    break;
            }
        }
        _ = maxOps;
        table._sequences.Sort((a, b) => a.Start.CompareTo(b.Start));
        return table;
    }

    // DWARF 5 directory and file tables: a format (content type, form pairs), a count, then the entries.
    delegate void EntrySink(string? path, int dir);

    static void ReadEntries(ref DwarfCursor c, bool dwarf64, ReadOnlySpan<byte> str, ReadOnlySpan<byte> lineStr, EntrySink sink)
    {
        int formatCount = c.U8();
        var format = new (ulong Type, ulong Form)[formatCount];
        for (int i = 0; i < formatCount; i++) format[i] = (c.Uleb(), c.Uleb());
        ulong count = c.Uleb();
        // Every entry takes at least one byte per field: a count beyond the bytes left (or entries without fields) is
        // hostile, and would otherwise add entries without end.
        if (count > 0 && (formatCount == 0 || count > (ulong)(c.Length - c.Position)))
            throw new DwarfFormatException($".debug_line v5 entry table of {count} entries with {formatCount} fields runs past the unit");
        for (ulong e = 0; e < count; e++)
        {
            string? path = null;
            int dir = 0;
            foreach (var (type, form) in format)
            {
                ulong number = 0;
                string? text = null;
                switch (form)
                {
                    case Form.String: text = c.CString(); break;
                    case Form.LineStrp: text = DwarfCursor.StringAt(lineStr, c.Offset(dwarf64)); break;
                    case Form.Strp: text = DwarfCursor.StringAt(str, c.Offset(dwarf64)); break;
                    case Form.Udata: number = c.Uleb(); break;
                    case Form.Data1: number = c.U8(); break;
                    case Form.Data2: number = c.U16(); break;
                    case Form.Data4: number = c.U32(); break;
                    case Form.Data8: number = c.U64(); break;
                    case Form.Data16: c.Skip(16); break;
                    case Form.Block: c.Skip((long)c.Uleb()); break;
                    default: throw new DwarfFormatException($"unsupported form 0x{form:x} in a .debug_line v5 entry format");
                }
                if (type == 1) path = text;            // DW_LNCT_path
                else if (type == 2) dir = (int)number; // DW_LNCT_directory_index
            }
            sink(path, dir);
        }
    }

    /// <summary>The row for an address: the last row at or before it in the sequence that contains it.</summary>
    public (string? File, int Line, int Discriminator)? Find(ulong address)
    {
        int lo = 0, hi = _sequences.Count - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) / 2;
            if (_sequences[mid].Start <= address) { found = mid; lo = mid + 1; } else hi = mid - 1;
        }
        for (int s = found; s >= 0 && s > found - 8; s--)
        {
            var seq = _sequences[s];
            if (address < seq.Start || address >= seq.End) continue;
            int a = seq.First, b = seq.Last - 1, row = -1;
            while (a <= b)
            {
                int mid = (a + b) / 2;
                if (_rows[mid].Address <= address) { row = mid; a = mid + 1; } else b = mid - 1;
            }
            if (row < 0) return null;
            var r = _rows[row];
            return (FilePath(r.File), r.Line, r.Discriminator);
        }
        return null;
    }

    /// <summary>The path of a file number (0-based from v5, 1-based before).</summary>
    public string? FilePath(int index)
    {
        if (index < 0 || index >= _files.Count) return null;
        if (index < _paths.Length && _paths[index] is { } cached) return cached;
        var (name, dir) = _files[index];
        string path;
        if (name.StartsWith('/')) path = name;
        else
        {
            string? directory = dir >= 0 && dir < _dirs.Count ? _dirs[dir] : null;
            if (_version < 5 && dir == 0) directory = _compDir;
            if (string.IsNullOrEmpty(directory)) path = _compDir is { Length: > 0 } cd ? $"{cd}/{name}" : name;
            else
            {
                string joined = directory.EndsWith('/') ? directory + name : $"{directory}/{name}";
                path = directory.StartsWith('/') || _compDir is not { Length: > 0 } cd ? joined : $"{cd}/{joined}";
            }
        }
        if (index < _paths.Length) _paths[index] = path;
        return path;
    }
}
