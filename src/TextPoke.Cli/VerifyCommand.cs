using System.CommandLine;
using System.Globalization;
using TextPoke.Images;
using TextPoke.Live;
using TextPoke.Symbols;
using TextPoke.X86;

namespace TextPoke.Cli;

static partial class Commands
{
    public static Command Verify(TextWriter stdout)
    {
        var image = ImageArgument();
        var map = SystemMapOption();
        var kcore = new Option<string>("--kcore")
        {
            Description = "the running kernel's memory: /proc/kcore (the default; needs root) or a saved ELF core laid out like it", HelpName = "FILE",
            DefaultValueFactory = _ => "/proc/kcore",
        };
        var kallsyms = new Option<string?>("--kallsyms")
        {
            Description = "where the KASLR slide comes from: the live _text in this kallsyms file (default /proc/kallsyms when reading /proc/kcore)",
            HelpName = "FILE",
        };
        var slide = new Option<string?>("--slide") { Description = "the KASLR slide (live address minus image address), hexadecimal; 0 without KASLR",
            HelpName = "HEX" };
        var cpu = new Option<string?>("--cpu") { Description = "the CPU the kernel booted on, as simulate --boot takes it, instead of the one read from " +
            "its boot_cpu_data in live memory", HelpName = "FEATURES" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "list the explained ranges too, not only the unexplained ones" };
        var json = JsonOption();
        var command = new Command("verify",
            "Compare the text of the running kernel with IMAGE after the boot-time patching for the CPU it runs on, and explain every differing byte " +
            "(jump labels by their key, static calls by their target, ftrace, SMP locks, runtime constants, KASLR) or flag it. Exits 0 when all are " +
            "explained, 1 when something is not.")
        {
            image, map, kcore, kallsyms, slide, cpu, verbose, json,
        };
        command.SetAction(result =>
        {
            var (img, symbols) = Load(result.GetValue(image)!, result.GetValue(map));
            using (img)
            {
                string corePath = result.GetValue(kcore)!;
                ulong offset = Slide(result.GetValue(slide), result.GetValue(kallsyms) ?? (corePath == "/proc/kcore" ? "/proc/kallsyms" : null), symbols);
                using var memory = KcoreMemory.Open(corePath);
                var model = result.GetValue(cpu) is { } spec ? ParseCpu(spec, Emulation.CpuFeatureNames.Load(img, symbols)) : null;
                var verdict = TextVerifier.Verify(img, symbols, memory, offset, model);
                if (result.GetValue(json)) JsonOutput.Verify(stdout, img, symbols, verdict);
                else TextOutput.Verify(stdout, img.Path, verdict, result.GetValue(verbose));
                return verdict.Unexplained + verdict.Inconsistent == 0 ? ExitCodes.Clean : ExitCodes.Findings;
            }
        });
        return command;
    }

    /// <summary>The KASLR slide: given, else the live _text of a kallsyms file minus the image's _text, else 0.</summary>
    static ulong Slide(string? given, string? kallsymsPath, ImageSymbols symbols)
    {
        if (given != null)
        {
            var text = given.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? given[2..] : given;
            return ulong.TryParse(text, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong s) ? s
                : throw new UsageException($"--slide {given}: not a hexadecimal number");
        }
        if (kallsymsPath == null) return 0;
        if (!symbols.TryFind("_text", out ulong imageText, out _)) throw new ImageFormatException(kallsymsPath, "the image has no _text symbol to slide");
        IEnumerable<string> lines;
        try { lines = File.ReadLines(kallsymsPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageFormatException(kallsymsPath, $"cannot read: {e.Message}");
        }
        foreach (var line in lines)
        {
            var f = line.Split(' ', 4);
            if (f.Length < 3 || f[2] != "_text") continue;
            if (!ulong.TryParse(f[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong live))
                throw new ImageFormatException(kallsymsPath, $"_text has no address: {f[0]}");
            if (live == 0) throw new ImageFormatException(kallsymsPath, "addresses are hidden (kptr_restrict, or not root): give --slide");
            return live - imageText;
        }
        throw new ImageFormatException(kallsymsPath, "no _text symbol");
    }
}
