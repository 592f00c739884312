using System.Text;
using TextPoke.Images;
using TextPoke.Messages;
using TextPoke.Images.Elf;
using static TextPoke.Images.Elf.ElfConstants;

namespace TextPoke.Checks;

/// <summary>
/// What the module loader checks before any table is used (arch/x86/kernel/module.c __apply_relocate_add, v6.1.y):
/// every relocation of an allocated section must be of a known type and its target field must be zero in the file,
/// or loading fails with -ENOEXEC.
/// </summary>
public static class ModuleCheck
{
    public const string TableName = "module";

    public static List<Finding> Relocations(KernelImage image)
    {
        var findings = new List<Finding>();
        if (!image.Elf.IsRelocatable) return findings;
        var symbols = image.ElfSymbols;
        foreach (var rela in image.Elf.Sections)
        {
            if (rela.Type != SHT_RELA || rela.Info >= image.Elf.Sections.Count) continue;
            var target = image.Elf.Sections[(int)rela.Info];
            if (!target.IsAllocated || !target.HasFileBytes) continue;
            var bytes = image.Elf.SectionBytes(target);
            foreach (var r in image.Elf.Relocations(rela))
            {
                int width = r.Type switch
                {
                    R_X86_64_NONE => -1,
                    R_X86_64_64 or R_X86_64_PC64 => 8,
                    R_X86_64_32 or R_X86_64_32S or R_X86_64_PC32 or R_X86_64_PLT32 => 4,
                    _ => 0,
                };
                if (width < 0) continue;
                if (width == 0)
                {
                    findings.Add(new Finding
                    {
                        Table = TableName, Rule = "module.unknown-relocation", Severity = Severity.Bug,
                            Title = "relocation type the x86-64 module loader does not know",
                        KernelLines = [KernelMessages.ModuleUnknownRelocation(image.ModuleName, r.Type)],
                        Explanation = $"{rela.Name} has a {RelocationName(r.Type)} at {target.Name}+0x{r.Offset:x}; __apply_relocate_add rejects it and the " +
                            $"module does not load (-ENOEXEC).",
                    });
                    return findings;
                }
                if (r.Offset + (ulong)width > (ulong)bytes.Length) continue;
                var field = bytes.Slice((int)r.Offset, width);
                if (field.IndexOfAnyExcept((byte)0) < 0) continue;
                ulong loc = image.SectionAddress(target) + r.Offset;
                ulong symbol = r.SymbolIndex < symbols.Length ? image.SymbolAddress(symbols[r.SymbolIndex]) ?? 0 : 0;
                ulong val = unchecked(symbol + (ulong)r.Addend);
                // (A section symbol naming a section the file does not have is a malformed symbol: named "?".)
                string name = r.SymbolIndex >= symbols.Length ? "?"
                    : symbols[r.SymbolIndex].Type != STT_SECTION ? symbols[r.SymbolIndex].Name
                    : symbols[r.SymbolIndex].SectionIndex < image.Elf.Sections.Count ? image.Elf.Sections[symbols[r.SymbolIndex].SectionIndex].Name : "?";
                findings.Add(new Finding
                {
                    Table = TableName, Rule = "module.nonzero-relocation-target", Severity = Severity.Bug,
                    Title = "relocation target is not zero in the file", Address = loc, Location = $"{target.Name}+0x{r.Offset:x}",
                    KernelLines = [KernelMessages.ModuleRelocationNonzero(r.Type, loc, val)],
                    ActualBytes = X86.X86Code.Hex(field),
                    Explanation = $"the {RelocationName(r.Type)} against {name} at {target.Name}+0x{r.Offset:x} would overwrite {X86.X86Code.Hex(field)}; " +
                        $"since v6.1.y " +
                        "the loader refuses any relocation whose target is not zero, so the module fails to load with -ENOEXEC (the field was written " +
                            "twice: a tool patched bytes a relocation owns). loc and val use textpoke's load address.",
                });
                return findings; // the loader stops at the first one
            }
        }
        return findings;
    }

    /// <summary>The vermagic string of a module (.modinfo "vermagic="), or null.</summary>
    public static string? Vermagic(KernelImage image)
    {
        var modinfo = image.Elf.Section(".modinfo");
        if (modinfo == null || !modinfo.HasFileBytes) return null;
        foreach (var entry in Encoding.ASCII.GetString(image.Elf.SectionBytes(modinfo)).Split('\0'))
            if (entry.StartsWith("vermagic=", StringComparison.Ordinal)) return entry[9..];
        return null;
    }

    /// <summary>The kernel release ("6.1.0-56-amd64") from a "Linux version ..." banner.</summary>
    public static string? ReleaseOf(string? banner)
    {
        if (banner == null || !banner.StartsWith("Linux version ", StringComparison.Ordinal)) return null;
        var rest = banner["Linux version ".Length..];
        int space = rest.IndexOf(' ');
        return space < 0 ? rest : rest[..space];
    }
}
