using TextPoke.Dwarf;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Dwarf;

/// <summary>
/// The DWARF reader against binutils' addr2line -i on the same objects: tests/fixtures/dwarf/inline.c (inlining two
/// levels deep, one level from a header, a cold function) built by gcc at DWARF 4 and 5, by clang (DWARF 5 with strx,
/// addrx and rnglistx forms), and without .debug_aranges (the reader then indexes the units' own ranges).
/// </summary>
public class DwarfTests
{
    static string Build(string compiler, string dwarf, bool stripAranges = false)
    {
        var dir = Repo.Scratch("dwarf");
        var source = Path.Combine(Repo.Fixtures, "dwarf", "inline.c");
        var elf = Path.Combine(dir, $"inline-{compiler}-{dwarf}.elf");
        Tool.Run(compiler, ["-O2", "-g", $"-gdwarf-{dwarf}", "-fno-pie", "-no-pie", "-nostdlib", "-static", "-Wl,-e,entry", "-o", elf, source], dir);
        if (stripAranges) Tool.Run("objcopy", ["--remove-section=.debug_aranges", elf], dir);
        return elf;
    }

    /// <summary>addr2line -i -f -a for every byte of .text: address -> [(function, file:line)].</summary>
    static Dictionary<ulong, List<(string Function, string Location)>> Addr2Line(string tool, string elf, ulong start, ulong end)
    {
        var addresses = new List<string>();
        for (ulong a = start; a < end; a++) addresses.Add($"0x{a:x}");
        var output = Tool.Run(tool, ["-i", "-f", "-a", "-e", elf, .. addresses]);
        var result = new Dictionary<ulong, List<(string, string)>>();
        List<(string, string)>? current = null;
        var lines = output.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].StartsWith("0x", StringComparison.Ordinal)) { result[Convert.ToUInt64(lines[i][2..], 16)] = current = []; continue; }
            if (lines[i].Length == 0 || current == null) continue;
            // llvm-addr2line prints line 0 as ":0" where binutils prints ":?".
            var location = lines[++i];
            current.Add((lines[i - 1], location.EndsWith(":0") && !location.StartsWith("??") ? location[..^1] + "?" : location));
        }
        return result;
    }

    /// <remarks>
    /// Clang's DWARF 5 is checked against llvm-addr2line: binutils 2.40 loses inlined subroutines whose ranges are
    /// DW_FORM_rnglistx (it reports the caller's line without the inline frame). llvm-addr2line names the outermost
    /// function from the symbol table, so for it only the inner names and all locations are compared.
    /// </remarks>
    [Theory]
    [InlineData("gcc", "4", false, "addr2line")]
    [InlineData("gcc", "5", false, "addr2line")]
    [InlineData("gcc", "5", true, "addr2line")]
    [InlineData("clang-19", "5", false, "llvm-addr2line-19")]
    [InlineData("clang-19", "4", true, "addr2line")]
    public void EveryTextAddress_SameAnswerAsAddr2Line(string compiler, string dwarf, bool stripAranges, string reference)
    {
        var elf = Build(compiler, dwarf, stripAranges);
        using var image = KernelImage.Open(elf);
        var text = image.Elf.Section(".text")!;
        ulong start = image.SectionAddress(text), end = start + text.Size;
        var expected = Addr2Line(reference, elf, start, end);
        bool llvm = reference.StartsWith("llvm", StringComparison.Ordinal);
        var dwarfInfo = DwarfInfo.Open(image)!;
        var symbols = ImageSymbols.Load(image, lookBeside: false);
        int inlined = 0, files = 0, outside = 0;
        var seenFiles = new HashSet<string>();
        for (ulong a = start; a < end; a++)
        {
            // binutils names functions from DWARF and falls back to the symbol table only where DWARF has none.
            var ours = dwarfInfo.Lookup(a).Select(f => (Function: f.Function ?? symbols.Names.FunctionAt(a) ?? "??", f.Location)).ToList();
            // Padding between functions, outside every unit: binutils guesses a file from STT_FILE symbols; not DWARF.
            if (ours.Count == 0) { outside++; continue; }
            if (llvm && expected[a].Count == ours.Count && ours.Count > 0) expected[a][^1] = (ours[^1].Function, expected[a][^1].Location);
            Assert.True(expected[a].SequenceEqual(ours),
                $"0x{a:x}: {reference} says [{string.Join(" | ", expected[a])}], textpoke [{string.Join(" | ", ours)}]");
            if (ours.Count > 1) inlined++;
            foreach (var (_, location) in ours) seenFiles.Add(location.Split(':')[0]);
        }
        files = seenFiles.Count;
        Assert.True(outside * 20 < (int)(end - start), $"{outside} of {end - start} addresses outside every unit");
        // The fixture exercises what it is meant to: inline chains, and two source files.
        Assert.True(inlined > 20, $"only {inlined} addresses in inlined code");
        Assert.True(files >= 2, string.Join(", ", seenFiles));
    }

    [Fact]
    public void InlineChain_NamesEachLevelWithItsCallSite()
    {
        var elf = Build("gcc", "5");
        using var image = KernelImage.Open(elf);
        var dwarfInfo = DwarfInfo.Open(image)!;
        var text = image.Elf.Section(".text")!;
        ulong start = image.SectionAddress(text);
        // Somewhere in outer() the code of clamp_add, inlined into twice_clamped, into middle, into outer.
        var chains = Enumerable.Range(0, (int)text.Size).Select(i => dwarfInfo.Lookup(start + (ulong)i)).ToList();
        var deepest = chains.OrderByDescending(c => c.Count).First();
        Assert.Equal(["clamp_add", "twice_clamped", "middle"], deepest.Take(3).Select(f => f.Function));
        Assert.EndsWith("helpers.h", deepest[0].File);
        Assert.EndsWith("helpers.h", deepest[1].File);   // clamp_add is called from twice_clamped, in the header
        Assert.EndsWith("inline.c", deepest[2].File);    // twice_clamped is called from middle
        Assert.Equal(15, deepest[2].Line);
    }

    [Fact]
    public void NoDebugInfo_IsNull_AndCorruptDebugInfo_NeverThrows()
    {
        using (var stripped = KernelImage.Open(Fixtures.Build("tables-clean"))) Assert.Null(DwarfInfo.Open(stripped));
        var elf = File.ReadAllBytes(Build("gcc", "5"));
        var random = new Random(6);
        for (int round = 0; round < 200; round++)
        {
            var copy = (byte[])elf.Clone();
            using (var probe = KernelImage.FromElfBytes("probe", copy))
            {
                foreach (var name in new[] { ".debug_info", ".debug_line", ".debug_abbrev", ".debug_rnglists", ".debug_aranges" })
                {
                    var s = probe.Elf.Section(name)!;
                    for (int k = 0; k < 4; k++) copy[(long)s.Offset + random.NextInt64((long)s.Size)] = (byte)random.Next(256);
                }
            }
            using var image = KernelImage.FromElfBytes("corrupt", copy);
            var dwarfInfo = DwarfInfo.Open(image)!;
            var text = image.Elf.Section(".text")!;
            for (ulong a = 0; a < text.Size; a += 7) dwarfInfo.Lookup(image.SectionAddress(text) + a);
        }
    }
}
