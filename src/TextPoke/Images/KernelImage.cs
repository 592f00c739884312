using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using TextPoke.Images.BzImage;
using TextPoke.Images.Elf;
using static TextPoke.Images.Elf.ElfConstants;

namespace TextPoke.Images;

/// <summary>What kind of file the user gave, decided once by the loader from the bytes.</summary>
public enum ImageKind
{
    /// <summary>A linked kernel: an ELF vmlinux, stripped or not.</summary>
    Vmlinux,
    /// <summary>A bzImage/vmlinuz: its payload is the linked kernel.</summary>
    BzImage,
    /// <summary>A loadable module (.ko, compressed or not): ET_REL with .modinfo or .gnu.linkonce.this_module.</summary>
    Module,
    /// <summary>An unlinked kernel object (an LTO vmlinux.o): ET_REL without module sections.</summary>
    Object,
}

/// <summary>
/// A kernel image loaded once, read-only: the ELF (from disk, from a bzImage payload, or from a compressed module),
/// its address space, and for relocatable inputs the relocated bytes of the sections a check touches.
/// </summary>
public sealed partial class KernelImage : IDisposable
{
    // ET_REL sections get addresses the way the module loader lays them out: one after another in the module area.
    const ulong RelocatableBase = 0xffffffffc0000000;
    // An unlinked kernel object (an LTO vmlinux.o) is laid out where the link will put it: the kernel's text base
    // (__START_KERNEL_map + CONFIG_PHYSICAL_START, 0xffffffff81000000 in every distro config), not in the module area.
    const ulong KernelTextBase = 0xffffffff81000000;

    readonly ulong[] _sectionAddress;
    readonly ElfSection[] _relocatableByAddress;
    readonly Dictionary<int, RelocatedSection> _relocated = new();
    readonly object _gate = new();
    /// <summary>Per RELA section: are its entries sorted by offset (so windows can be relocated by binary search)?</summary>
    internal System.Collections.Concurrent.ConcurrentDictionary<int, bool> SortedRelocations { get; } = new();
    ElfSymbol[]? _symbols;

    /// <summary>The path the user gave.</summary>
    public string Path { get; }
    public ImageKind Kind { get; }
    public ElfFile Elf { get; }
    /// <summary>The file the ELF lives in (the decompressed payload for a bzImage).</summary>
    public ImageFile ElfImage { get; }
    /// <summary>The original file when it is not the ELF itself (bzImage, compressed module).</summary>
    public ImageFile? Container { get; }
    public BzImageHeader? BzImageHeader { get; }
    public CompressionFormat Compression { get; }
    /// <summary>"Linux version ..." banner found in the image, if any (searched on first use).</summary>
    public string? Banner => _banner.Value;
    readonly Lazy<string?> _banner;
    /// <summary>Module name (from .modinfo, else the file name) for modules.</summary>
    public string? ModuleName { get; }

    KernelImage(string path, ImageKind kind, ImageFile elfImage, ImageFile? container, BzImageHeader? header, CompressionFormat compression)
    {
        Path = path;
        ElfImage = elfImage;
        Container = container;
        BzImageHeader = header;
        Compression = compression;
        Elf = new ElfFile(elfImage);
        if (Elf.IsRelocatable)
        {
            bool module = Elf.Section(".modinfo") != null || Elf.Section(".gnu.linkonce.this_module") != null;
            kind = module ? ImageKind.Module : ImageKind.Object;
        }
        else if (kind == ImageKind.Vmlinux && Elf.Type == ET_DYN && !IsPieKernel(Elf))
            throw new ImageFormatException(path, "a shared object or PIE executable, not a kernel image");
        Kind = kind;
        _sectionAddress = AssignAddresses(Elf, kind == ImageKind.Object ? KernelTextBase : RelocatableBase);
        _relocatableByAddress = Elf.IsRelocatable
            ? Elf.Sections.Where(x => x.IsAllocated && x.Size > 0).OrderBy(x => _sectionAddress[x.Index]).ToArray()
            : [];
        _banner = new Lazy<string?>(FindBanner);
        if (kind == ImageKind.Module) ModuleName = ReadModuleName() ?? ModuleNameFromPath(path);
    }

    /// <summary>Opens any supported image: ELF vmlinux / vmlinux.o / .ko, a compressed module, or a bzImage.</summary>
    public static KernelImage Open(string path) => Open(path, ImageFile.Open(path));

    /// <summary>Opens any supported image held in memory (bzImage, compressed module or ELF), named <paramref name="name"/> in messages.</summary>
    public static KernelImage FromBytes(string name, byte[] bytes) => Open(name, ImageFile.FromBytes(name, bytes));

    static KernelImage Open(string path, ImageFile file)
    {
        try
        {
            var head = file.Span(0, Math.Min(file.Length, 64));
            if (ElfFile.IsElf(head))
                return new KernelImage(path, ImageKind.Vmlinux, file, null, null, CompressionFormat.None);
            if (BzImageFile.IsBzImage(file))
            {
                var header = BzImageFile.ReadHeader(file);
                var (elf, format) = BzImageFile.Decompress(file, header);
                var payload = ImageFile.FromBytes($"{path} (decompressed payload)", elf);
                return new KernelImage(path, ImageKind.BzImage, payload, file, header, format);
            }
            var format2 = BzImage.Compression.Detect(head);
            if (format2 != CompressionFormat.None)
            {
                byte[] bytes;
                try { bytes = BzImage.Compression.Decompress(format2, file.Span(0, file.Length), -1); }
                catch (InvalidDataException e) { throw new ImageFormatException(path, $"corrupt {BzImage.Compression.Name(format2)} data: {e.Message}"); }
                if (!ElfFile.IsElf(bytes))
                    throw new ImageFormatException(path, $"{BzImage.Compression.Name(format2)}-compressed, but not an ELF inside");
                return new KernelImage(path, ImageKind.Module, ImageFile.FromBytes($"{path} (decompressed)", bytes), file, null, format2);
            }
            throw new ImageFormatException(path, file.Length < 64 ? "too short to be a kernel image"
                : "not a kernel image: neither ELF, bzImage nor a compressed module");
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Wraps an ELF made in memory (the demo, tests).</summary>
    public static KernelImage FromElfBytes(string name, byte[] elf) =>
        new(name, ImageKind.Vmlinux, ImageFile.FromBytes(name, elf), null, null, CompressionFormat.None);

    static ulong[] AssignAddresses(ElfFile elf, ulong relocatableBase)
    {
        var result = new ulong[elf.Sections.Count];
        if (!elf.IsRelocatable)
        {
            for (int i = 0; i < result.Length; i++) result[i] = elf.Sections[i].Address;
            return result;
        }
        ulong at = relocatableBase;
        foreach (var s in elf.Sections)
        {
            if (!s.IsAllocated) continue;
            ulong align = Math.Max(1, s.Alignment);
            at = (at + align - 1) / align * align;
            result[s.Index] = at;
            at += Math.Max(s.Size, 1);
        }
        return result;
    }

    /// <summary>The run-time address of a section (its link address, or the address assigned to an ET_REL section).</summary>
    public ulong SectionAddress(ElfSection section) => _sectionAddress[section.Index];

    /// <summary>The allocated section containing an address.</summary>
    public ElfSection? SectionAt(ulong address)
    {
        if (!Elf.IsRelocatable) return Elf.SectionAt(address);
        // Assigned addresses do not overlap: binary search for the last section starting at or below the address.
        int lo = 0, hi = _relocatableByAddress.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_sectionAddress[_relocatableByAddress[mid].Index] <= address) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        if (found < 0) return null;
        var s = _relocatableByAddress[found];
        return address - _sectionAddress[s.Index] < s.Size ? s : null;
    }

    /// <summary>True when the address lies in an executable section.</summary>
    public bool IsText(ulong address) => SectionAt(address) is { IsExecutable: true };

    /// <summary>
    /// Copies bytes at an address into <paramref name="destination"/>. NOBITS sections read as zeroes, as they are at boot.
    /// Returns the number of bytes copied (fewer at the end of a section, 0 outside every section).
    /// </summary>
    public int Read(ulong address, Span<byte> destination)
    {
        var s = SectionAt(address);
        if (s == null) return 0;
        ulong offset = address - SectionAddress(s);
        int n = (int)Math.Min((ulong)destination.Length, s.Size - offset);
        if (!s.HasFileBytes) destination[..n].Clear(); // NOBITS (and hostile NULL-typed) sections: zeroes, as at boot
        else if (Elf.IsRelocatable && !IsRelocatedCached(s) && RelocationWindow.TryApply(this, s, offset, destination[..n])) { }
        else SectionContents(s).Slice((int)offset, n).CopyTo(destination);
        return n;
    }

    public bool TryReadU32(ulong address, out uint value)
    {
        Span<byte> b = stackalloc byte[4];
        bool ok = Read(address, b) == 4;
        value = ok ? BinaryPrimitives.ReadUInt32LittleEndian(b) : 0;
        return ok;
    }

    public bool TryReadU64(ulong address, out ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        bool ok = Read(address, b) == 8;
        value = ok ? BinaryPrimitives.ReadUInt64LittleEndian(b) : 0;
        return ok;
    }

    /// <summary>
    /// The bytes of a section as the kernel sees them: the file bytes for linked images; for ET_REL, a copy with the
    /// section's RELA relocations applied (computed once, on first use).
    /// </summary>
    public ReadOnlySpan<byte> SectionContents(ElfSection section)
    {
        if (Elf.Type == ET_DYN && section.HasFileBytes && DynamicRelocated(section) is { } patched) return patched;
        if (!Elf.IsRelocatable || !section.HasFileBytes) return Elf.SectionBytes(section);
        return Relocated(section).Bytes;
    }

    /// <summary>
    /// A kernel linked as PIE (ET_DYN, as toolchain tests link small kernels with lld -pie): no program interpreter, and
    /// the kernel's own symbols or sections (_text/_stext, the self-patching tables). A shared library or a user PIE
    /// program is still refused.
    /// </summary>
    static bool IsPieKernel(ElfFile elf)
    {
        if (elf.Section(".interp") != null) return false;
        string[] sections = ["__jump_table", ".altinstructions", ".parainstructions", "__mcount_loc", ".static_call_sites", ".smp_locks",
            ".return_sites", ".retpoline_sites", "__ex_table", "__bug_table", ".orc_unwind_ip"];
        if (sections.Any(s => elf.Section(s) != null)) return true;
        return elf.ReadSymbols().Any(s => s.Name is "_text" or "_stext" or "__start___jump_table");
    }

    Dictionary<int, byte[]?>? _dynamicRelocated;

    /// <summary>
    /// ET_DYN: a copy of the section with its R_X86_64_RELATIVE relocations (.rela.dyn) applied at the link address, so
    /// absolute fields (u64 table entries, pointers) read as the kernel's relocation code leaves them; null when none apply.
    /// </summary>
    byte[]? DynamicRelocated(ElfSection section)
    {
        lock (_gate)
        {
            _dynamicRelocated ??= [];
            if (_dynamicRelocated.TryGetValue(section.Index, out var cached)) return cached;
            ulong start = section.Address, end = section.Address + section.Size;
            byte[]? copy = null;
            foreach (var rela in Elf.Sections.Where(s => s.Type == SHT_RELA && (s.Flags & SHF_ALLOC) != 0))
            {
                var reader = Elf.Relocations(rela);
                while (reader.MoveNext())
                {
                    var r = reader.Current;
                    if (r.Type != RelativeRelocation || r.Offset < start || r.Offset + 8 > end) continue;
                    copy ??= Elf.SectionBytes(section).ToArray();
                    BinaryPrimitives.WriteInt64LittleEndian(copy.AsSpan((int)(r.Offset - start)), r.Addend);
                }
            }
            _dynamicRelocated[section.Index] = copy;
            return copy;
        }
    }

    const uint RelativeRelocation = 8; // R_X86_64_RELATIVE: base + addend, the base 0 at the link address

    /// <summary>The relocation applying exactly at a section offset of an unlinked object: (type, symbol), or null.</summary>
    public (uint Type, string Symbol)? RelocationAt(ElfSection section, ulong offset) =>
        Elf.IsRelocatable ? RelocationWindow.At(this, section, offset) : null;

    /// <summary>The relocations of an ET_REL section, applied; null for linked images.</summary>
    public RelocatedSection? RelocationsOf(ElfSection section) =>
        Elf.IsRelocatable && section.HasFileBytes ? Relocated(section) : null;

    /// <summary>How many sections have been copied and relocated whole (tests watch that this stays small).</summary>
    internal int RelocatedSectionCount { get { lock (_gate) return _relocated.Count; } }

    bool IsRelocatedCached(ElfSection section)
    {
        lock (_gate) return _relocated.ContainsKey(section.Index);
    }

    RelocatedSection Relocated(ElfSection section)
    {
        lock (_gate)
        {
            if (!_relocated.TryGetValue(section.Index, out var r))
                _relocated[section.Index] = r = RelocatedSection.Build(this, section);
            return r;
        }
    }

    /// <summary>All symbols of .symtab (empty when stripped). For ET_REL the values stay section-relative.</summary>
    public ElfSymbol[] ElfSymbols => _symbols ??= Elf.ReadSymbols();

    /// <summary>The run-time address of a defined ELF symbol, or null when it is undefined.</summary>
    public ulong? SymbolAddress(in ElfSymbol symbol)
    {
        if (symbol.SectionIndex == SHN_ABS) return symbol.Value;
        if (symbol.IsUndefined || symbol.SectionIndex >= _sectionAddress.Length) return null;
        return Elf.IsRelocatable ? _sectionAddress[symbol.SectionIndex] + symbol.Value : symbol.Value;
    }

    [GeneratedRegex(@"Linux version (\d{1,6})\.(\d{1,6})(?:\.(\d{1,6}))?[^\n\0]*")]
    private static partial Regex BannerPattern();

    [GeneratedRegex(@"\bDebian (\d{1,6})\.(\d{1,6})\.(\d{1,6})-\S+ \(\d{4}-\d\d-\d\d\)")]
    private static partial Regex DebianVersionPattern();

    string? FindBanner()
    {
        foreach (var s in Elf.Sections)
        {
            if (!s.IsAllocated || s.IsExecutable || !s.HasFileBytes) continue;
            var bytes = Elf.SectionBytes(s);
            int at = bytes.IndexOf("Linux version "u8);
            while (at >= 0)
            {
                int end = bytes[at..].IndexOfAny((byte)0, (byte)'\n');
                if (end < 0) end = Math.Min(bytes.Length - at, 512);
                var text = Encoding.ASCII.GetString(bytes.Slice(at, Math.Min(end, 512)));
                var m = BannerPattern().Match(text);
                // The real banner names the compiler; format strings such as "Linux version %s" do not match.
                if (m.Success && text.Contains('(')) return text.Trim();
                int next = bytes[(at + 1)..].IndexOf("Linux version "u8);
                at = next < 0 ? -1 : at + 1 + next;
            }
        }
        return null;
    }

    /// <summary>The kernel version from the banner as (major, minor, patch), or null.</summary>
    public (int Major, int Minor, int Patch)? Version
    {
        get
        {
            if (Banner == null) return null;
            // Debian's release string is the ABI ("6.1.0-53-amd64"); the upstream version follows the last "Debian "
            // (the first one names the compiler's package: "gcc-12 (Debian 12.2.0-14)").
            var debian = DebianVersionPattern().Matches(Banner).LastOrDefault() ?? System.Text.RegularExpressions.Match.Empty;
            if (debian.Success) return (int.Parse(debian.Groups[1].Value), int.Parse(debian.Groups[2].Value), int.Parse(debian.Groups[3].Value));
            var m = BannerPattern().Match(Banner);
            return (int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value), m.Groups[3].Success ? int.Parse(m.Groups[3].Value) : 0);
        }
    }

    string? ReadModuleName()
    {
        var modinfo = Elf.Section(".modinfo");
        if (modinfo == null || !modinfo.HasFileBytes) return null;
        foreach (var entry in Encoding.ASCII.GetString(Elf.SectionBytes(modinfo)).Split('\0'))
            if (entry.StartsWith("name=", StringComparison.Ordinal)) return entry[5..];
        return null;
    }

    static string ModuleNameFromPath(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        foreach (var suffix in new[] { ".xz", ".zst", ".gz" })
            if (name.EndsWith(suffix, StringComparison.Ordinal)) name = name[..^suffix.Length];
        if (name.EndsWith(".ko", StringComparison.Ordinal)) name = name[..^3];
        return name.Replace('-', '_');
    }

    /// <summary>A one-line description: kind, compression, version.</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        sb.Append(Kind switch
        {
            ImageKind.BzImage => $"bzImage (boot protocol {BzImageHeader!.ProtocolText}, {BzImage.Compression.Name(Compression)} payload)",
            ImageKind.Module => Compression == CompressionFormat.None ? "kernel module" : $"kernel module ({BzImage.Compression.Name(Compression)})",
            ImageKind.Object => "unlinked kernel object (such as an LTO vmlinux.o)",
            _ => "ELF kernel image",
        });
        if (Version is { } v) sb.Append($", Linux {v.Major}.{v.Minor}.{v.Patch}");
        return sb.ToString();
    }

    public void Dispose()
    {
        ElfImage.Dispose();
        Container?.Dispose();
    }
}
