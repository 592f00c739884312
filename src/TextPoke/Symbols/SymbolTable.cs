using TextPoke.Images;
using TextPoke.Images.Elf;
using static TextPoke.Images.Elf.ElfConstants;

namespace TextPoke.Symbols;

/// <summary>Where names came from.</summary>
public enum SymbolSource { None, Kallsyms, ElfSymtab, SystemMap }

/// <summary>
/// Address to <c>name+0xoff/0xsize</c> exactly as the kernel's <c>%pS</c> prints it, and name to address.
/// kernel/kallsyms.c (get_symbol_pos, kallsyms_lookup_size_offset), v4.20..v6.12: the symbol is the last one at or
/// below the address, the first of its aliases in table order; its size is the distance to the next symbol with a
/// higher address (not the ELF size); after the last symbol, the end of its section.
/// </summary>
public sealed class SymbolTable
{
    readonly ulong[] _addresses;
    readonly SymbolEntry[] _entries;
    readonly Dictionary<string, int> _byName;
    readonly Func<ulong, ulong?>? _regionEnd;

    public SymbolSource Source { get; }
    /// <summary>Human description of the source, e.g. "kallsyms recovered from the image (94178 symbols, ...)".</summary>
    public string Description { get; }
    public int Count => _entries.Length;
    public IReadOnlyList<SymbolEntry> Entries => _entries;

    public SymbolTable(SymbolSource source, string description, SymbolEntry[] sortedEntries, Func<ulong, ulong?>? regionEnd = null)
    {
        Source = source;
        Description = description;
        _entries = sortedEntries;
        _addresses = new ulong[sortedEntries.Length];
        _byName = new Dictionary<string, int>(sortedEntries.Length, StringComparer.Ordinal);
        for (int i = 0; i < sortedEntries.Length; i++)
        {
            _addresses[i] = sortedEntries[i].Address;
            // Prefer a global definition for name lookups; else the first one.
            if (!_byName.TryGetValue(sortedEntries[i].Name, out int existing) || char.IsLower(_entries[existing].Type) && char.IsUpper(sortedEntries[i].Type))
                _byName[sortedEntries[i].Name] = i;
        }
        _regionEnd = regionEnd;
    }

    public static SymbolTable Empty { get; } = new(SymbolSource.None, "no symbols", []);

    public bool TryGetAddress(string name, out ulong address)
    {
        if (_byName.TryGetValue(name, out int i)) { address = _entries[i].Address; return true; }
        address = 0;
        return false;
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Every symbol with this exact name (local statics may repeat).</summary>
    public IEnumerable<SymbolEntry> All(string name) => _entries.Where(e => e.Name == name);

    /// <summary>Finds the symbol for an address: (entry, offset, size) or null when no symbol lies at or below it.</summary>
    public (SymbolEntry Symbol, ulong Offset, ulong Size)? Lookup(ulong address)
    {
        int i = Array.BinarySearch(_addresses, address);
        if (i < 0) i = ~i - 1;
        else while (i + 1 < _addresses.Length && _addresses[i + 1] == address) i++;
        if (i < 0) return null;
        ulong start = _addresses[i];
        // First alias in table order.
        while (i > 0 && _addresses[i - 1] == start) i--;
        ulong end = 0;
        int j = i + 1;
        while (j < _addresses.Length && _addresses[j] <= start) j++;
        if (j < _addresses.Length) end = _addresses[j];
        else end = _regionEnd?.Invoke(start) ?? start;
        if (end <= start) end = Math.Max(address + 1, start + 1);
        if (address >= end) return null;
        return (_entries[i], address - start, end - start);
    }

    /// <summary>Formats an address as the kernel's %pS does: <c>name+0xoff/0xsize [module]</c>, or <c>0x...</c> without a symbol.</summary>
    public string FormatPS(ulong address, string? module = null)
    {
        var hit = Lookup(address);
        if (hit == null) return $"0x{address:x}";
        var (symbol, offset, size) = hit.Value;
        var text = $"{symbol.Name}+0x{offset:x}/0x{size:x}";
        return module == null ? text : $"{text} [{module}]";
    }

    /// <summary>The containing function's name, or null.</summary>
    public string? FunctionAt(ulong address) => Lookup(address)?.Symbol.Name;

    // scripts/kallsyms.c (is_ignored_symbol), v6.1: what kallsyms leaves out, so that sizes from other sources match %pS.
    internal static bool IgnoredByKallsyms(string name, char type)
    {
        if (name.Length == 0 || type is 'U' or 'u' or 'N' or 'n' or 'A' or 'a') return true;
        if (name.StartsWith(".L", StringComparison.Ordinal) || name.StartsWith('$')) return true;
        if (name.StartsWith("__kcfi_typeid_", StringComparison.Ordinal) || name.StartsWith("__efistub_", StringComparison.Ordinal)) return true;
        return name is "kallsyms_addresses" or "kallsyms_offsets" or "kallsyms_relative_base" or "kallsyms_num_syms"
            or "kallsyms_names" or "kallsyms_markers" or "kallsyms_token_table" or "kallsyms_token_index" or "kallsyms_seqs_of_names";
    }

    /// <summary>
    /// Sorts entries the way scripts/kallsyms.c (compare_symbols, v5.17..v6.12) orders them: by address; among aliases
    /// non-weak first, then symbols that do not look linker-provided (__start_*, __stop_*, __end_*, *_start, *_end),
    /// then fewer leading underscores, then input order. %pS prints the first alias.
    /// </summary>
    internal static SymbolEntry[] Sort(IEnumerable<SymbolEntry> entries)
    {
        var list = entries.ToArray();
        var order = new int[list.Length];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        Array.Sort(order, (a, b) =>
        {
            var x = list[a];
            var y = list[b];
            int c = x.Address.CompareTo(y.Address);
            if (c != 0) return c;
            c = IsWeak(x).CompareTo(IsWeak(y));
            if (c != 0) return c;
            c = LooksLinkerProvided(x.Name).CompareTo(LooksLinkerProvided(y.Name));
            if (c != 0) return c;
            c = LeadingUnderscores(x.Name).CompareTo(LeadingUnderscores(y.Name));
            return c != 0 ? c : a.CompareTo(b);
        });
        return order.Select(i => list[i]).ToArray();
    }

    static bool IsWeak(in SymbolEntry e) => e.Type is 'w' or 'W';

    static int LeadingUnderscores(string name)
    {
        int n = 0;
        while (n < name.Length && name[n] == '_') n++;
        return n;
    }

    // scripts/kallsyms.c (may_be_linker_script_provide_symbol).
    static bool LooksLinkerProvided(string name)
    {
        if (name.Length < 8 || !name.StartsWith("__", StringComparison.Ordinal)) return false;
        return name.StartsWith("__start_", StringComparison.Ordinal) || name.StartsWith("__stop_", StringComparison.Ordinal)
            || name.StartsWith("__end_", StringComparison.Ordinal) || name.EndsWith("_start", StringComparison.Ordinal)
            || name.EndsWith("_end", StringComparison.Ordinal);
    }

    /// <summary>nm's type letter for an ELF symbol.</summary>
    internal static char TypeLetter(KernelImage image, in ElfSymbol s)
    {
        char c;
        if (s.SectionIndex == SHN_ABS) c = 'A';
        else if (s.IsUndefined) c = 'U';
        else if (s.Bind == STB_WEAK) return s.Type == STT_OBJECT ? 'V' : 'W';
        else if (s.SectionIndex >= image.Elf.Sections.Count) c = 'A';
        else
        {
            var section = image.Elf.Sections[s.SectionIndex];
            c = section.IsExecutable ? 'T' : section.Type == SHT_NOBITS ? 'B' : section.IsWritable ? 'D' : section.IsAllocated ? 'R' : 'N';
        }
        return s.Bind == STB_LOCAL ? char.ToLowerInvariant(c) : c;
    }

    /// <summary>Builds a table from .symtab (kallsyms' filter applied), or null when the image has none.</summary>
    public static SymbolTable? FromElf(KernelImage image)
    {
        var symbols = image.ElfSymbols;
        if (symbols.Length == 0) return null;
        var entries = new List<SymbolEntry>(symbols.Length);
        foreach (var s in symbols)
        {
            if (s.Type is STT_SECTION or STT_FILE || s.IsUndefined) continue;
            char type = TypeLetter(image, s);
            var address = image.SymbolAddress(s);
            if (address == null || IgnoredByKallsyms(s.Name, type)) continue;
            entries.Add(new SymbolEntry(address.Value, s.Name, type));
        }
        if (entries.Count == 0) return null;
        return new SymbolTable(SymbolSource.ElfSymtab, $".symtab ({entries.Count} symbols)", Sort(entries), SectionEnd(image));
    }

    /// <summary>After the last symbol, the kernel measures to the end of the region: approximate with the section end.</summary>
    internal static Func<ulong, ulong?> SectionEnd(KernelImage image) => address =>
    {
        var s = image.SectionAt(address);
        return s == null ? null : image.SectionAddress(s) + s.Size;
    };
}
