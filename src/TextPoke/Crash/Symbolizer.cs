using System.Globalization;
using System.Text.RegularExpressions;
using TextPoke.Dwarf;
using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Crash;

/// <summary>A frame resolved to source: the inline chain innermost first (addr2line -i), and what did not add up.</summary>
public sealed record SymbolizedFrame(ulong Address, IReadOnlyList<SourceFrame> Chain, string? Problem)
{
    public SourceFrame? Innermost => Chain.Count > 0 ? Chain[0] : null;
}

/// <summary>
/// Resolves "func+0xoff/0xsize [module]" to file:line with inline chains from a vmlinux's DWARF (and from modules' own
/// DWARF below a directory): the function's address comes from the image's symbols — the one whose size matches the
/// /0xsize when a name is not unique — and a size that matches no symbol of that name says the vmlinux is the wrong one.
/// Paths lose the build directory, found as decode_stacktrace.sh's "auto" does: the directory of init/main.c.
/// </summary>
public sealed partial class Symbolizer : IDisposable
{
    sealed record Loaded(KernelImage Image, ImageSymbols Symbols, DwarfInfo? Dwarf);

    readonly Loaded _vmlinux;
    readonly string? _modulesDir;
    readonly Dictionary<string, Loaded?> _modules = new(StringComparer.Ordinal);
    readonly Dictionary<string, string>? _moduleFiles;
    string? _basePath;
    bool _baseKnown;

    public string VmlinuxPath => _vmlinux.Image.Path;
    /// <summary>The vmlinux has DWARF (an unstripped vmlinux, e.g. from a -dbg package).</summary>
    public bool HasDwarf => _vmlinux.Dwarf != null;
    public KernelImage Image => _vmlinux.Image;
    public ImageSymbols Symbols => _vmlinux.Symbols;

    Symbolizer(Loaded vmlinux, string? modulesDir)
    {
        _vmlinux = vmlinux;
        _modulesDir = modulesDir;
        if (modulesDir != null)
        {
            _moduleFiles = new(StringComparer.Ordinal);
            foreach (var file in Directory.EnumerateFiles(modulesDir, "*.ko*", new EnumerationOptions { RecurseSubdirectories = true,
                IgnoreInaccessible = true }))
            {
                var name = Path.GetFileName(file);
                int ko = name.IndexOf(".ko", StringComparison.Ordinal);
                if (ko <= 0) continue;
                _moduleFiles.TryAdd(name[..ko].Replace('-', '_'), file); // the kernel prints module names with '_'
            }
        }
    }

    public static Symbolizer Open(string vmlinuxPath, string? modulesDir = null)
    {
        if (modulesDir != null && !Directory.Exists(modulesDir)) throw new ImageFormatException(modulesDir, "not a directory of modules");
        var image = KernelImage.Open(vmlinuxPath);
        try
        {
            var symbols = ImageSymbols.Load(image, lookBeside: false);
            return new Symbolizer(new Loaded(image, symbols, image.Kind == ImageKind.Vmlinux ? DwarfInfo.Open(image) : null), modulesDir);
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <summary>The build directory prefix stripped from paths (the directory of kernel_init's init/main.c).</summary>
    public string? BasePath
    {
        get
        {
            if (_baseKnown) return _basePath;
            _baseKnown = true;
            if (_vmlinux.Dwarf != null && _vmlinux.Symbols.TryFind("kernel_init", out ulong at, out _)
                && _vmlinux.Dwarf.Lookup(at) is { Count: > 0 } chain && chain[^1].File is { } file && file.EndsWith("init/main.c", StringComparison.Ordinal))
                _basePath = file[..^"init/main.c".Length];
            return _basePath;
        }
    }

    public string Relative(string path) => BasePath is { Length: > 0 } b && path.StartsWith(b, StringComparison.Ordinal) ? path[b.Length..] : path;

    /// <summary>Resolves one frame; null when its function is in neither the vmlinux nor a module found.</summary>
    public SymbolizedFrame? Resolve(string function, ulong offset, ulong size, string? module)
    {
        var loaded = module == null ? _vmlinux : Module(module);
        if (loaded == null) return null;
        var candidates = new List<(ulong Address, ulong Size)>();
        // Names as %pS prints them (kallsyms when the image has them), else the ELF symbol table.
        foreach (var table in new[] { loaded.Symbols.Names, loaded.Symbols.ElfSymtab })
        {
            if (table == null || candidates.Count > 0) continue;
            foreach (var entry in table.All(function))
                if (table.Lookup(entry.Address) is { Offset: 0 } hit) candidates.Add((entry.Address, hit.Size));
        }
        if (candidates.Count == 0) return null;
        var match = candidates.FirstOrDefault(c => c.Size == size);
        string? problem = null;
        if (match == default)
        {
            match = candidates[0];
            problem = $"{function} is 0x{match.Size:x} bytes in {loaded.Image.Path}, the log says 0x{size:x}: this is probably not the " +
                $"{(module == null ? "vmlinux" : "module")} that crashed";
        }
        ulong address = match.Address + offset;
        var chain = loaded.Dwarf?.Lookup(address, a => loaded.Symbols.Names.Lookup(a) is { } h ? h.Symbol.Name : null) ?? [];
        chain = chain.Select(f => f.File == null ? f : f with { File = Relative(f.File) }).ToList();
        return new SymbolizedFrame(address, chain, problem);
    }

    /// <summary>Resolves "func+0xoff/0xsize" text (a RIP line's location).</summary>
    public SymbolizedFrame? Resolve(string location)
    {
        var m = Location().Match(location);
        return m.Success ? Resolve(m.Groups[1].Value, ulong.Parse(m.Groups[2].Value, NumberStyles.HexNumber), ulong.Parse(m.Groups[3].Value,
            NumberStyles.HexNumber),
            m.Groups[4].Success ? m.Groups[4].Value : null) : null;
    }

    [GeneratedRegex(@"^([A-Za-z0-9_.$]+)\+0x([0-9a-f]{1,16})/0x([0-9a-f]{1,16})(?: \[([A-Za-z0-9_\-]+)\])?")]
    private static partial Regex Location();

    [GeneratedRegex(@"Kernel Offset: (0x[0-9a-f]{1,16}|disabled)")]
    private static partial Regex KernelOffsetLine();

    /// <summary>
    /// The KASLR offset: from "Kernel Offset: 0x... from 0xffffffff81000000", else from frames that print their
    /// run-time address next to func+off (4.x logs) — every such frame must agree. Null when the log does not tell.
    /// </summary>
    public (ulong Offset, string Evidence)? KaslrOffset(IEnumerable<string> log, IEnumerable<CrashFrame> frames)
    {
        foreach (var line in log)
        {
            var m = KernelOffsetLine().Match(line);
            if (!m.Success) continue;
            return m.Groups[1].Value == "disabled" ? (0UL, "the log says \"Kernel Offset: disabled\"")
                : (ulong.Parse(m.Groups[1].Value[2..], NumberStyles.HexNumber), "the log's \"Kernel Offset:\" line");
        }
        var offsets = new List<ulong>();
        foreach (var f in frames)
        {
            if (f.Address is not { } runtime || f.Module != null) continue;
            if (Resolve(f.Function, f.Offset, f.Size, null) is { Problem: null } r) offsets.Add(runtime - r.Address);
        }
        if (offsets.Count == 0) return null;
        var common = offsets.GroupBy(o => o).OrderByDescending(g => g.Count()).First();
        return (common.Key, $"{common.Count()} of {offsets.Count} frames with addresses");
    }

    Loaded? Module(string name)
    {
        if (_modules.TryGetValue(name, out var cached)) return cached;
        Loaded? loaded = null;
        if (_moduleFiles != null && _moduleFiles.TryGetValue(name.Replace('-', '_'), out var file))
        {
            KernelImage? image = null;
            try
            {
                image = KernelImage.Open(file);
                loaded = new Loaded(image, ImageSymbols.Load(image, lookBeside: false), DwarfInfo.Open(image));
            }
            catch (ImageFormatException)
            {
                image?.Dispose();
            }
        }
        _modules[name] = loaded;
        return loaded;
    }

    public void Dispose()
    {
        _vmlinux.Image.Dispose();
        foreach (var m in _modules.Values) m?.Image.Dispose();
    }
}
