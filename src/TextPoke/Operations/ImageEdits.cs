using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Images.Elf;
using TextPoke.Symbols;
using TextPoke.Tables;
using TextPoke.X86;

namespace TextPoke.Operations;

/// <summary>What <see cref="ImageEdits.Fix"/> did: the repairs, the refusals, and the repaired ELF (null when nothing could be repaired).</summary>
public sealed record FixResult(IReadOnlyList<Repair> Repairs, IReadOnlyList<Refusal> Refusals, byte[]? Bytes)
{
    /// <summary>Sites whose bytes the fix changes or confirms (relocation-only repairs are not sites).</summary>
    public IEnumerable<Repair> SiteRepairs => Repairs.Where(r => !r.IsRelocation);
}

/// <summary>One poke: where, which bytes before and after, in which section, and why.</summary>
public sealed record PokePlan(ulong Address, byte[] Before, byte[] After, ElfSection Section, string Why);

/// <summary>How to choose what to poke: raw bytes at a location, a jump-label site, or the n-th site of a key.</summary>
public sealed record PokeRequest(string? Location = null, string? Bytes = null, string? FlipSite = null, string? FlipKey = null, int Index = 0);

/// <summary>fix and poke: edits of a kernel image, planned and verified here, written by the caller.</summary>
public static class ImageEdits
{
    /// <summary>
    /// Puts every jump-label site in its correct initial state (what objtool should have done), then checks the repaired
    /// copy again: a repair that would leave its site broken is an error, and nothing is returned to be written.
    /// </summary>
    public static FixResult Fix(KernelImage image, ImageSymbols symbols, string? systemMap)
    {
        var report = JumpLabelCheck.Run(image, symbols);
        if (report.Era == null) throw new ImageFormatException(image.Path, $"no jump table to fix: {report.Absent}");
        var (repairs, refusals) = JumpLabelRepair.Plan(image, symbols, report);
        if (repairs.Count == 0) return new FixResult(repairs, refusals, null);
        var bytes = JumpLabelRepair.Apply(image, repairs);
        using (var check = KernelImage.FromElfBytes($"{image.Path} (repaired)", bytes))
        {
            var checkSymbols = ImageSymbols.Load(check, systemMap, lookBeside: false);
            var recheck = JumpLabelCheck.Run(check, checkSymbols);
            var repaired = repairs.Select(r => r.Address).ToHashSet();
            var left = recheck.Findings.Where(f => f.Address is { } a && repaired.Contains(a)).ToList();
            if (left.Count > 0)
                throw new ImageFormatException(image.Path, $"the repaired copy still fails at {left[0].Location}: {left[0].Title}; nothing written");
        }
        return new FixResult(repairs, refusals, bytes);
    }

    /// <summary>Decides the bytes of a poke; refuses (with <see cref="RequestException"/>) what cannot be poked.</summary>
    public static PokePlan Plan(KernelImage image, ImageSymbols symbols, PokeRequest request)
    {
        int modes = (request.Location != null ? 1 : 0) + (request.FlipSite != null ? 1 : 0) + (request.FlipKey != null ? 1 : 0);
        if (modes != 1) throw new RequestException("give exactly one of: LOCATION BYTES, --flip-jump-site LOCATION, --flip-jump-key KEY");
        ulong address;
        byte[] patch;
        string why;
        if (request.Location != null)
        {
            if (request.Bytes == null) throw new RequestException("missing BYTES after LOCATION");
            address = Locations.Resolve(image, symbols, request.Location);
            patch = X86Code.ParseHex(request.Bytes) ?? throw new RequestException($"'{request.Bytes}' is not a list of hex bytes");
            why = "bytes written";
        }
        else (address, patch, why) = Flip(image, symbols, request);
        var section = image.SectionAt(address);
        if (section == null || !section.HasFileBytes || !section.IsAllocated)
            throw new RequestException($"{address:x16} is outside the image's code and data");
        var before = new byte[patch.Length];
        image.Read(address, before);
        return new PokePlan(address, before, patch, section, why);
    }

    /// <summary>The opposite instruction of the same length for a jump-label site: NOP to its JMP, JMP to the NOP.</summary>
    static (ulong Address, byte[] Patch, string Why) Flip(KernelImage image, ImageSymbols symbols, PokeRequest request)
    {
        var report = JumpLabelCheck.Run(image, symbols);
        if (report.Era == null) throw new ImageFormatException(image.Path, $"no jump table: {report.Absent}");
        JumpSite chosen;
        if (request.FlipSite is { } site)
        {
            ulong at = Locations.Resolve(image, symbols, site);
            chosen = report.Sites.FirstOrDefault(s => s.Entry.Code == at);
            if (chosen.Entry.Code != at) throw new RequestException($"{site} ({at:x16}) is not a jump-label site");
        }
        else
        {
            string key = request.FlipKey!, named = report.Keys.Any(k => k.Name == key) ? key : StaticKeyNames.Canonical(key);
            var ofKey = report.Sites.Where(s => report.Keys[s.KeyIndex].Name == named).OrderBy(s => s.Entry.Code).ToList();
            if (ofKey.Count == 0) throw new RequestException(StaticKeyNames.NotFound(key, report.Keys.Select(k => k.Name), image.Path));
            int n = request.Index;
            if (n < 0
                || n >= ofKey.Count) throw new RequestException($"--index {n}: key {key} has {ofKey.Count} site{(ofKey.Count == 1 ? "" : "s")} " +
                $"(0..{ofKey.Count - 1})");
            chosen = ofKey[n];
        }
        ulong address = chosen.Entry.Code;
        string keyName = report.Keys[chosen.KeyIndex].Name;
        return chosen.State switch
        {
            SiteState.Nop => (address, X86Code.GenerateInstruction(chosen.Size == 2 ? X86Code.Jmp8Opcode : X86Code.Jmp32Opcode, address,
                chosen.Entry.Target).Union[..chosen.Size],
                $"NOP turned into the JMP to {symbols.Names.FormatPS(chosen.Entry.Target, image.ModuleName)} (key {keyName})"),
            SiteState.Jump => (address, X86Code.Nop(chosen.Size).ToArray(), $"JMP turned into a NOP (key {keyName})"),
            _ => throw new RequestException($"the site at {symbols.Names.FormatPS(address, image.ModuleName)} holds neither a NOP nor a JMP; nothing to flip"),
        };
    }
}
