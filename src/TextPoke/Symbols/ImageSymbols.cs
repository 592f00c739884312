using TextPoke.Images;

namespace TextPoke.Symbols;

/// <summary>
/// Every symbol source of an image, and the one chosen for names. Names come from the image's own kallsyms when it
/// has them (that is exactly what the kernel's %pS prints), then .symtab, then a System.map. Lookups of a name (table
/// bounds, keys) try every source in that order.
/// </summary>
public sealed class ImageSymbols
{
    /// <summary>The table used for %pS names.</summary>
    public SymbolTable Names { get; }
    public KallsymsLayout? KallsymsLayout { get; }
    public SymbolTable? Kallsyms { get; }
    /// <summary>The ELF .symtab; read on first use when kallsyms already name everything (it is the slower of the two).</summary>
    public SymbolTable? ElfSymtab => _symtab.Value;
    readonly Lazy<SymbolTable?> _symtab;
    public SymbolTable? SystemMap { get; }
    public string? SystemMapPath { get; }
    /// <summary>Remarks about the sources, for the output ("System.map-... next to the image is Debian's stub").</summary>
    public IReadOnlyList<string> Notes { get; }

    ImageSymbols(SymbolTable names, KallsymsLayout? layout, SymbolTable? kallsyms, Lazy<SymbolTable?> symtab, SymbolTable? map, string? mapPath,
        List<string> notes)
    {
        Names = names; KallsymsLayout = layout; Kallsyms = kallsyms; _symtab = symtab; SystemMap = map; SystemMapPath = mapPath; Notes = notes;
    }

    IEnumerable<SymbolTable> Sources()
    {
        if (Kallsyms != null) yield return Kallsyms;
        if (ElfSymtab != null) yield return ElfSymtab;
        if (SystemMap != null) yield return SystemMap;
    }

    /// <summary>Finds a symbol by name in the first source that has it.</summary>
    public bool TryFind(string name, out ulong address, out SymbolTable? source)
    {
        foreach (var table in Sources())
            if (table.TryGetAddress(name, out address)) { source = table; return true; }
        address = 0;
        source = null;
        return false;
    }

    /// <summary>
    /// Loads the symbols of an image. <paramref name="systemMap"/> is an explicit System.map (validated against the
    /// image: a mismatch is bad input); without it, a System.map beside the image is used if it is real and matches.
    /// </summary>
    public static ImageSymbols Load(KernelImage image, string? systemMap = null, bool lookBeside = true)
    {
        var notes = new List<string>();
        KallsymsLayout? layout = null;
        SymbolTable? kallsyms = null;
        if (!image.Elf.IsRelocatable)
        {
            var (found, entries, reason) = Symbols.Kallsyms.Recover(image);
            if (found != null)
            {
                layout = found;
                kallsyms = new SymbolTable(SymbolSource.Kallsyms, $"kallsyms recovered from the image ({found.Describe()})", entries,
                    KernelEnd(image, entries));
            }
            else notes.Add($"no kallsyms in the image: {reason}");
        }
        var symtab = new Lazy<SymbolTable?>(() => SymbolTable.FromElf(image));

        SymbolTable? map = null;
        string? mapPath = systemMap;
        if (mapPath == null && lookBeside && image.Kind is ImageKind.BzImage or ImageKind.Vmlinux)
        {
            mapPath = Symbols.SystemMap.FindBeside(image.Path);
            if (mapPath != null && Symbols.SystemMap.IsStub(mapPath))
            {
                notes.Add($"{mapPath} is Debian's one-line stub (the real System.map is in the -dbg package); not used");
                mapPath = null;
            }
        }
        if (mapPath != null)
        {
            var entries = Symbols.SystemMap.Read(mapPath);
            var table = new SymbolTable(SymbolSource.SystemMap, $"System.map {mapPath} ({entries.Length} symbols)", entries, SymbolTable.SectionEnd(image));
            string? mismatch = Mismatch(image, table, kallsyms ?? symtab.Value);
            if (mismatch != null)
            {
                if (systemMap != null) throw new ImageFormatException(mapPath, $"does not match {image.Path}: {mismatch}");
                notes.Add($"{mapPath} does not match the image ({mismatch}); not used");
            }
            else map = table;
        }

        var names = kallsyms ?? symtab.Value ?? map ?? SymbolTable.Empty;
        return new ImageSymbols(names, layout, kallsyms, symtab, map, map == null ? null : mapPath, notes);
    }

    // kernel/kallsyms.c: after the last symbol the size runs to _end (KALLSYMS_ALL) or _etext; use the section end
    // when neither symbol is there.
    static Func<ulong, ulong?> KernelEnd(KernelImage image, SymbolEntry[] entries)
    {
        var sectionEnd = SymbolTable.SectionEnd(image);
        ulong? end = entries.FirstOrDefault(e => e.Name == "_end").Address is var a && a != 0 ? a : null;
        return address => end is { } e && e > address ? e : sectionEnd(address);
    }

    static string? Mismatch(KernelImage image, SymbolTable map, SymbolTable? reference)
    {
        if (reference != null)
        {
            int compared = 0, differ = 0;
            string? example = null;
            foreach (var e in reference.Entries)
            {
                if (e.Type is not ('T' or 't') || compared >= 2000) continue;
                if (!map.TryGetAddress(e.Name, out ulong address)) continue;
                compared++;
                if (address != e.Address) { differ++; example ??= $"{e.Name} is at {e.Address:x16} in the image but {address:x16} in the map"; }
            }
            if (compared == 0) return "no symbol of the image appears in it";
            if (differ * 10 > compared) return example;
            return null;
        }
        var text = image.Elf.Section(".text");
        if (text != null && (map.TryGetAddress("_stext", out ulong stext) || map.TryGetAddress("_text", out stext)))
        {
            if (stext != text.Address && stext + 0x1000 != text.Address && stext != text.Address + 0x1000)
                return $"_stext is {stext:x16} in the map, but .text starts at {text.Address:x16}";
            return null;
        }
        return image.SectionAt(map.Entries[map.Count / 2].Address) == null ? "its symbols lie outside the image" : null;
    }

    /// <summary>One line naming the source used for names, for every output.</summary>
    public string Describe() => Names.Source == SymbolSource.None ? "no symbols (stripped image without kallsyms)" : Names.Description;
}
