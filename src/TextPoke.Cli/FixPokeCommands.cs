using System.CommandLine;
using System.Globalization;
using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.X86;

namespace TextPoke.Cli;

static partial class Commands
{
    static Option<string?> OutputOption() => new("--output", "-o") { Description = "where to write the result (written atomically; never the input)", HelpName = "OUT" };
    static Option<bool> InPlaceOption() => new("--in-place") { Description = "overwrite IMAGE itself (ELF input only)" };

    /// <summary>Resolves -o / --in-place and refuses to write over the input by accident or into a bzImage.</summary>
    static string OutputPath(KernelImage image, string? output, bool inPlace, TextWriter stdout)
    {
        if (inPlace)
        {
            if (output != null) throw new UsageException("give either -o OUT or --in-place, not both");
            if (image.Container != null)
                throw new UsageException($"--in-place needs an ELF input; {image.Path} is a {image.Describe()} (write the ELF with -o)");
            return image.Path;
        }
        if (output == null) throw new UsageException("missing -o OUT (or --in-place to overwrite the input)");
        if (Path.GetFullPath(output) == Path.GetFullPath(image.Path))
            throw new UsageException($"-o {output} is the input itself; use --in-place to overwrite it");
        if (image.Container != null)
            stdout.WriteLine($"note     {image.Path} is a {image.Describe()}: writing the decompressed ELF, not a bzImage");
        return output;
    }

    public static Command Fix(TextWriter stdout)
    {
        var image = ImageArgument();
        var map = SystemMapOption();
        var output = OutputOption();
        var inPlace = InPlaceOption();
        var command = new Command("fix", "Write a copy of IMAGE in which every jump-label site is in its correct initial state (what objtool should have done). Refuses sites it cannot repair safely.")
        {
            image, map, output, inPlace,
        };
        command.SetAction(result =>
        {
            var (img, symbols) = Load(result.GetValue(image)!, result.GetValue(map));
            using (img)
            {
                var report = JumpLabelCheck.Run(img, symbols);
                if (report.Era == null) throw new ImageFormatException(img.Path, $"no jump table to fix: {report.Absent}");
                string target = OutputPath(img, result.GetValue(output), result.GetValue(inPlace), stdout);
                var (repairs, refusals) = JumpLabelRepair.Plan(img, symbols, report);
                foreach (var r in repairs.Where(r => r.Reason != "relocation"))
                {
                    string bytes = r.Before.AsSpan().SequenceEqual(r.After) ? "bytes unchanged" : $"{X86Code.Hex(r.Before)} -> {X86Code.Hex(r.After)}";
                    stdout.WriteLine($"fixed    {r.Location} [{r.Address:x16}]: {bytes} ({r.Reason}){(r.RelocationNote != null ? $"; {r.RelocationNote}" : "")}");
                }
                foreach (var r in refusals)
                    stdout.WriteLine($"refused  {r.Location ?? (r.Address is { } a ? a.ToString("x16") : "table")} [{r.Rule}]: {r.Reason}");
                if (repairs.Count == 0)
                {
                    stdout.WriteLine(refusals.Count == 0 ? $"nothing to fix: {img.Path} is clean; nothing written" : "nothing that can be repaired; nothing written");
                    return refusals.Count == 0 ? ExitCodes.Clean : ExitCodes.Findings;
                }
                var bytesOut = JumpLabelRepair.Apply(img, repairs);
                // Re-check the repaired image before keeping it.
                using (var check = KernelImage.FromElfBytes($"{target} (repaired)", bytesOut))
                {
                    var checkSymbols = ImageSymbols.Load(check, result.GetValue(map), lookBeside: false);
                    var recheck = JumpLabelCheck.Run(check, checkSymbols);
                    var repairedAddresses = repairs.Select(r => r.Address).ToHashSet();
                    var left = recheck.Findings.Where(f => f.Address is { } a && repairedAddresses.Contains(a)).ToList();
                    if (left.Count > 0)
                        throw new ImageFormatException(img.Path, $"the repaired copy still fails at {left[0].Location}: {left[0].Title}; nothing written");
                }
                ImageWriter.WriteAtomically(target, bytesOut);
                int sites = repairs.Count(r => r.Reason != "relocation");
                stdout.WriteLine($"wrote    {target}: {sites} site{(sites == 1 ? "" : "s")} repaired, re-checked{(refusals.Count > 0 ? $"; {refusals.Count} refused" : "")}");
                return refusals.Count == 0 ? ExitCodes.Clean : ExitCodes.Findings;
            }
        });
        return command;
    }

    public static Command Poke(TextWriter stdout)
    {
        var image = ImageArgument();
        var location = new Argument<string?>("LOCATION") { Description = "symbol+0xoff, or an address", Arity = ArgumentArity.ZeroOrOne };
        var bytes = new Argument<string?>("BYTES") { Description = "hex bytes to write, e.g. \"eb 0d\"", Arity = ArgumentArity.ZeroOrOne };
        var map = SystemMapOption();
        var output = OutputOption();
        var inPlace = InPlaceOption();
        var flipSite = new Option<string?>("--flip-jump-site") { Description = "turn the jump-label site at LOCATION into the opposite instruction of the same length", HelpName = "LOCATION" };
        var flipKey = new Option<string?>("--flip-jump-key") { Description = "turn a site of KEY into the opposite instruction (the seed's fault)", HelpName = "KEY" };
        var index = new Option<int>("--index") { Description = "with --flip-jump-key: which site, in the kernel's order (by address), from 0", DefaultValueFactory = _ => 0 };
        var command = new Command("poke", "Write a copy of IMAGE with bytes changed: raw bytes at a location, or a jump-label site flipped (fault injection for testing).")
        {
            image, location, bytes, map, output, inPlace, flipSite, flipKey, index,
        };
        command.SetAction(result =>
        {
            var (img, symbols) = Load(result.GetValue(image)!, result.GetValue(map));
            using (img)
            {
                string? loc = result.GetValue(location), hex = result.GetValue(bytes), site = result.GetValue(flipSite), key = result.GetValue(flipKey);
                int modes = (loc != null ? 1 : 0) + (site != null ? 1 : 0) + (key != null ? 1 : 0);
                if (modes != 1) throw new UsageException("give exactly one of: LOCATION BYTES, --flip-jump-site LOCATION, --flip-jump-key KEY");
                ulong address;
                byte[] patch;
                string why;
                if (loc != null)
                {
                    if (hex == null) throw new UsageException("missing BYTES after LOCATION");
                    address = ResolveLocation(img, symbols, loc);
                    patch = X86Code.ParseHex(hex) ?? throw new UsageException($"'{hex}' is not a list of hex bytes");
                    why = "bytes written";
                }
                else
                {
                    var report = JumpLabelCheck.Run(img, symbols);
                    if (report.Era == null) throw new ImageFormatException(img.Path, $"no jump table: {report.Absent}");
                    JumpSite chosen;
                    if (site != null)
                    {
                        ulong at = ResolveLocation(img, symbols, site);
                        chosen = report.Sites.FirstOrDefault(s => s.Entry.Code == at);
                        if (chosen.Entry.Code != at) throw new UsageException($"{site} ({at:x16}) is not a jump-label site");
                    }
                    else
                    {
                        var ofKey = report.Sites.Where(s => report.Keys[s.KeyIndex].Name == key).OrderBy(s => s.Entry.Code).ToList();
                        if (ofKey.Count == 0) throw new UsageException($"no static key named '{key}' in {img.Path}");
                        int n = result.GetValue(index);
                        if (n < 0 || n >= ofKey.Count) throw new UsageException($"--index {n}: key {key} has {ofKey.Count} site{(ofKey.Count == 1 ? "" : "s")} (0..{ofKey.Count - 1})");
                        chosen = ofKey[n];
                    }
                    address = chosen.Entry.Code;
                    (patch, why) = chosen.State switch
                    {
                        SiteState.Nop => (X86Code.GenerateInstruction(chosen.Size == 2 ? X86Code.Jmp8Opcode : X86Code.Jmp32Opcode, address, chosen.Entry.Target).Union[..chosen.Size],
                            $"NOP turned into the JMP to {symbols.Names.FormatPS(chosen.Entry.Target, img.ModuleName)} (key {report.Keys[chosen.KeyIndex].Name})"),
                        SiteState.Jump => (X86Code.Nop(chosen.Size).ToArray(), $"JMP turned into a NOP (key {report.Keys[chosen.KeyIndex].Name})"),
                        _ => throw new UsageException($"the site at {symbols.Names.FormatPS(address, img.ModuleName)} holds neither a NOP nor a JMP; nothing to flip"),
                    };
                }
                var section = img.SectionAt(address);
                if (section == null || !section.HasFileBytes || !section.IsAllocated)
                    throw new UsageException($"{address:x16} is outside the image's code and data");
                string target = OutputPath(img, result.GetValue(output), result.GetValue(inPlace), stdout);
                var before = new byte[patch.Length];
                img.Read(address, before);
                var copy = ImageWriter.PatchedElf(img, [(address, patch)]);
                ImageWriter.WriteAtomically(target, copy);
                stdout.WriteLine($"poked    {symbols.Names.FormatPS(address, img.ModuleName)} [{address:x16}] in {section.Name}: {X86Code.Hex(before)} -> {X86Code.Hex(patch)} ({why})");
                stdout.WriteLine($"wrote    {target}");
                return ExitCodes.Clean;
            }
        });
        return command;
    }

    /// <summary>"symbol+0xoff", "symbol", or an address in hex (with or without 0x).</summary>
    internal static ulong ResolveLocation(KernelImage image, ImageSymbols symbols, string text)
    {
        string name = text, offsetText = "0";
        int plus = text.LastIndexOf('+');
        if (plus > 0) { name = text[..plus]; offsetText = text[(plus + 1)..]; }
        int slash = offsetText.IndexOf('/');
        if (slash >= 0) offsetText = offsetText[..slash];
        if (!TryHex(offsetText, out ulong offset)) throw new UsageException($"'{text}': bad offset '{offsetText}'");
        if (symbols.TryFind(name, out ulong address, out _)) return address + offset;
        if (plus < 0 && TryHex(text, out address) && image.SectionAt(address) != null) return address;
        throw new UsageException($"'{name}' is neither a symbol of {image.Path} ({symbols.Describe()}) nor an address inside it");
    }

    static bool TryHex(string text, out ulong value)
    {
        var t = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text[2..] : text;
        return ulong.TryParse(t, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out value);
    }
}
