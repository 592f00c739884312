using System.Globalization;
using TextPoke.Images;

namespace TextPoke.Symbols;

/// <summary>Reads System.map ("address type name" per line), recognising Debian's one-line stub.</summary>
public static class SystemMap
{
    /// <summary>Debian's image package ships this instead of the real map.</summary>
    public const string StubMarker = "The real System.map is in";

    public static bool IsStub(string path)
    {
        try
        {
            using var reader = new StreamReader(path);
            var first = reader.ReadLine();
            return first != null && first.Contains(StubMarker, StringComparison.Ordinal) && reader.ReadLine() == null;
        }
        catch (IOException) { return false; }
    }

    /// <summary>Parses a System.map. Throws <see cref="ImageFormatException"/> naming the file and line for bad input.</summary>
    public static SymbolEntry[] Read(string path)
    {
        string[] lines;
        try { lines = File.ReadAllLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageFormatException(path, $"cannot read System.map: {e.Message}");
        }
        return Parse(path, lines);
    }

    /// <summary>Parses the lines of a System.map named <paramref name="path"/> in messages.</summary>
    public static SymbolEntry[] Parse(string path, IReadOnlyList<string> lines)
    {
        if (lines.Count == 1 && lines[0].Contains(StubMarker, StringComparison.Ordinal))
            throw new ImageFormatException(path,
                "this System.map is Debian's one-line stub (\"The real System.map is in the linux-image-<version>-dbg package\"), not a symbol map");
        var entries = new List<SymbolEntry>(lines.Count);
        for (int i = 0; i < lines.Count; i++)
        {
            var line = lines[i];
            if (line.Length == 0) continue;
            var parts = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 3 || parts[1].Length != 1 || !ulong.TryParse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong address))
                throw new ImageFormatException(path, $"line {i + 1} is not \"address type name\": not a System.map");
            char type = parts[1][0];
            if (SymbolTable.IgnoredByKallsyms(parts[2], type)) continue;
            entries.Add(new SymbolEntry(address, parts[2], type));
        }
        if (entries.Count == 0) throw new ImageFormatException(path, "System.map holds no symbols");
        return SymbolTable.Sort(entries);
    }

    /// <summary>Looks for System.map next to an image: System.map, System.map-VER for vmlinuz-VER / vmlinux-VER.</summary>
    public static string? FindBeside(string imagePath)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(imagePath)) ?? ".";
        var name = Path.GetFileName(imagePath);
        var candidates = new List<string>();
        foreach (var prefix in new[] { "vmlinuz-", "vmlinux-", "bzImage-" })
            if (name.StartsWith(prefix, StringComparison.Ordinal)) candidates.Add(Path.Combine(dir, "System.map-" + name[prefix.Length..]));
        candidates.Add(Path.Combine(dir, "System.map"));
        return candidates.FirstOrDefault(File.Exists);
    }
}
