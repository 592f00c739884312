using System.Buffers.Binary;
using TextPoke.Emulation;
using TextPoke.Images;
using TextPoke.Live;
using TextPoke.Symbols;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Live;

/// <summary>
/// verify on a fixture kernel whose "live memory" is its own image after the emulated boot, then changed the ways a
/// running kernel changes: a key flipped with its sites, a site flipped without its key, a planted hook.
/// </summary>
public class TextVerifierTests
{
    sealed class Live : IDisposable
    {
        public required KernelImage Image;
        public required ImageSymbols Symbols;
        public required Dictionary<ulong, byte[]> Sections;
        public void Dispose() => Image.Dispose();

        public ulong Address(string symbol, int offset = 0) =>
            Symbols.TryFind(symbol, out ulong a, out _) ? a + (ulong)offset : throw new InvalidOperationException(symbol);

        public void Write(ulong address, params byte[] bytes)
        {
            foreach (var (start, data) in Sections)
                if (address >= start && address - start < (ulong)data.Length) { bytes.CopyTo(data, (int)(address - start)); return; }
            throw new InvalidOperationException($"{address:x} is in no section");
        }

        public MemorySnapshot Snapshot()
        {
            var s = new MemorySnapshot("test memory");
            foreach (var (start, data) in Sections) s.Add(start, (byte[])data.Clone());
            return s;
        }

        public VerifyResult Verify() => TextVerifier.Verify(Image, Symbols, Snapshot(), cpu: CpuModel.Parse("none", CpuFeatureNames.Load(Image, Symbols)));
    }

    // Live memory as the image after the emulated boot: every allocated section at its address (NOBITS as zeros).
    static Live Boot(string fixture)
    {
        var image = KernelImage.Open(Fixtures.Build(fixture));
        var symbols = ImageSymbols.Load(image, lookBeside: false);
        var names = CpuFeatureNames.Load(image, symbols);
        var boot = BootPatcher.Run(image, symbols, CpuModel.Parse("none", names), names, keepGoing: true);
        var sections = new Dictionary<ulong, byte[]>();
        foreach (var s in image.Elf.Sections.Where(s => s.IsAllocated && s.Size > 0))
        {
            var bytes = new byte[s.Size];
            boot.Read(image.SectionAddress(s), bytes);
            sections[image.SectionAddress(s)] = bytes;
        }
        return new Live { Image = image, Symbols = symbols, Sections = sections };
    }

    [Fact]
    public void UnchangedMemory_HasNoDifferingRange()
    {
        using var live = Boot("jump-clean");
        var v = live.Verify();
        Assert.True(v.BytesCompared > 0);
        Assert.Empty(v.Ranges);
    }

    [Fact]
    public void KeyEnabledWithItsSites_IsExplainedByTheKey()
    {
        using var live = Boot("jump-clean");
        // static_branch_unlikely(&frontswap_enabled_key) at swap_writepage+0x1 (NOP2) and +0x6 (NOP5), both aimed at label 9.
        ulong target = live.Address("swap_writepage", 0x1c);
        ulong site1 = live.Address("swap_writepage", 1), site2 = live.Address("swap_writepage", 6);
        live.Write(site1, 0xeb, (byte)(target - site1 - 2));
        live.Write(site2, [0xe9, .. BitConverter.GetBytes((int)(target - site2 - 5))]);
        live.Write(live.Address("frontswap_enabled_key"), 1, 0, 0, 0);
        var v = live.Verify();
        Assert.Equal(2, v.Ranges.Count);
        Assert.All(v.Ranges, r => Assert.Equal((RangeVerdict.Explained, "jump_label"), (r.Verdict, r.Mechanism)));
        Assert.All(v.Ranges, r => Assert.StartsWith("frontswap_enabled_key is enabled (enabled=1)", r.Detail));
        Assert.Equal(0, v.Unexplained + v.Inconsistent);
    }

    [Fact]
    public void SiteFlippedWithoutItsKey_IsInconsistent()
    {
        using var live = Boot("jump-clean");
        ulong target = live.Address("swap_writepage", 0x1c), site = live.Address("swap_writepage", 1);
        live.Write(site, 0xeb, (byte)(target - site - 2));
        var r = Assert.Single(live.Verify().Ranges);
        Assert.Equal(RangeVerdict.Inconsistent, r.Verdict);
        Assert.Equal("swap_writepage+0x1/0x23", r.Location);
        Assert.Contains("frontswap_enabled_key is disabled (enabled=0)", r.Detail);
        Assert.Contains("flipped without its key", r.Detail);
    }

    [Fact]
    public void PlantedHook_IsUnexplained_AndNamedWithBothDisassemblies()
    {
        using var live = Boot("jump-clean");
        live.Write(live.Address("swap_writepage", 0x3), 0xcc, 0xcc, 0xcc);  // over mov %rdi,%rbx: no patch site there
        var r = Assert.Single(live.Verify().Ranges);
        Assert.Equal(RangeVerdict.Unexplained, r.Verdict);
        Assert.Equal("swap_writepage+0x3/0x23", r.Location);
        Assert.Equal(3, r.Length);
        Assert.Contains(r.LiveCode, l => l.EndsWith("int3"));
        Assert.Contains(r.ExpectedCode, l => l.Contains("mov %rdi,%rbx"));
    }

    [Fact]
    public void SiteHoldingNeitherState_IsUnexplained()
    {
        using var live = Boot("jump-clean");
        live.Write(live.Address("swap_writepage", 6), 0x0f, 0x0b, 0x90, 0x90, 0x90); // ud2 in a 5-byte jump site
        var r = Assert.Single(live.Verify().Ranges);
        Assert.Equal((RangeVerdict.Unexplained, "jump_label"), (r.Verdict, r.Mechanism));
        Assert.Contains("neither its JMP nor a NOP", r.Detail);
    }

    /// <summary>verify from a core file laid out like /proc/kcore: exit 0 untouched, 1 with a hook, 2 for a file that is no core.</summary>
    [Fact]
    public void VerifyCommand_OnACoreFile_ExitCodes()
    {
        using var live = Boot("jump-clean");
        var dir = Repo.Scratch("verify-core");
        string clean = Path.Combine(dir, "clean.core"), hooked = Path.Combine(dir, "hooked.core");
        File.WriteAllBytes(clean, Core(live.Sections));
        var ok = CliRun.Run("verify", live.Image.Path, "--kcore", clean, "--cpu", "none");
        Assert.Equal(0, ok.Exit);
        Assert.Contains("result: all 0 differing ranges explained", ok.Out);

        live.Write(live.Address("swap_writepage", 0x3), 0xcc);
        File.WriteAllBytes(hooked, Core(live.Sections));
        var bad = CliRun.Run("verify", live.Image.Path, "--kcore", hooked, "--cpu", "none", "--json");
        Assert.Equal(1, bad.Exit);
        var json = System.Text.Json.JsonDocument.Parse(bad.Out).RootElement;
        Assert.Equal(1, json.GetProperty("unexplained").GetInt32());
        Assert.Equal("swap_writepage+0x3/0x23", json.GetProperty("ranges")[0].GetProperty("location").GetString());

        var notCore = CliRun.Run("verify", live.Image.Path, "--kcore", live.Image.Path, "--cpu", "none");
        Assert.Equal(2, notCore.Exit);
        Assert.Equal($"textpoke: {live.Image.Path}: an ELF file, but not a core file (e_type is not ET_CORE)", notCore.Err.Trim());
        var truncated = Path.Combine(dir, "truncated.core");
        File.WriteAllBytes(truncated, Core(live.Sections)[..100]);
        var cut = CliRun.Run("verify", live.Image.Path, "--kcore", truncated, "--cpu", "none");
        Assert.Equal(2, cut.Exit);
        Assert.Contains("truncated", cut.Err);
    }

    /// <summary>An ELF64 core with one PT_LOAD per region, at its kernel virtual address.</summary>
    static byte[] Core(Dictionary<ulong, byte[]> regions)
    {
        var list = regions.OrderBy(r => r.Key).ToList();
        int headers = 64 + 56 * list.Count;
        var bytes = new byte[headers + list.Sum(r => r.Value.Length)];
        "\x7f"u8.CopyTo(bytes);
        "ELF"u8.CopyTo(bytes.AsSpan(1));
        bytes[4] = 2; bytes[5] = 1; bytes[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(16), 4);   // ET_CORE
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(18), 62);  // EM_X86_64
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(32), 64);  // e_phoff
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(52), 64);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(54), 56);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(56), (ushort)list.Count);
        long offset = headers;
        for (int i = 0; i < list.Count; i++)
        {
            var ph = bytes.AsSpan(64 + 56 * i, 56);
            BinaryPrimitives.WriteUInt32LittleEndian(ph, 1);
            BinaryPrimitives.WriteUInt64LittleEndian(ph[8..], (ulong)offset);
            BinaryPrimitives.WriteUInt64LittleEndian(ph[16..], list[i].Key);
            BinaryPrimitives.WriteUInt64LittleEndian(ph[32..], (ulong)list[i].Value.Length);
            BinaryPrimitives.WriteUInt64LittleEndian(ph[40..], (ulong)list[i].Value.Length);
            list[i].Value.CopyTo(bytes, offset);
            offset += list[i].Value.Length;
        }
        return bytes;
    }
}
