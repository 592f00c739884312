using System.Buffers.Binary;
using TextPoke.Images;
using TextPoke.Images.Elf;
using TextPoke.Symbols;
using TextPoke.X86;

namespace TextPoke.Checks;

/// <summary>One change to the image: bytes at an address, or a relocation neutralised (ET_REL).</summary>
public sealed record Repair(ulong Address, string Location, byte[] Before, byte[] After, string Reason, long FileOffset, string? RelocationNote = null)
{
    public const string RelocationReason = "relocation";

    /// <summary>A repair of the relocation entry behind a site (unlinked objects), not of the site's bytes.</summary>
    public bool IsRelocation => Reason == RelocationReason;
}

/// <summary>A broken site textpoke will not touch, and why.</summary>
public sealed record Refusal(ulong? Address, string? Location, string Rule, string Reason);

/// <summary>
/// Computes the repairs that put every jump-label site into its correct initial state — a NOP of the same length where
/// the key's state says NOP (what objtool should have done), the JMP to the entry's target where it says JMP — and, in
/// unlinked objects, sets the site's relocation to R_X86_64_NONE as objtool does. Sites whose instruction has the wrong
/// length, does not decode, jumps elsewhere, or whose key state is unknown are refused.
/// </summary>
public static class JumpLabelRepair
{
    const int RelaSize = 24;

    public static (List<Repair> Repairs, List<Refusal> Refusals) Plan(KernelImage image, ImageSymbols symbols, JumpLabelReport report)
    {
        var repairs = new List<Repair>();
        var refusals = new List<Refusal>();
        var byAddress = report.Sites.GroupBy(s => s.Entry.Code).ToDictionary(g => g.Key, g => g.First());
        foreach (var f in report.Findings)
        {
            if (f.Rule is not ("jump.initial-state" or "jump.objtool-not-run" or "jump.live-relocation") || f.Address is not { } address
                || !byAddress.TryGetValue(address, out var site))
            {
                refusals.Add(new Refusal(f.Address, f.Location, f.Rule, RefusalReason(f.Rule)));
                continue;
            }
            string where = symbols.Names.FormatPS(address, image.ModuleName);
            var section = image.SectionAt(address)!;
            long fileOffset = ImageWriter.FileOffset(image, address, site.Size);
            var raw = image.Elf.SectionBytes(section).Slice((int)(address - image.SectionAddress(section)), site.Size).ToArray();
            string? relocationNote = null;
            long relocationOffset = -1;
            if (image.RelocationAt(section, address - image.SectionAddress(section) + 1) is { } rel
                && rel.Type is ElfConstants.R_X86_64_PC32 or ElfConstants.R_X86_64_PLT32)
            {
                relocationOffset = RelaEntryOffset(image, section, address - image.SectionAddress(section) + 1);
                relocationNote = $"{ElfConstants.RelocationName(rel.Type)} against {rel.Symbol} at +1 set to R_X86_64_NONE";
            }
            if (site.ExpectJump == false)
            {
                var nop = X86Code.Nop(site.Size).ToArray();
                repairs.Add(new Repair(address, where, raw, nop,
                    $"NOP: key {f.Key} is initially {(site.ExpectJump == false && report.Keys[site.KeyIndex].InitialValue == true ? "on" : "off")} and the " +
                        $"site is static_branch_{(site.Entry.Branch ? "likely" : "unlikely")}",
                    fileOffset, relocationNote));
                if (relocationOffset >= 0) repairs.Add(new Repair(address, where, [], [], Repair.RelocationReason, relocationOffset, relocationNote));
            }
            else if (site.ExpectJump == true)
            {
                if (image.Elf.IsRelocatable && image.SectionAt(site.Entry.Target) != section)
                {
                    refusals.Add(new Refusal(address, where, f.Rule,
                        "the JMP would need a relocation to a target in another section of this object; relink instead"));
                    continue;
                }
                var (jmp, fits) = X86Code.GenerateInstruction(site.Size == 2 ? X86Code.Jmp8Opcode : X86Code.Jmp32Opcode, address, site.Entry.Target);
                if (!fits)
                {
                    refusals.Add(new Refusal(address, where, f.Rule, "the target is out of reach of a JMP of this length"));
                    continue;
                }
                repairs.Add(new Repair(address, where, raw, jmp[..site.Size],
                    $"JMP to {symbols.Names.FormatPS(site.Entry.Target, image.ModuleName)}: key {f.Key} makes this a JMP-type site", fileOffset));
            }
            else refusals.Add(new Refusal(address, where, f.Rule, "the key's initial value is not known, so neither state can be chosen"));
        }
        return (repairs, refusals);
    }

    static string RefusalReason(string rule) => rule switch
    {
        "jump.bad-size" => "the instruction is neither 2 nor 5 bytes long: the entry does not point at a jump-label site",
        "jump.unexpected-instruction" => "the site holds neither the NOP nor the JMP: overwriting it could destroy real code",
        "jump.wrong-target" => "the JMP goes elsewhere than the entry says: it is unclear which of the two is right",
        "jump.target-out-of-range" => "a JMP of this length cannot reach the entry's target",
        "jump.target-outside-text" or "jump.site-outside-text" => "the entry points outside executable code",
        "jump.key-outside-data" or "jump.key-misaligned" or "jump.key-inconsistent" => "the static key itself is damaged; no site change fixes that",
        "jump.table-malformed" => "the table itself is malformed",
        _ => "not a site-state problem",
    };

    // The file offset of the RELA entry that applies at a section offset (for neutralising it in a copy).
    static long RelaEntryOffset(KernelImage image, ElfSection section, ulong offset)
    {
        foreach (var rela in image.Elf.RelocationSectionsFor(section))
        {
            int index = 0;
            foreach (var r in image.Elf.Relocations(rela))
            {
                if (r.Offset == offset && r.Type is ElfConstants.R_X86_64_PC32 or ElfConstants.R_X86_64_PLT32)
                    return (long)rela.Offset + (long)index * RelaSize;
                index++;
            }
        }
        return -1;
    }

    /// <summary>Applies repairs to a copy of the ELF bytes: site bytes, and r_info's type set to R_X86_64_NONE.</summary>
    public static byte[] Apply(KernelImage image, IEnumerable<Repair> repairs)
    {
        var bytes = image.ElfImage.ToArray();
        foreach (var r in repairs)
        {
            if (r.IsRelocation)
            {
                var info = bytes.AsSpan((int)r.FileOffset + 8, 8);
                ulong value = BinaryPrimitives.ReadUInt64LittleEndian(info);
                BinaryPrimitives.WriteUInt64LittleEndian(info, value & ~0xffffffffUL | ElfConstants.R_X86_64_NONE);
            }
            else r.After.CopyTo(bytes.AsSpan((int)r.FileOffset));
        }
        return bytes;
    }
}
