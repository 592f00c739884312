using System.Buffers.Binary;
using System.Text;
using TextPoke.Images;
using TextPoke.Images.Elf;

namespace TextPoke.Symbols;

/// <summary>Which scripts/kallsyms.c emission order the image uses.</summary>
public enum KallsymsOrder
{
    /// <summary>v4.20..v6.3: offsets, relative_base, num_syms, names, markers, [seqs_of_names], token_table, token_index.</summary>
    OffsetsFirst,
    /// <summary>v6.4+ (404bad70fcf7): num_syms, names, markers, token_table, token_index, offsets, relative_base, seqs_of_names.</summary>
    OffsetsLast,
}

/// <summary>Where the kallsyms tables were found, and how they are encoded.</summary>
public sealed record KallsymsLayout(
    KallsymsOrder Order, int Count, ulong NamesAddress, ulong MarkersAddress, ulong TokenTableAddress, ulong TokenIndexAddress,
    ulong OffsetsAddress, ulong RelativeBase, bool AbsolutePercpu, int SeqsOfNamesEntrySize)
{
    public string Describe() =>
        $"{(Order == KallsymsOrder.OffsetsFirst ? "v4.20-v6.3 order" : "v6.4+ order")}, {Count} symbols, base-relative offsets" +
        $"{(AbsolutePercpu ? " with absolute per-cpu" : "")}" +
        (SeqsOfNamesEntrySize > 0 ? $", seqs_of_names ({SeqsOfNamesEntrySize}-byte entries)" : ", no seqs_of_names");
}

/// <summary>
/// Recovers the kernel's own symbol table (kallsyms) from a stripped image. scripts/kallsyms.c (write_src) lays the
/// tables out in .rodata with every label 8-aligned; kernel/kallsyms.c decodes them. This reader supports v4.20+
/// (32-bit num_syms and markers, base-relative offsets), big names (v6.1+), seqs_of_names (v6.2+, also backported),
/// and the v6.4 order change. Located from one anchor (the token table), then validated by structure, not by trial
/// decoding over megabytes.
/// </summary>
public static class Kallsyms
{
    /// <summary>Tries to find and decode kallsyms. Returns null (with a reason) when the image has none.</summary>
    public static (KallsymsLayout? Layout, SymbolEntry[] Symbols, string? Reason) Recover(KernelImage image)
    {
        var rodatas = image.Elf.Sections.Where(s => s.IsAllocated && !s.IsExecutable && s.HasFileBytes && s.Size > 4096).ToList();
        if (rodatas.Count == 0) return (null, [], "no data section large enough to hold kallsyms");
        string reason = "no kallsyms token table found";
        foreach (var section in rodatas.OrderBy(s => s.Name == ".rodata" ? 0 : 1))
        {
            var bytes = image.Elf.SectionBytes(section);
            ulong baseAddress = image.SectionAddress(section);
            foreach (int tokenTable in TokenTableCandidates(bytes))
            {
                var result = TryDecode(bytes, baseAddress, tokenTable, out var why);
                if (result != null) return (result.Value.Layout, result.Value.Symbols, null);
                reason = why;
            }
        }
        return (null, [], reason);
    }

    // The token table holds 256 NUL-terminated strings; every byte value that occurs in some symbol name stands for
    // itself, so the single-character tokens "0".."9" are consecutive entries 0x30..0x39.
    static IEnumerable<int> TokenTableCandidates(ReadOnlySpan<byte> bytes)
    {
        var found = new List<int>();
        ReadOnlySpan<byte> digits = "0\u00001\u00002\u00003\u00004\u00005\u00006\u00007\u00008\u00009\u0000"u8;
        int at = 0;
        while (found.Count < 256)
        {
            int i = bytes[at..].IndexOf(digits);
            if (i < 0) break;
            int hit = at + i;
            at = hit + 1;
            // Walk back 0x30 tokens to the start of the table.
            int start = hit;
            bool ok = true;
            for (int t = 0; t < 0x30 && ok; t++)
            {
                // start points at a token; step back over the previous token's NUL and its characters.
                int p = start - 1;
                if (p < 0 || bytes[p] != 0) { ok = false; break; }
                p--;
                int len = 0;
                while (p >= 0 && bytes[p] != 0 && bytes[p] >= 0x20 && bytes[p] < 0x7f && len < 64) { p--; len++; }
                if (len == 0) ok = false;
                start = p + 1;
            }
            if (!ok) continue;
            // Token 0 has no NUL before it: printable bytes that end the table before it (a marker or sequence number
            // such as 39 31, "91") walk back as part of it. Every suffix of that first token is a candidate; the token
            // index that must follow the table decides which one is real.
            int firstEnd = bytes[start..].IndexOf((byte)0);
            for (int s = start; s < start + firstEnd; s++) found.Add(s);
        }
        return found;
    }

    static (KallsymsLayout Layout, SymbolEntry[] Symbols)? TryDecode(ReadOnlySpan<byte> bytes, ulong baseAddress, int tokenTable, out string why)
    {
        why = "kallsyms token table found, but the surrounding tables do not validate";
        // Token table: 256 strings.
        var tokenOffsets = new int[256];
        int p = tokenTable;
        for (int i = 0; i < 256; i++)
        {
            tokenOffsets[i] = p - tokenTable;
            int nul = bytes[p..].IndexOf((byte)0);
            if (nul < 0 || nul > 256) return null;
            p += nul + 1;
        }
        int tokenTableEnd = p;
        // Token index: 256 u16 offsets right after the table (8-aligned label, but accept 2/4 as older tools did).
        int tokenIndex = -1;
        for (int candidate = tokenTableEnd; candidate <= Align(tokenTableEnd, 8) && candidate + 512 <= bytes.Length; candidate++)
        {
            if (candidate % 2 != 0) continue;
            bool match = true;
            for (int i = 0; i < 256 && match; i++)
                match = BinaryPrimitives.ReadUInt16LittleEndian(bytes.Slice(candidate + 2 * i)) == tokenOffsets[i];
            if (match) { tokenIndex = candidate; break; }
        }
        if (tokenIndex < 0) { why = "kallsyms token table found, but no token index after it"; return null; }
        // Markers end right before the token table, or before seqs_of_names (v6.2..v6.3 and backports).
        foreach (var (markers, markerCount, countLow, countHigh, seqsSize) in MarkerCandidates(bytes, tokenTable))
        {
            // num_syms (a .long followed by alignment padding) sits right before names.
            int lastMarker = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(markers + 4 * (markerCount - 1)));
            int searchFrom = markers - 8, searchTo = Math.Max(8, markers - lastMarker - 256 * 600);
            for (int names = Align(searchFrom, 8); names >= searchTo; names -= 8)
            {
                uint n = BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(names - 8));
                if (n < countLow || n > countHigh || BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(names - 4)) != 0) continue;
                if (names + lastMarker >= markers) continue;
                if (!WalkNames(bytes, names, (int)n, markers, markerCount, out int namesEnd)) continue;
                if (Align(namesEnd, 8) != markers && Align(namesEnd, 4) != markers) continue;
                int count = (int)n;
                // Addresses: v6.4+ after the token index; before that, before num_syms.
                var layout = TryOffsetsLast(bytes, baseAddress, tokenIndex, count, names, markers, tokenTable, seqsSize)
                          ?? TryOffsetsFirst(bytes, baseAddress, names, count, markers, tokenTable, tokenIndex, seqsSize);
                if (layout == null) { why = "kallsyms names found, but no valid address table"; continue; }
                var symbols = DecodeAll(bytes, baseAddress, layout, names, tokenTable, tokenOffsets);
                if (symbols == null) { why = "kallsyms addresses are not sorted: not a kallsyms table"; continue; }
                return (layout, symbols);
            }
        }
        return null;
    }

    const int MaxSymbols = 1_000_000;

    static int Align(int value, int alignment) => (value + alignment - 1) / alignment * alignment;


    static List<(int Markers, int MarkerCount, uint CountLow, uint CountHigh, int SeqsSize)> MarkerCandidates(ReadOnlySpan<byte> bytes, int tokenTable)
    {
        var result = new List<(int, int, uint, uint, int)>();
        // Case 1: markers directly before the token table.
        int end = tokenTable;
        while (end > 0 && end % 4 != 0) end--;
        for (int pad = 0; pad <= 8 && end - pad >= 8; pad += 4)
        {
            if (ReadMarkersBackward(bytes, end - pad, out int start, out int count))
            {
                result.Add((start, count, (uint)(count - 1) * 256 + 1, (uint)count * 256, 0));
                break;
            }
        }
        // Case 2: seqs_of_names (3 or 4 bytes per symbol, 8-aligned) between markers and the token table.
        foreach (int entry in new[] { 3, 4 })
        {
            int top = tokenTable / 8 * 8;
            for (int seqs = top - 8; seqs >= 0 && top - seqs <= entry * MaxSymbols + 8; seqs -= 8)
            {
                int span = tokenTable - seqs;
                int nHigh = span / entry, nLow = (span - 7 + entry - 1) / entry;
                for (int n = Math.Max(257, nLow); n <= nHigh; n++)
                {
                    int markerCount = (n + 255) / 256;
                    int markers = seqs - Align(4 * markerCount, 8);
                    if (markers < 0) continue;
                    if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(markers)) != 0) continue;
                    if (!MarkersIncrease(bytes, markers, markerCount)) continue;
                    if (!SeqsValid(bytes, seqs, n, entry)) continue;
                    result.Add((markers, markerCount, (uint)n, (uint)n, entry));
                    // The names walk decides; a few candidates nearest to the token table are plenty.
                    if (result.Count >= 4) return result;
                }
            }
        }
        return result;
    }

    static bool ReadMarkersBackward(ReadOnlySpan<byte> bytes, int end, out int start, out int count)
    {
        start = 0; count = 0;
        int p = end - 4;
        uint next = uint.MaxValue;
        while (p >= 0)
        {
            uint v = BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(p));
            if (v == 0) { start = p; count = (end - p) / 4; return count >= 2 && start % 4 == 0; }
            if (next != uint.MaxValue && (next <= v || next - v < 0x100 || next - v > 0x40000)) return false;
            if (next == uint.MaxValue && v > 0x4000000) return false;
            next = v;
            p -= 4;
        }
        return false;
    }

    static bool MarkersIncrease(ReadOnlySpan<byte> bytes, int markers, int count)
    {
        uint previous = 0;
        for (int i = 1; i < count; i++)
        {
            uint v = BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(markers + 4 * i));
            if (v <= previous || v - previous < 0x100 || v - previous > 0x40000) return false;
            previous = v;
        }
        return true;
    }

    static bool SeqsValid(ReadOnlySpan<byte> bytes, int seqs, int n, int entry)
    {
        int check = Math.Min(n, 64);
        for (int i = 0; i < check; i++)
        {
            uint v = entry == 3
                ? (uint)(bytes[seqs + 3 * i] << 16 | bytes[seqs + 3 * i + 1] << 8 | bytes[seqs + 3 * i + 2])
                : BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(seqs + 4 * i));
            if (v >= n) return false;
        }
        return true;
    }

    // Walks n length-prefixed records; each 256th must start where its marker says.
    static bool WalkNames(ReadOnlySpan<byte> bytes, int names, int n, int limit, int markerCount, out int end)
    {
        int p = names;
        end = 0;
        int markers = limit;
        for (int i = 0; i < n; i++)
        {
            if ((i & 0xff) == 0 && BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(markers + 4 * (i >> 8))) != (uint)(p - names)) return false;
            if (p >= limit) return false;
            int len = bytes[p++];
            if (len == 0) return false;
            if ((len & 0x80) != 0) { len = (len & 0x7f) | (bytes[p++] << 7); }
            p += len;
            if (p > limit) return false;
        }
        end = p;
        return markerCount == (n + 255) / 256;
    }

    static KallsymsLayout? TryOffsetsLast(ReadOnlySpan<byte> bytes, ulong baseAddress, int tokenIndex, int count, int names, int markers, int tokenTable,
        int seqsSize)
    {
        int offsets = Align(tokenIndex + 512, 8);
        int relativeBase = Align(offsets + 4 * count, 8);
        if (relativeBase + 8 > bytes.Length) return null;
        ulong rb = BinaryPrimitives.ReadUInt64LittleEndian(bytes.Slice(relativeBase));
        if (!IsKernelAddress(rb) || !OffsetsPlausible(bytes, offsets, count, rb, out bool percpu)) return null;
        int seqs = Align(relativeBase + 8, 8);
        int seqsEntry = seqsSize;
        if (seqsEntry == 0)
        {
            if (seqs + 3 * count <= bytes.Length && SeqsValid(bytes, seqs, count, 3)) seqsEntry = 3;
            else if (seqs + 4 * count <= bytes.Length && SeqsValid(bytes, seqs, count, 4)) seqsEntry = 4;
        }
        return new KallsymsLayout(KallsymsOrder.OffsetsLast, count, baseAddress + (ulong)names, baseAddress + (ulong)markers,
            baseAddress + (ulong)tokenTable, baseAddress + (ulong)tokenIndex, baseAddress + (ulong)offsets, rb, percpu, seqsEntry);
    }

    static KallsymsLayout? TryOffsetsFirst(ReadOnlySpan<byte> bytes, ulong baseAddress, int names, int count, int markers, int tokenTable, int tokenIndex,
        int seqsSize)
    {
        int relativeBase = names - 16;
        int offsets = relativeBase - Align(4 * count, 8);
        if (offsets < 0) return null;
        ulong rb = BinaryPrimitives.ReadUInt64LittleEndian(bytes.Slice(relativeBase));
        if (!IsKernelAddress(rb) || !OffsetsPlausible(bytes, offsets, count, rb, out bool percpu)) return null;
        return new KallsymsLayout(KallsymsOrder.OffsetsFirst, count, baseAddress + (ulong)names, baseAddress + (ulong)markers,
            baseAddress + (ulong)tokenTable, baseAddress + (ulong)tokenIndex, baseAddress + (ulong)offsets, rb, percpu, seqsSize);
    }

    static bool IsKernelAddress(ulong value) => value >= 0xffff800000000000UL;

    static bool OffsetsPlausible(ReadOnlySpan<byte> bytes, int offsets, int count, ulong relativeBase, out bool percpu)
    {
        percpu = false;
        if (offsets < 0 || offsets + 4L * count > bytes.Length) return false;
        int negative = 0;
        for (int i = 0; i < count; i++)
            if (BinaryPrimitives.ReadInt32LittleEndian(bytes.Slice(offsets + 4 * i)) < 0) negative++;
        // kernel/kallsyms.c: with KALLSYMS_ABSOLUTE_PERCPU, relative symbols are stored as -(addr - base) - 1.
        percpu = negative * 2 >= count;
        return true;
    }

    static ulong Address(ReadOnlySpan<byte> bytes, int offsets, int i, ulong relativeBase, bool percpu)
    {
        int raw = BinaryPrimitives.ReadInt32LittleEndian(bytes.Slice(offsets + 4 * i));
        if (!percpu) return relativeBase + (uint)raw;
        return raw >= 0 ? (ulong)raw : relativeBase - 1 - (ulong)(long)raw;
    }

    static SymbolEntry[]? DecodeAll(ReadOnlySpan<byte> span, ulong baseAddress, KallsymsLayout layout, int names, int tokenTable, int[] tokenOffsets)
    {
        // kallsyms_markers give the offset of every 256th name, so blocks of 256 symbols decode independently.
        var bytes = span.ToArray();
        int offsets = (int)(layout.OffsetsAddress - baseAddress);
        int markers = (int)(layout.MarkersAddress - baseAddress);
        var tokenLength = new int[256];
        for (int t = 0; t < 256; t++) tokenLength[t] = Array.IndexOf(bytes, (byte)0, tokenTable + tokenOffsets[t]) - (tokenTable + tokenOffsets[t]);
        var result = new SymbolEntry[layout.Count];
        int blocks = (layout.Count + 255) / 256;
        bool ok = true;
        Parallel.For(0, blocks, () => new byte[4096], (block, _, name) =>
        {
            int p = names + (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(markers + 4 * block));
            int last = Math.Min(layout.Count, (block + 1) * 256);
            for (int i = block * 256; i < last; i++)
            {
                int len = bytes[p++];
                if ((len & 0x80) != 0) len = (len & 0x7f) | (bytes[p++] << 7);
                int at = 0;
                for (int k = 0; k < len; k++)
                {
                    // Expand the token: the bytes of kallsyms_token_table[token_index[b]] up to its NUL.
                    int t = bytes[p + k], tl = tokenLength[t];
                    if (at + tl > name.Length) { ok = false; return name; }
                    Buffer.BlockCopy(bytes, tokenTable + tokenOffsets[t], name, at, tl);
                    at += tl;
                }
                p += len;
                if (at < 2) { ok = false; return name; }
                result[i] = new SymbolEntry(Address(bytes, offsets, i, layout.RelativeBase, layout.AbsolutePercpu),
                    System.Text.Encoding.Latin1.GetString(name, 1, at - 1), (char)name[0]);
            }
            return name;
        }, _ => { });
        if (!ok) return null;
        // kallsyms is sorted by address; per-cpu symbols (small absolute values) come first.
        int unsorted = 0;
        for (int i = 1; i < result.Length; i++)
            if (result[i].Address < result[i - 1].Address) unsorted++;
        return unsorted > 2 ? null : result;
    }
}
