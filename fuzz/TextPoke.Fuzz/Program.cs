using System.Buffers.Binary;
using System.Text;
using SharpFuzz;
using TextPoke.Checks;
using TextPoke.Crash;
using TextPoke.Demo;
using TextPoke.Dwarf;
using TextPoke.Emulation;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tables;
using TextPoke.Tests.Support;

// One fuzz target per reader, driven by AFL++ through SharpFuzz (scripts/fuzz TARGET SECONDS). Input that a reader
// refuses as malformed (ImageFormatException, RequestException) is the expected outcome; any other exception, a hang or
// running out of memory is a finding.
//   textpoke-fuzz TARGET              run under AFL++ (input on standard input, through SharpFuzz's fork server)
//   textpoke-fuzz TARGET FILE         replay one input (a regression file) without AFL
//   textpoke-fuzz seeds TARGET DIR    write the seeds scripts/fuzz cannot make with the machine's tools
//   textpoke-fuzz bzimage PAYLOAD OUT wrap a compressed payload (size word appended) in a minimal bzImage, as a seed
// Outside AFL (seeds, replay) the instrumented library writes its trace into a private buffer instead of AFL's shared memory.
if (args.Length >= 2) unsafe { SharpFuzz.Common.Trace.SharedMem = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed(1 << 16); }
if (args.Length == 3 && args[0] == "seeds") return Seeds.Write(args[1], args[2]);
if (args.Length == 3 && args[0] == "bzimage")
{
    File.WriteAllBytes(args[2], BzImageMaker.Make(File.ReadAllBytes(args[1])));
    return 0;
}
if (args.Length < 1 || !Targets.All.TryGetValue(args[0], out var target))
{
    Console.Error.WriteLine($"usage: textpoke-fuzz TARGET [FILE]   (targets: {string.Join(", ", Targets.All.Keys)})");
    return 2;
}
if (args.Length == 2)
{
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
        ["image"] = Image,
        ["kallsyms"] = KallsymsOnly,
        ["dwarf"] = Dwarf,
        ["sysmap"] = SystemMapText,
        ["script"] = Script,
        ["initramfs"] = Initramfs,
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

    static void Check(KernelImage image)
    {
        var symbols = ImageSymbols.Load(image, lookBeside: false);
        _ = CheckRunner.Run(image, symbols, parallel: false);
    }

    static void Elf(byte[] data)
    {
        using var image = KernelImage.FromElfBytes("fuzz.elf", data);
        Check(image);
    }

    // Any container: a bzImage (setup header, then the gzip, xz, lzma, lz4, zstd or bzip2 payload and its size word),
    // a compressed module (.ko.xz, .ko.zst, .ko.gz: the module loader's checks, vermagic and .modinfo), or an ELF.
    static void Image(byte[] data)
    {
        using var image = KernelImage.FromBytes("fuzz.image", data);
        _ = image.Banner;
        Check(image);
    }

    // kallsyms recovery alone, on an image whose only symbols are the kallsyms in its .rodata.
    static void KallsymsOnly(byte[] data)
    {
        using var image = KernelImage.FromElfBytes("fuzz.elf", data);
        var (_, symbols, _) = Kallsyms.Recover(image);
        if (symbols.Length == 0) return;
        var table = new SymbolTable(SymbolSource.Kallsyms, "fuzz", symbols);
        foreach (var s in symbols.Take(64)) _ = table.FormatPS(s.Address + 1);
    }

    // The DWARF reader: units, abbreviations, DIEs and inline chains, line programs (v2-5), ranges and string forms.
    static void Dwarf(byte[] data)
    {
        using var image = KernelImage.FromElfBytes("fuzz.elf", data);
        if (DwarfInfo.Open(image) is not { } dwarf) return;
        foreach (var section in image.Elf.Sections.Where(s => s.IsExecutable).Take(4))
        {
            ulong start = image.SectionAddress(section);
            for (ulong a = start; a < start + Math.Min(section.Size, 256); a += 7) _ = dwarf.Lookup(a);
        }
    }

    static void SystemMapText(byte[] data)
    {
        var lines = Encoding.Latin1.GetString(data).Split('\n');
        var entries = SystemMap.Parse("fuzz.map", lines);
        var table = new SymbolTable(SymbolSource.SystemMap, "fuzz", entries);
        foreach (var e in entries.Take(64)) _ = table.FormatPS(e.Address + 1);
    }

    static readonly Lazy<(KernelImage Image, ImageSymbols Symbols)> Seed = new(() =>
    {
        var image = SeedDemo.Open();
        return (image, ImageSymbols.Load(image, lookBeside: false));
    });

    // The initramfs writer's inputs (boot --marker and --run): the /init script and the cpio archive around it.
    static void Initramfs(byte[] data)
    {
        var lines = Encoding.Latin1.GetString(data).Split('\n');
        var init = TextPoke.Boot.Initramfs.InitScript(lines[0], lines[1..]);
        _ = TextPoke.Boot.Cpio.Write([TextPoke.Boot.CpioEntry.Dir("bin"), TextPoke.Boot.CpioEntry.Char("dev/console", 5, 1),
            TextPoke.Boot.CpioEntry.File("init", Encoding.ASCII.GetBytes(init), executable: true), TextPoke.Boot.CpioEntry.Link("bin/sh", "busybox")]);
    }

    // A simulate script run by the emulated jump-label core on the seed's image ('load' names no file: refused).
    static void Script(byte[] data)
    {
        var steps = Simulation.ParseScript("fuzz.script", Encoding.Latin1.GetString(data));
        var (image, symbols) = Seed.Value;
        var report = JumpLabelCheck.Run(image, symbols);
        var core = JumpLabelCore.Init(image, symbols, report, BugTable.Read(image, symbols));
        core.KeepGoing = true;
        Simulation.Run(core, steps.Take(200), "fuzz.script", path => throw new RequestException($"{path}: no modules while fuzzing"));
    }
}

static class Seeds
{
    public static readonly string[] InitramfsSeeds = ["TEXTPOKE-BOOT-OK-1234\necho 1 > /sys/kernel/debug/sched/schedstats\n",
        "marker\nsysctl kernel.sched_schedstats=1\necho 'quoted' \"twice\"\n"];

    public static int Write(string target, string dir)
    {
        Directory.CreateDirectory(dir);
        switch (target)
        {
            case "kallsyms":
                // Every kallsyms layout textpoke reads, each with a few hundred symbols (two marker blocks).
                foreach (var order in Enum.GetValues<KallsymsOrder>())
                foreach (var (seqs, percpu, big) in new[] { (0, true, false), (4, false, false), (3, false, true) })
                {
                    var layout = new KallsymsMaker.Layout(order, seqs, percpu, big);
                    File.WriteAllBytes(Path.Combine(dir, $"kallsyms-{order}-{seqs}-{percpu}-{big}"),
                        KallsymsMaker.BuildElf(layout, KallsymsMaker.Symbols(layout, 300)));
                }
                return 0;
            case "script":
                File.WriteAllText(Path.Combine(dir, "enable"), "enable frontswap_enabled_key\n");
                File.WriteAllText(Path.Combine(dir, "mixed"), "# comment\ninc frontswap_enabled_key\ndec &frontswap_enabled_key\nboot-done\n" +
                    "static_key_disable frontswap_enabled_key\n");
                return 0;
            case "initramfs":
                for (int i = 0; i < InitramfsSeeds.Length; i++) File.WriteAllText(Path.Combine(dir, $"run-{i}"), InitramfsSeeds[i]);
                return 0;
            case "sysmap":
                File.WriteAllText(Path.Combine(dir, "map"), "ffffffff81000000 T _text\nffffffff812ff3e0 T swap_writepage\n" +
                    "ffffffff812ff440 t swap_readpage\nffffffff83fdfe70 B frontswap_enabled_key\n0000000000000000 A fixed_percpu_data\n");
                File.WriteAllText(Path.Combine(dir, "stub"), "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n");
                return 0;
            default:
                Console.Error.WriteLine($"textpoke-fuzz: no built-in seeds for {target}");
                return 2;
        }
    }
}
