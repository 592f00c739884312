using System.Text;
using SharpFuzz;
using TextPoke.Checks;
using TextPoke.Crash;
using TextPoke.Images;
using TextPoke.Symbols;

// One fuzz target per reader, driven by AFL++ through SharpFuzz (scripts/fuzz TARGET SECONDS). Input that a reader
// refuses as malformed (ImageFormatException, RequestException) is the expected outcome; any other exception, a hang or
// running out of memory is a finding.
if (args.Length < 1 || !Targets.All.TryGetValue(args[0], out var target))
{
    Console.Error.WriteLine($"usage: textpoke-fuzz TARGET [FILE]   (targets: {string.Join(", ", Targets.All.Keys)})");
    return 2;
}
if (args.Length == 2)
{
    // Replay one input (a regression file) without AFL.
    Targets.Guard(target, File.ReadAllBytes(args[1]));
    return 0;
}
Fuzzer.OutOfProcess.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    Targets.Guard(target, buffer.ToArray());
});
return 0;

static class Targets
{
    public static readonly Dictionary<string, Action<byte[]>> All = new()
    {
        ["decode"] = Decode,
        ["elf"] = Elf,
        ["rust"] = data => RustDemangler.Demangle(Encoding.Latin1.GetString(data)),
    };

    public static void Guard(Action<byte[]> target, byte[] data)
    {
        try { target(data); }
        catch (ImageFormatException) { }
        catch (RequestException) { }
    }

    static void Decode(byte[] data)
    {
        var lines = Encoding.Latin1.GetString(data).Replace("\r", "").Split('\n');
        foreach (var report in ConsoleLog.Parse(lines))
        {
            _ = CrashTypes.Of(report.Title);
            _ = ConsoleLog.AltTitles(report).ToList();
            if (report.Code != null) _ = CodeDisassembly.Disassemble(report.Code, CodeDisassembly.Syntax.Att);
        }
    }

    static void Elf(byte[] data)
    {
        using var image = KernelImage.FromElfBytes("fuzz.elf", data);
        var symbols = ImageSymbols.Load(image, lookBeside: false);
        _ = CheckRunner.Run(image, symbols, parallel: false);
    }
}
