using System.CommandLine;
using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Operations;
using TextPoke.Symbols;
using TextPoke.X86;

namespace TextPoke.Cli;

static partial class Commands
{
    static Option<string?> OutputOption() => new("--output", "-o") { Description = "where to write the result (written atomically; never the input)",
        HelpName = "OUT" };
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
        var command = new Command("fix",
            "Write a copy of IMAGE in which every jump-label site is in its correct initial state (what objtool should have done). Refuses sites it cannot " +
            "repair safely.")
        {
            image, map, output, inPlace,
        };
        command.SetAction(result =>
        {
            var (img, symbols) = Load(result.GetValue(image)!, result.GetValue(map));
            using (img)
            {
                var fix = ImageEdits.Fix(img, symbols, result.GetValue(map));
                string target = OutputPath(img, result.GetValue(output), result.GetValue(inPlace), stdout);
                foreach (var r in fix.SiteRepairs)
                {
                    string bytes = r.Before.AsSpan().SequenceEqual(r.After) ? "bytes unchanged" : $"{X86Code.Hex(r.Before)} -> {X86Code.Hex(r.After)}";
                    stdout.WriteLine($"fixed    {r.Location} [{r.Address:x16}]: {bytes} ({r.Reason})" +
                        (r.RelocationNote != null ? $"; {r.RelocationNote}" : ""));
                }
                foreach (var r in fix.Refusals)
                    stdout.WriteLine($"refused  {r.Location ?? (r.Address is { } a ? a.ToString("x16") : "table")} [{r.Rule}]: {r.Reason}");
                if (fix.Bytes == null)
                {
                    stdout.WriteLine(fix.Refusals.Count == 0 ? $"nothing to fix: {img.Path} is clean; nothing written"
                        : "nothing that can be repaired; nothing written");
                    return fix.Refusals.Count == 0 ? ExitCodes.Clean : ExitCodes.Findings;
                }
                ImageWriter.WriteAtomically(target, fix.Bytes);
                int sites = fix.SiteRepairs.Count();
                stdout.WriteLine($"wrote    {target}: {sites} site{(sites == 1 ? "" : "s")} repaired, " +
                    $"re-checked{(fix.Refusals.Count > 0 ? $"; {fix.Refusals.Count} refused" : "")}");
                return fix.Refusals.Count == 0 ? ExitCodes.Clean : ExitCodes.Findings;
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
        var flipSite = new Option<string?>("--flip-jump-site") { Description = "turn the jump-label site at LOCATION into the opposite instruction of the " +
            "same length", HelpName = "LOCATION" };
        var flipKey = new Option<string?>("--flip-jump-key") { Description = "turn a site of KEY into the opposite instruction (the seed's fault); " +
            "KEY as `keys` prints it, or NAME[N] for an element of an array of keys",
            HelpName = "KEY" };
        var index = new Option<int>("--index") { Description = "with --flip-jump-key: which site, in the kernel's order (by address), from 0",
            DefaultValueFactory = _ => 0 };
        var command = new Command("poke",
            "Write a copy of IMAGE with bytes changed: raw bytes at a location, or a jump-label site flipped (fault injection for testing).")
        {
            image, location, bytes, map, output, inPlace, flipSite, flipKey, index,
        };
        command.SetAction(result =>
        {
            var (img, symbols) = Load(result.GetValue(image)!, result.GetValue(map));
            using (img)
            {
                var plan = ImageEdits.Plan(img, symbols,
                    new PokeRequest(result.GetValue(location), result.GetValue(bytes), result.GetValue(flipSite), result.GetValue(flipKey),
                        result.GetValue(index)));
                string target = OutputPath(img, result.GetValue(output), result.GetValue(inPlace), stdout);
                var copy = ImageWriter.PatchedElf(img, [(plan.Address, plan.After)]);
                ImageWriter.WriteAtomically(target, copy);
                stdout.WriteLine($"poked    {symbols.Names.FormatPS(plan.Address, img.ModuleName)} [{plan.Address:x16}] in {plan.Section.Name}: " +
                    $"{X86Code.Hex(plan.Before)} -> {X86Code.Hex(plan.After)} ({plan.Why})");
                stdout.WriteLine($"wrote    {target}");
                return ExitCodes.Clean;
            }
        });
        return command;
    }
}
