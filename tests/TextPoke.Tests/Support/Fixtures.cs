using System.Collections.Concurrent;

namespace TextPoke.Tests.Support;

/// <summary>
/// Assembles and links the assembly fixtures in tests/fixtures with the machine's gcc and ld, once per test run.
/// The first line of a fixture says how it is linked: /* link: kernel.lds */ (default), /* link: section.lds */,
/// or /* link: none */ (an ET_REL object); ", debug" after the script assembles with -g (DWARF line information).
/// </summary>
public static class Fixtures
{
    static readonly ConcurrentDictionary<string, Lazy<string>> Built = new();
    static readonly Lazy<string> Output = new(() => Repo.Scratch("fixtures"));

    public static string Build(string name) => Built.GetOrAdd(name, n => new Lazy<string>(() => BuildNow(n))).Value;

    /// <summary>
    /// The fixture linked as a PIE kernel by lld (ET_DYN; absolute fields become R_X86_64_RELATIVE relocations in
    /// .rela.dyn with zeros in place), the way toolchain tests link small kernels.
    /// </summary>
    public static string BuildPie(string name) => Built.GetOrAdd(name + "#pie", _ => new Lazy<string>(() =>
    {
        var source = Path.Combine(Repo.Fixtures, name + ".S");
        var obj = Path.Combine(Output.Value, name + "-pie.o");
        Tool.Run("gcc", ["-c", "-o", obj, source], Repo.Fixtures);
        var elf = Path.Combine(Output.Value, name + ".pie");
        Tool.Run("ld.lld-19", ["-pie", "--no-dynamic-linker", "-nostdlib", "-z", "notext", "-T", Path.Combine(Repo.Fixtures, "kernel.lds"), "-o", elf,
            obj], Repo.Fixtures);
        return elf;
    })).Value;

    static string BuildNow(string name)
    {
        var source = Path.Combine(Repo.Fixtures, name + ".S");
        var first = File.ReadLines(source).First();
        string link = first.StartsWith("/* link: ", StringComparison.Ordinal) ? first["/* link: ".Length..].TrimEnd(' ', '*', '/') : "kernel.lds";
        bool debug = link.EndsWith(", debug", StringComparison.Ordinal);
        if (debug) link = link[..^", debug".Length];
        var obj = Path.Combine(Output.Value, name + ".o");
        Tool.Run("gcc", debug ? ["-g", "-c", "-o", obj, source] : ["-c", "-o", obj, source], Repo.Fixtures);
        if (link == "none") return obj;
        var elf = Path.Combine(Output.Value, name + ".elf");
        Tool.Run("ld", ["-static", "-nostdlib", "--no-warn-rwx-segments", "-z", "noexecstack", "-T", Path.Combine(Repo.Fixtures, link), "-o", elf, obj],
            Repo.Fixtures);
        return elf;
    }
}
