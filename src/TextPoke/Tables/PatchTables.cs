using System.Buffers.Binary;
using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Tables;

/// <summary>
/// One self-patching table of the kernel: the name textpoke uses (--tables, sites --table), the kernel's name, how a
/// linked image marks its bounds, its own section where it has one, the kernels that have it, and its entry size (0
/// where the layout is decided from the bytes).
/// </summary>
/// <paramref name="ShortLastEntry"/>: the fewest bytes the last entry may have when the assembler left it unpadded and
/// the kernel reads it anyway (0: every entry is whole).
public sealed record TableDescriptor(string Name, string Title, string? StartSymbol, string? StopSymbol, string? Section, string Kernels, int EntrySize,
    int ShortLastEntry = 0);

/// <summary>
/// The kernel's self-patching tables besides __jump_table and how to read them (patch-tables.md). Readers here decode
/// entries and nothing else: what an entry should look like, and what the kernel says when it does not, is the
/// business of the checks and the boot patcher above this layer.
/// </summary>
public static class PatchTables
{
    public static readonly TableDescriptor SmpLocks = new("smp_locks", ".smp_locks", "__smp_locks", "__smp_locks_end", ".smp_locks", "v2.6..v6.12", 4);
    public static readonly TableDescriptor ReturnSites = new("return_sites", ".return_sites", "__return_sites", "__return_sites_end", ".return_sites",
        "v5.19..v6.12 (and backports)", 4);
    public static readonly TableDescriptor RetpolineSites = new("retpoline_sites", ".retpoline_sites", "__retpoline_sites", "__retpoline_sites_end",
        ".retpoline_sites", "v5.16..v6.12 (and backports)", 4);
    public static readonly TableDescriptor Mcount = new("mcount", "__mcount_loc", "__start_mcount_loc", "__stop_mcount_loc", "__mcount_loc", "v2.6..v6.12", 8);
    public static readonly TableDescriptor StaticCalls = new("static_calls", ".static_call_sites", "__start_static_call_sites", "__stop_static_call_sites",
        ".static_call_sites", "v5.10..v6.12", 8);
    public static readonly TableDescriptor ExceptionTable = new("ex_table", "__ex_table", "__start___ex_table", "__stop___ex_table", "__ex_table",
        "v4.19..v6.12", 12);
    public static readonly TableDescriptor BugTable = new("bug_table", "__bug_table", "__start___bug_table", "__stop___bug_table", "__bug_table",
        "v4.19..v6.12", 0);
    public static readonly TableDescriptor Orc = new("orc", ".orc_unwind_ip/.orc_unwind", "__start_orc_unwind_ip", "__stop_orc_unwind_ip", ".orc_unwind_ip",
        "v4.14..v6.12", 4);
    public static readonly TableDescriptor OrcUnwind = new("orc_unwind", ".orc_unwind", "__start_orc_unwind", "__stop_orc_unwind", ".orc_unwind",
        "v4.14..v6.12", 6);
    public static readonly TableDescriptor Alternatives = new("alt", ".altinstructions", "__alt_instructions", "__alt_instructions_end", ".altinstructions",
        "v2.6..v6.12", 0);
    public static readonly TableDescriptor AltReplacement = new("altinstr_replacement", ".altinstr_replacement", null, null, ".altinstr_replacement",
        "v2.6..v6.12", 0);
    // The last struct paravirt_patch_site is often unpadded: apply_paravirt reads instr (8), type and len (1 each).
    public static readonly TableDescriptor Paravirt = new("paravirt", ".parainstructions", "__parainstructions", "__parainstructions_end", ".parainstructions",
        "v2.6..v6.7", 16, ShortLastEntry: 10);
    public static readonly TableDescriptor CallSites = new("call_sites", ".call_sites", "__call_sites", "__call_sites_end", ".call_sites", "v6.2..v6.12", 4);
    public static readonly TableDescriptor EndbrSeal = new("ibt_endbr_seal", ".ibt_endbr_seal", "__ibt_endbr_seal", "__ibt_endbr_seal_end", ".ibt_endbr_seal",
        "v5.18..v6.12", 4);
    public static readonly TableDescriptor CfiSites = new("cfi_sites", ".cfi_sites", "__cfi_sites", "__cfi_sites_end", ".cfi_sites", "v6.2..v6.12", 4);

    /// <summary>The table's bounds: start/stop symbols of a linked image, else its own section; null when neither exists.</summary>
    public static TableBounds? Locate(KernelImage image, ImageSymbols symbols, TableDescriptor table) =>
        SiteArray.Locate(image, symbols, table.StartSymbol, table.StopSymbol, table.Section);
}

/// <summary>
/// A table of fixed-size entries, read once: its bounds, its bytes (relocated in an unlinked object) and typed field
/// readers by entry index. Nothing is allocated per entry.
/// </summary>
public sealed class EntryTable
{
    readonly byte[] _bytes;

    EntryTable(TableDescriptor table, TableBounds bounds, byte[] bytes, int entrySize)
    {
        Table = table;
        Bounds = bounds;
        _bytes = bytes;
        EntrySize = entrySize;
    }

    public TableDescriptor Table { get; }
    public TableBounds Bounds { get; }
    public int EntrySize { get; }
    public int Count => _bytes.Length / EntrySize;

    /// <summary>The table's entries, or null with why: bounds outside the file, or not a whole number of entries.</summary>
    public static EntryTable? Read(KernelImage image, TableBounds bounds, TableDescriptor table, out string? why, int entrySize = 0)
    {
        if (entrySize == 0) entrySize = table.EntrySize;
        var bytes = SiteArray.Bytes(image, bounds, out why);
        if (bytes == null) return null;
        int tail = bytes.Length % entrySize;
        if (tail != 0 && table.ShortLastEntry > 0 && tail >= table.ShortLastEntry)
        {
            // An unpadded last entry the kernel reads anyway: read it with zeros for the fields it lacks.
            Array.Resize(ref bytes, bytes.Length + entrySize - tail);
            tail = 0;
        }
        if (tail != 0)
        {
            why = $"{bounds.Length} bytes is not a whole number of {entrySize}-byte entries";
            return null;
        }
        return new EntryTable(table, bounds, bytes, entrySize);
    }

    /// <summary>The address an s32 rel32 field points at: the field's own address plus its value.</summary>
    public ulong Rel32(int index, int field = 0) => SiteArray.Rel32(_bytes, Bounds.Start, index * EntrySize + field);
    public int S32(int index, int field = 0) => BinaryPrimitives.ReadInt32LittleEndian(_bytes.AsSpan(index * EntrySize + field));
    public ulong U64(int index, int field = 0) => BinaryPrimitives.ReadUInt64LittleEndian(_bytes.AsSpan(index * EntrySize + field));
    public int U16(int index, int field) => BinaryPrimitives.ReadUInt16LittleEndian(_bytes.AsSpan(index * EntrySize + field));
    public int U8(int index, int field) => _bytes[index * EntrySize + field];
}

/// <summary>
/// .smp_locks, .return_sites, .retpoline_sites, .call_sites, .ibt_endbr_seal, .cfi_sites and .orc_unwind_ip: one s32
/// rel32 per entry. In .smp_locks a zero field is page padding, not a site.
/// </summary>
public static class Rel32Sites
{
    public static ulong Site(EntryTable table, int index) => table.Rel32(index);
    public static bool IsPadding(EntryTable table, int index) => table.S32(index) == 0;
}

/// <summary>__mcount_loc: u64 absolute addresses of `call __fentry__` sites; zero entries are link padding.</summary>
public static class McountSites
{
    public static ulong Site(EntryTable table, int index) => table.U64(index);
}

/// <summary>
/// One struct static_call_site (include/linux/static_call_types.h, v5.10+): {s32 addr; s32 key}, with
/// STATIC_CALL_SITE_TAIL (1) and STATIC_CALL_SITE_INIT (2) in the low bits of the key.
/// </summary>
public readonly record struct StaticCallSite(ulong Site, ulong Key, bool Tail, bool Init)
{
    public static StaticCallSite Read(EntryTable table, int index)
    {
        ulong key = table.Rel32(index, 4);
        return new(table.Rel32(index), key & ~3UL, (key & 1) != 0, (key & 2) != 0);
    }
}

/// <summary>
/// One struct exception_table_entry: {s32 insn; s32 fixup; then s32 handler (rel32 to an ex_handler_* function,
/// &lt;= v5.15.0) or s32 data (type/reg/flags/imm, v5.16+)}.
/// </summary>
public readonly record struct ExceptionEntry(ulong Insn, ulong Fixup, int Data)
{
    public static ExceptionEntry Read(EntryTable table, int index) => new(table.Rel32(index), table.Rel32(index, 4), table.S32(index, 8));

    /// <summary>
    /// Whether the third field is a handler pointer (&lt;= v5.15.0) rather than data, decided from the bytes: most of a
    /// sample of third fields point into text. Returns the evidence.
    /// </summary>
    public static bool HandlerLayout(KernelImage image, EntryTable table, out string evidence)
    {
        int handlers = 0, sample = Math.Min(table.Count, 64);
        for (int i = 0; i < sample; i++)
            if (image.IsText(table.Rel32(i, 8))) handlers++;
        bool old = sample > 0 && handlers * 2 > sample;
        evidence = old ? $"{handlers}/{sample} third fields point into text" : $"{sample - handlers}/{sample} third fields are data, not text pointers";
        return old;
    }
}

/// <summary>One struct paravirt_patch_site (v4.19..v6.7): {u64 instr; u8 type; u8 len; u16 clobbers}, 16 bytes.</summary>
public readonly record struct ParavirtSite(ulong Instr, int Type, int Len, int Clobbers)
{
    public static ParavirtSite Read(EntryTable table, int index) => new(table.U64(index), table.U8(index, 8), table.U8(index, 9), table.U16(index, 10));
}

/// <summary>The eras of struct alt_instr (and of the boot-time patching around it).</summary>
public enum AltEra
{
    /// <summary>&lt;= v5.12: 13-byte entries with padlen; NOPs chosen by CPU (ideal_nops).</summary>
    UpToV5_12,
    /// <summary>v5.13..v6.2: 12-byte entries, NOT in bit 15 of cpuid.</summary>
    V5_13ToV6_2,
    /// <summary>v6.3+: 14-byte entries with 32-bit ft_flags.</summary>
    V6_3On,
}

/// <summary>The layout of struct alt_instr in one kernel era (patch-tables.md §1).</summary>
public sealed record AltLayout(int Size, string Name, AltEra Era, int FeatureLimit, bool PadLen, bool Flags32)
{
    /// <summary>The era as printed: "&lt;=v5.12", "v5.13..v6.2", "v6.3+".</summary>
    public string EraName => Era switch { AltEra.UpToV5_12 => "<=v5.12", AltEra.V5_13ToV6_2 => "v5.13..v6.2", _ => "v6.3+" };
}

/// <summary>One struct alt_instr. Flags: ALTINSTR_FLAG_INV (bit 15 of cpuid, v5.13..v6.2) or the high half of ft_flags (v6.3+).</summary>
public readonly record struct AltEntry(ulong Instr, ulong Repl, int Feature, int InstrLen, int ReplLen, int PadLen, int Flags)
{
    public bool Not => (Flags & 1) != 0;
    public bool DirectCall => (Flags & 2) != 0;
}

/// <summary>.altinstructions with its layout decided from the bytes, and the .altinstr_replacement range it points into.</summary>
public sealed class AltTable
{
    /// <summary>MAX_PATCH_LEN (arch/x86/include/asm/alternative.h): the longest site the patcher accepts.</summary>
    public const int MaxPatchLen = 255 - 1;

    public static readonly IReadOnlyList<AltLayout> Layouts =
    [
        new(12, "12 bytes {instr, repl, u16 cpuid (bit 15: NOT), instrlen, replacementlen} (v5.13..v6.2)", AltEra.V5_13ToV6_2, (22 + 2) * 32, false, false),
        new(14, "14 bytes {instr, repl, u32 ft_flags, instrlen, replacementlen} (v6.3+)", AltEra.V6_3On, (22 + 2) * 32, false, true),
        new(13, "13 bytes {instr, repl, u16 cpuid, instrlen, replacementlen, padlen} (<= v5.12)", AltEra.UpToV5_12, (20 + 1) * 32, true, false),
    ];

    readonly byte[] _bytes;

    AltTable(TableBounds bounds, AltLayout layout, byte[] bytes, int score, ulong replStart, ulong replEnd, CapabilityWords? words)
    {
        Words = words;
        Bounds = bounds;
        Layout = layout;
        _bytes = bytes;
        Score = score;
        ReplacementStart = replStart;
        ReplacementEnd = replEnd;
    }

    public TableBounds Bounds { get; }
    public AltLayout Layout { get; }
    /// <summary>Percent of the sampled entries that validate under <see cref="Layout"/>.</summary>
    public int Score { get; }
    public ulong ReplacementStart { get; }
    public ulong ReplacementEnd { get; }
    public int Count => _bytes.Length / Layout.Size;
    /// <summary>The image's own NCAPINTS/NBUGINTS, when its x86_cap_flags/x86_bug_flags say.</summary>
    public CapabilityWords? Words { get; }
    /// <summary>(NCAPINTS + NBUGINTS) * 32 of the image when measured, else of the layout's era.</summary>
    public int FeatureLimit => Words?.Limit ?? Layout.FeatureLimit;

    public AltEntry this[int index] => Entry(_bytes, Bounds.Start, index * Layout.Size, Layout);

    static AltEntry Entry(byte[] bytes, ulong start, int at, AltLayout l)
    {
        ulong instr = SiteArray.Rel32(bytes, start, at), repl = SiteArray.Rel32(bytes, start, at + 4);
        int cpuid = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(at + 8));
        int feature = l.Flags32 || l.PadLen ? cpuid : cpuid & 0x7fff;
        int flags = l.Flags32 ? BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(at + 10)) : !l.PadLen && (cpuid & 0x8000) != 0 ? 1 : 0;
        int lens = l.Flags32 ? 12 : 10;
        return new(instr, repl, feature, bytes[at + lens], bytes[at + lens + 1], l.PadLen ? bytes[at + 12] : 0, flags);
    }

    /// <summary>
    /// Reads .altinstructions and decides the entry layout from the bytes: the entry size whose sampled entries point
    /// into text and into .altinstr_replacement (at least 90% of them). Null with why when no size does.
    /// </summary>
    public static AltTable? Read(KernelImage image, ImageSymbols symbols, TableBounds bounds, out string? why)
    {
        var bytes = SiteArray.Bytes(image, bounds, out why);
        if (bytes == null) return null;
        var replacement = PatchTables.Locate(image, symbols, PatchTables.AltReplacement);
        ulong rStart = replacement?.Start ?? 0, rEnd = replacement?.Stop ?? 0;
        var words = CapabilityWords.Measure(image, symbols);
        bool ValidEntry(AltEntry e, AltLayout l) =>
            image.IsText(e.Instr) && e.Repl >= rStart && e.Repl + (ulong)e.ReplLen <= rEnd && e.Feature < (words?.Limit ?? l.FeatureLimit) && e.InstrLen > 0;
        AltLayout? layout = null;
        int best = -1;
        foreach (var l in Layouts)
        {
            if (bytes.Length % l.Size != 0 || replacement == null) continue;
            int count = bytes.Length / l.Size, sample = Math.Min(count, 64), good = 0;
            for (int i = 0; i < sample; i++)
                if (ValidEntry(Entry(bytes, bounds.Start, (int)((long)i * count / sample) * l.Size, l), l)) good++;
            int score = sample == 0 ? 0 : good * 100 / sample;
            if (score > best) { best = score; layout = l; }
        }
        if (layout == null || best < 90)
        {
            why = replacement == null ? "no .altinstr_replacement section to validate entries against"
                : $"{bounds.Length} bytes: no entry size (12, 13, 14) gives entries that point into text and .altinstr_replacement";
            return null;
        }
        return new AltTable(bounds, layout, bytes, best, rStart, rEnd, words);
    }
}
