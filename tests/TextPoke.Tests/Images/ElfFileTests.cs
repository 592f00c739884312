using System.Buffers.Binary;
using System.Text;
using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Images;

public class ElfFileTests
{
    [Trait("Tier", "full")]
    [Fact]
    public void DebianPayload_HasSegmentsAndThePvhNote()
    {
        using var image = KernelImage.Open(DebianKernels.GoldenVmlinuz);
        Assert.Contains(image.Elf.Segments, s => s.Type == Images_PT_LOAD && s.VirtualAddress == 0xffffffff81000000);
        // XEN_ELFNOTE_PHYS32_ENTRY (18): the PVH entry point QEMU uses to boot the ELF directly.
        var pvh = Assert.Single(image.Elf.Notes(), n => n.Owner == "Xen" && n.Type == 18);
        Assert.Equal(8, pvh.DescriptorSize);
        Assert.Equal(0x1000850u, image.ElfImage.U32(pvh.DescriptorOffset));
        Assert.True(image.Elf.ElfEnd < image.ElfImage.Length, "the relocation list is appended after the ELF");
        Assert.Equal(0x200000, ImageWriter.FileOffset(image, 0xffffffff81000000));
    }

    const uint Images_PT_LOAD = 1;

    [Fact]
    public void LargeRelocatableObject_OnlyTheTouchedBytesAreRelocated()
    {
        var source = new StringBuilder("#include \"jump.inc\"\n");
        for (int i = 0; i < 3000; i++)
        {
            source.Append($"\t.section .text.f{i}, \"ax\"\n\tFUNC f{i}\n\tcall f{(i + 1) % 3000}\n");
            source.Append($"\tlea f{(i + 7) % 3000}(%rip), %rax\n\tret\n\tENDFUNC f{i}\n");
        }
        source.Append("\t.section .text.site, \"ax\"\n\tFUNC site\n1:\tNOP2\n\tcall f5\n9:\tret\n\tENDFUNC site\n");
        source.Append("\tJUMP_ENTRY 1b, 9b, k, 2\n\tBSS_KEY k\n\t.section .modinfo, \"a\"\n\t.asciz \"name=big\"\n");
        var dir = Repo.Scratch("big");
        File.Copy(Path.Combine(Repo.Fixtures, "jump.inc"), Path.Combine(dir, "jump.inc"));
        File.WriteAllText(Path.Combine(dir, "big.S"), source.ToString());
        Tool.Run("gcc", ["-c", "-o", "big.o", "big.S"], dir);
        using var image = KernelImage.Open(Path.Combine(dir, "big.o"));
        Assert.True(image.Elf.Sections.Count > 6000);
        var report = CheckRunner.Run(image, ImageSymbols.Load(image, lookBeside: false));
        Assert.True(report.Clean);
        Assert.Equal(1, report.Jump!.Stats!.Nop);
        // __jump_table is relocated whole; the text is read through relocation windows.
        Assert.Equal(1, image.RelocatedSectionCount);
    }

    [Fact]
    public void RelocationWindow_AgreesWithWholeSectionRelocation()
    {
        using var image = KernelImage.Open(Fixtures.Build("reloc-types"));
        foreach (var section in image.Elf.Sections.Where(s => s.IsAllocated && s.HasFileBytes && s.Size > 0))
        {
            var windowed = new byte[section.Size];
            for (ulong at = 0; at < section.Size; at += 3)
            {
                var chunk = new byte[Math.Min(3, (int)(section.Size - at))];
                image.Read(image.SectionAddress(section) + at, chunk);
                chunk.CopyTo(windowed, (int)at);
            }
            Assert.Equal(image.SectionContents(section).ToArray(), windowed);
        }
    }

    /// <summary>A banner whose numbers overflow (a hostile image) is no banner, and a Debian version that overflows is ignored.</summary>
    [Theory]
    [InlineData("Linux version 99999999999.1.1 (gcc) #1 SMP", null)]
    [InlineData("Linux version 6.1.0-53-amd64 (gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP Debian 99999999999.1.1-1 (2024-01-01)", "6.1.0")]
    [InlineData("Linux version 6.1.0-53-amd64 (gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP Debian 6.1.187-1 (2025-01-01)", "6.1.187")]
    public void Banner_WithOverlongNumbers_NeverThrows(string banner, string? version)
    {
        var rodata = Encoding.ASCII.GetBytes(banner + "\n\0").Concat(new byte[4096]).ToArray();
        var elf = new TextPoke.Images.Elf.ElfBuilder()
            .AddSection(".text", 0xffffffff81000000, new byte[64], TextPoke.Images.Elf.ElfConstants.SHF_ALLOC | TextPoke.Images.Elf.ElfConstants.SHF_EXECINSTR)
            .AddSection(".rodata", 0xffffffff82000000, rodata, TextPoke.Images.Elf.ElfConstants.SHF_ALLOC, 4096)
            .Build();
        using var image = KernelImage.FromElfBytes("banner", elf);
        Assert.Equal(version, image.Version is var (a, b, c) ? $"{a}.{b}.{c}" : null);
    }
}
