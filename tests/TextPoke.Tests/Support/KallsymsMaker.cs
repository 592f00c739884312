using System.Buffers.Binary;
using System.Text;
using TextPoke.Images.Elf;
using TextPoke.Symbols;

namespace TextPoke.Tests.Support;

/// <summary>
/// Emits kallsyms tables the way scripts/kallsyms.c (write_src) lays them out, for every layout textpoke reads, inside
/// the .rodata of a small ELF: offsets or addresses, relative_base, num_syms, names (big lengths as two-byte ULEB128 from
/// v6.1), markers, seqs_of_names (v6.2: .long; later and in backports: 3 bytes), token_table, token_index; and the v6.4
/// order. Every label is 8-aligned (ALGN).
/// </summary>
public static class KallsymsMaker
{
    public const ulong TextBase = 0xffffffff81000000, RodataBase = 0xffffffff82000000;

    public sealed record Layout(KallsymsOrder Order, int SeqsEntry, bool AbsolutePercpu, bool BigNames);

    // Byte values that are not printable stand for two-character tokens; printable ones stand for themselves.
    static readonly string[] Pairs = ["__", "_s", "et", "in", "re", "_t", "de", "st", "er", "on", "ck", "un", "ev", "at", "le", "ma"];

    static string Token(int b) => b is >= 0x21 and <= 0x7e ? ((char)b).ToString() : Pairs[b % Pairs.Length] + (b >= 0x80 ? "" : "");

    /// <summary>
    /// <paramref name="lastByName"/>: the index of the symbol that sorts last by name, so it is the last entry of
    /// seqs_of_names, the bytes right before the token table.
    /// </summary>
    public static List<SymbolEntry> Symbols(Layout layout, int count, int lastByName = -1)
    {
        var list = new List<SymbolEntry>();
        if (layout.AbsolutePercpu)
            for (int i = 0; i < 4; i++) list.Add(new SymbolEntry((ulong)(i * 0x1000), $"percpu_var_{i}", 'A'));
        for (int i = 0; i < count; i++)
        {
            string name = (i % 7) switch
            {
                0 => $"__do_sys_call_{i}",
                1 => $"static_key_slow_inc_{i}",
                2 => $"ret_from_fork_{i}",
                _ when i == lastByName => "zzz_sorts_last",
                3 when layout.BigNames && i % 21 == 3 => "__pfx_" + new string('x', 150) + $"_{i}",
                _ => $"func_{i}",
            };
            list.Add(new SymbolEntry(TextBase + (ulong)i * 0x40, name, i % 3 == 0 ? 't' : 'T'));
        }
        return list;
    }

    static byte[] Encode(string typeAndName)
    {
        var bytes = new List<byte>();
        for (int i = 0; i < typeAndName.Length;)
        {
            int pair = i + 1 < typeAndName.Length ? Array.IndexOf(Pairs, typeAndName.Substring(i, 2)) : -1;
            if (pair >= 0) { bytes.Add((byte)(pair == 0 ? 0x80 : pair)); i += 2; }
            else { bytes.Add((byte)typeAndName[i]); i++; }
        }
        return bytes.ToArray();
    }

    /// <param name="numSyms">kallsyms_num_syms as written, when a test wants it to lie (default: the symbol count).</param>
    public static byte[] BuildElf(Layout layout, IReadOnlyList<SymbolEntry> symbols, uint? numSyms = null)
    {
        var rodata = new MemoryStream();
        void Align() { while (rodata.Length % 8 != 0) rodata.WriteByte(0); }
        void U32(uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); rodata.Write(b); }
        void U64(ulong v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); rodata.Write(b); }
        rodata.Write(Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("Linux version 6.99.0 (test) (gcc) #1 SMP\n\0filler ", 40))));
        Align();

        ulong relativeBase = symbols.Where(s => s.Type != 'A').Min(s => s.Address);
        void Offsets()
        {
            Align();
            foreach (var s in symbols)
            {
                long offset = !layout.AbsolutePercpu ? (long)(s.Address - relativeBase)
                    : s.Type == 'A' ? (long)s.Address : (long)relativeBase - (long)s.Address - 1;
                U32(unchecked((uint)offset));
            }
            Align();
            U64(relativeBase);
        }
        void NumSyms() { Align(); U32(numSyms ?? (uint)symbols.Count); }
        var markers = new List<uint>();
        void Names()
        {
            Align();
            long start = rodata.Length;
            for (int i = 0; i < symbols.Count; i++)
            {
                if ((i & 0xff) == 0) markers.Add((uint)(rodata.Length - start));
                var encoded = Encode(symbols[i].Type + symbols[i].Name);
                if (encoded.Length > 0x7f)
                {
                    if (!layout.BigNames) throw new InvalidOperationException("big names need the v6.1 encoding");
                    rodata.WriteByte((byte)(encoded.Length & 0x7f | 0x80));
                    rodata.WriteByte((byte)(encoded.Length >> 7));
                }
                else rodata.WriteByte((byte)encoded.Length);
                rodata.Write(encoded);
            }
        }
        void Markers() { Align(); foreach (var m in markers) U32(m); }
        void Seqs()
        {
            if (layout.SeqsEntry == 0) return;
            Align();
            var byName = Enumerable.Range(0, symbols.Count).OrderBy(i => symbols[i].Name, StringComparer.Ordinal).ToList();
            foreach (int seq in byName)
            {
                if (layout.SeqsEntry == 4) U32((uint)seq);
                else { rodata.WriteByte((byte)(seq >> 16)); rodata.WriteByte((byte)(seq >> 8)); rodata.WriteByte((byte)seq); }
            }
        }
        void Tokens()
        {
            Align();
            var index = new List<ushort>();
            long start = rodata.Length;
            for (int b = 0; b < 256; b++)
            {
                index.Add((ushort)(rodata.Length - start));
                rodata.Write(Encoding.ASCII.GetBytes(Token(b)));
                rodata.WriteByte(0);
            }
            Align();
            foreach (var i in index) { rodata.WriteByte((byte)i); rodata.WriteByte((byte)(i >> 8)); }
        }

        if (layout.Order == KallsymsOrder.OffsetsFirst) { Offsets(); NumSyms(); Names(); Markers(); Seqs(); Tokens(); }
        else { NumSyms(); Names(); Markers(); Tokens(); Offsets(); Seqs(); }
        Align();
        rodata.Write(new byte[4096]);

        int textSize = symbols.Count(s => s.Type != 'A') * 0x40;
        return new ElfBuilder()
            .AddSection(".text", TextBase, Enumerable.Repeat((byte)0xcc, textSize).ToArray(), ElfConstants.SHF_ALLOC | ElfConstants.SHF_EXECINSTR)
            .AddSection(".rodata", RodataBase, rodata.ToArray(), ElfConstants.SHF_ALLOC, 4096)
            .Build();
    }
}
