using System.Diagnostics;
using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Symbols;

// textpoke check on a Debian vmlinuz and on its extracted ELF, each against the unavoidable work measured in the
// same run: xz -dc of the payload (vmlinuz), and reading the file (ELF). Prints a Markdown table for docs/benchmarks.md.
//
//   dotnet run -c Release --project bench/TextPoke.Bench [-- VMLINUZ [RUNS]]    (or bench/run)
// Without VMLINUZ it uses the generic kernel that scripts/fetch-kernels caches.

string root = FindRoot();
string[] sections = ["check", "modules", "extract", "boot", "bolt", "decode", "eras", "verify", "all"];
string section = args.Length > 0 && sections.Contains(args[0]) ? args[0] : "all";
var rest = args.SkipWhile(a => sections.Contains(a)).ToArray();
var manifest = Manifest(root);
string vmlinuz = rest.Length > 0 ? rest[0] : manifest["GENERIC_VMLINUZ"];
int runs = rest.Length > 1 ? int.Parse(rest[1]) : 7;
// The CLI as users run it: ./textpoke builds it into .build/textpoke, a native executable (Native AOT), or where
// that cannot build a ReadyToRun textpoke.dll that dotnet runs.
Process(Path.Combine(root, "textpoke"), "--help");
string cliDll = Path.Combine(root, ".build", "textpoke", "textpoke.dll");
bool nativeCli = !File.Exists(cliDll);
string cliFile = nativeCli ? Path.Combine(root, ".build", "textpoke", "textpoke") : "dotnet";
string[] CliArgs(params string[] a) => nativeCli ? a : [cliDll, .. a];

var work = Directory.CreateTempSubdirectory("textpoke-bench").FullName;
string payload = Path.Combine(work, "payload.xz"), elf = Path.Combine(work, "vmlinux.elf");
using (var image = KernelImage.Open(vmlinuz))
{
    var h = image.BzImageHeader ?? throw new InvalidOperationException($"{vmlinuz} is not a bzImage");
    File.WriteAllBytes(payload, image.Container!.Span(h.ProtectedModeOffset + h.PayloadOffset, h.PayloadLength - 4).ToArray());
    File.WriteAllBytes(elf, image.ElfImage.ToArray());
}

double Median(Func<double> run)
{
    run(); // warm the page cache (and the JIT, in process)
    var samples = Enumerable.Range(0, runs).Select(_ => run()).Order().ToArray();
    return samples[samples.Length / 2];
}

double Process(string file, params string[] arguments) => Run(file, arguments, mustSucceed: true);

double Run(string file, string[] arguments, bool mustSucceed)
{
    var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
    foreach (var a in arguments) psi.ArgumentList.Add(a);
    var sw = Stopwatch.StartNew();
    using var p = System.Diagnostics.Process.Start(psi)!;
    p.StandardOutput.BaseStream.CopyTo(Stream.Null);
    p.StandardError.ReadToEnd();
    p.WaitForExit();
    sw.Stop();
    if (mustSucceed && p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} exited {p.ExitCode}");
    return sw.Elapsed.TotalMilliseconds;
}

double InProcess(string path)
{
    var sw = Stopwatch.StartNew();
    using var image = KernelImage.Open(path);
    var report = CheckRunner.Run(image, ImageSymbols.Load(image, lookBeside: false));
    if (!report.Clean) throw new InvalidOperationException($"{path}: findings in a distro kernel?");
    if (report.Jump?.Stats is not { Entries: > 0 }) throw new InvalidOperationException($"{path}: the jump table was not checked: {report.Jump?.Absent}");
    return sw.Elapsed.TotalMilliseconds;
}

double ReadFile(string path)
{
    var sw = Stopwatch.StartNew();
    var bytes = File.ReadAllBytes(path);
    GC.KeepAlive(bytes);
    return sw.Elapsed.TotalMilliseconds;
}

if (section is "check" or "all") CheckBenchmark();
if (section is "modules" or "all") ModulesBenchmark();
if (section is "extract" or "all") ExtractBenchmark();
if (section is "decode" or "all") DecodeBenchmark();
if (section is "boot" or "all") BootBenchmark();
if (section is "bolt" or "all") BoltBenchmark();
if (section is "eras" or "all") ErasBenchmark();
if (section is "verify" or "all") VerifyBenchmark();
Directory.Delete(work, true);

void CheckBenchmark()
{
var xz = Median(() => Process("xz", "-dc", "--single-stream", payload));
var cliZ = Median(() => Process(cliFile, CliArgs("check", vmlinuz)));
var libZ = Median(() => InProcess(vmlinuz));
var cat = Median(() => Process("cat", elf));
var read = Median(() => ReadFile(elf));
var cliE = Median(() => Process(cliFile, CliArgs("check", elf)));
var libE = Median(() => InProcess(elf));
var nop = Median(() => Process(cliFile, CliArgs("--help")));

Console.WriteLine($"| input | textpoke check (CLI) | textpoke check (library, in process) | unavoidable work | ratio CLI / work | ratio library / work |");
Console.WriteLine($"|---|---|---|---|---|---|");
Console.WriteLine($"| {Path.GetFileName(vmlinuz)} ({new FileInfo(vmlinuz).Length / 1024} KiB, xz) | {cliZ:F0} ms | {libZ:F0} ms | `xz -dc` of the payload: " +
    $"{xz:F0} ms | {cliZ / xz:F2} | {libZ / xz:F2} |");
Console.WriteLine($"| extracted ELF ({new FileInfo(elf).Length / 1024 / 1024} MiB) | {cliE:F0} ms | {libE:F0} ms | `cat` of the file: {cat:F0} ms; " +
    $"ReadAllBytes: {read:F0} ms | {cliE / cat:F2} | {libE / read:F2} |");
Console.WriteLine();
Console.WriteLine($"Median of {runs} runs after one warm-up, page cache warm. CLI start-up alone (`textpoke --help`): {nop:F0} ms.");
Console.WriteLine();
}

// The whole module tree against only reading (and, for a zstd-compressed copy, only decompressing) every file.
void ModulesBenchmark()
{
    string tree = manifest["GENERIC_MODULES"];
    var files = Directory.EnumerateFiles(tree, "*.ko", SearchOption.AllDirectories).ToList();
    long bytes = files.Sum(f => new FileInfo(f).Length);
    string compressed = Path.Combine(work, "zst", Path.GetFileName(tree));
    foreach (var f in files)
    {
        var target = Path.Combine(compressed, Path.GetRelativePath(tree, f)) + ".zst";
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
    }
    Process("sh", "-c",
        $"cd '{tree}' && find . -name '*.ko' -print0 | xargs -0 -P {Environment.ProcessorCount} -n 64 sh -c 'for f; do zstd -q -3 \"$f\" -o " +
        $"\"{compressed}/$f.zst\"; done' _");
    int runsHere = Math.Max(3, runs / 2);
    double MedianN(Func<double> run) { run(); return Enumerable.Range(0, runsHere).Select(_ => run()).Order().ElementAt(runsHere / 2); }
    var read = MedianN(() =>
    {
        var sw = Stopwatch.StartNew();
        Parallel.ForEach(files, f => GC.KeepAlive(File.ReadAllBytes(f)));
        return sw.Elapsed.TotalMilliseconds;
    });
    var check = MedianN(() => Process(cliFile, CliArgs("check", tree, "--vmlinux", vmlinuz)));
    // The same tree where no kernel can be found beside it: modules only.
    string alone = Path.Combine(work, "alone");
    Directory.CreateDirectory(alone);
    File.CreateSymbolicLink(Path.Combine(alone, "modules"), tree);
    var modulesOnly = MedianN(() => Process(cliFile, CliArgs("check", Path.Combine(alone, "modules"))));
    var unzstd = MedianN(() => Process("sh", "-c",
        $"find '{compressed}' -name '*.zst' -print0 | xargs -0 -P {Environment.ProcessorCount} -n 64 zstd -q -d -c > /dev/null"));
    var checkZ = MedianN(() => Process(cliFile, CliArgs("check", compressed, "--vmlinux", vmlinuz)));
    Console.WriteLine($"| module tree ({files.Count} modules) | textpoke check (CLI, with the vmlinuz) | only the unavoidable work | ratio |");
    Console.WriteLine($"|---|---|---|---|");
    Console.WriteLine($"| `.ko` as Debian ships them ({bytes / (1024 * 1024)} MiB), modules only | {modulesOnly:F0} ms | read every file (in parallel, in " +
        $"process): {read:F0} ms | {modulesOnly / read:F2} |");
    Console.WriteLine($"| the same, with the vmlinuz (keys resolved, vermagic checked) | {check:F0} ms | read every file: {read:F0} ms | {check / read:F2} |");
    Console.WriteLine($"| the same tree as `.ko.zst` | {checkZ:F0} ms | `zstd -d` of every file (xargs -P {Environment.ProcessorCount}): {unzstd:F0} ms | " +
        $"{checkZ / unzstd:F2} |");
    Console.WriteLine();
    Console.WriteLine($"Median of {runsHere} runs after one warm-up; the check includes decompressing and checking the vmlinuz itself (about 0.7 s of xz).");
    Console.WriteLine();
}

// textpoke extract against scripts/extract-vmlinux (Debian's linux-source) on the same vmlinuz.
void ExtractBenchmark()
{
    string peer = Manifest(root, "--source")["EXTRACT_VMLINUX"];
    string outElf = Path.Combine(work, "extracted.elf");
    var textpoke = Median(() => Process(cliFile, CliArgs("extract", vmlinuz, "-o", outElf)));
    var textpokeBare = Median(() => Process(cliFile, CliArgs("extract", vmlinuz, "--no-symbols", "-o", outElf)));
    var script = Median(() => Process("sh", "-c", $"'{peer}' '{vmlinuz}' > '{outElf}.peer'"));
    Console.WriteLine("| extract the ELF from the vmlinuz | time | ratio to extract-vmlinux |");
    Console.WriteLine("|---|---|---|");
    Console.WriteLine($"| `scripts/extract-vmlinux` (no symbols) | {script:F0} ms | 1.00 |");
    Console.WriteLine($"| `textpoke extract --no-symbols` | {textpokeBare:F0} ms | {textpokeBare / script:F2} |");
    Console.WriteLine($"| `textpoke extract` (adds .symtab from kallsyms) | {textpoke:F0} ms | {textpoke / script:F2} |");
    Console.WriteLine();
    Console.WriteLine($"Median of {runs} runs after one warm-up.");
}

// textpoke decode against scripts/decode_stacktrace.sh (Debian's linux-source, binutils addr2line) on the Debian crash
// log and its -dbg vmlinux: time, and whether every frame gets the same file:line answers.
void DecodeBenchmark()
{
    string peer = Manifest(root, "--source")["DECODE_STACKTRACE"];
    string vmlinux = manifest["GOLDEN_DBG_VMLINUX"];
    string log = Path.Combine(root, "tests", "data", "boot-logs", "debian-6.1.0-53-amd64-swap_writepage-jmp.log");
    string peerOut = Path.Combine(work, "decode_stacktrace.out");
    var script = Median(() => Process("sh", "-c", $"bash '{peer}' '{vmlinux}' < '{log}' > '{peerOut}'"));
    var textpoke = Median(() => Run(cliFile, CliArgs("decode", log, "--vmlinux", vmlinux), mustSucceed: false));
    var textpokeJson = Median(() => Run(cliFile, CliArgs("decode", log, "--vmlinux", vmlinux, "--json"), mustSucceed: false));

    // Same answers? decode_stacktrace.sh rewrites each frame as "func (file:line file:line ...)".
    var peerFrames = File.ReadAllLines(peerOut).Select(l => System.Text.RegularExpressions.Regex.Match(l, @"\] (\? )?([A-Za-z0-9_.]+) \((.*)\) *$"))
        .Where(m => m.Success && !m.Value.Contains("RIP")).Select(m => (Function: m.Groups[2].Value, Locations: m.Groups[3].Value)).ToList();
    var psi = new ProcessStartInfo(cliFile) { RedirectStandardOutput = true, UseShellExecute = false };
    foreach (var a in CliArgs("decode", log, "--vmlinux", vmlinux, "--json")) psi.ArgumentList.Add(a);
    using var p = System.Diagnostics.Process.Start(psi)!;
    var json = System.Text.Json.JsonDocument.Parse(p.StandardOutput.ReadToEnd());
    p.WaitForExit();
    var ours = json.RootElement.GetProperty("reports")[0].GetProperty("frames").EnumerateArray().Select(f =>
    {
        var locations = new List<string> { $"{f.GetProperty("file").GetString()}:{f.GetProperty("line").GetInt32()}" };
        locations.AddRange(f.GetProperty("inlinedBy").EnumerateArray().Select(l => $"{l.GetProperty("file").GetString()}:{l.GetProperty("line").GetInt32()}"));
        return (Function: f.GetProperty("function").GetString()!, Locations: string.Join(" ", locations));
    }).ToList();
    int same = ours.Zip(peerFrames).Count(z => z.First.Function == z.Second.Function && z.First.Locations == z.Second.Locations);
    Console.WriteLine($"| decode the Debian crash log ({ours.Count} frames) against its -dbg vmlinux ({new FileInfo(vmlinux).Length / (1024 * 1024)} MiB) | " +
        $"time | speed-up | same file:line as decode_stacktrace.sh |");
    Console.WriteLine("|---|---|---|---|");
    Console.WriteLine($"| `scripts/decode_stacktrace.sh vmlinux < log` (nm + addr2line per frame) | {script:F0} ms | 1.0× | — |");
    Console.WriteLine($"| `textpoke decode log --vmlinux vmlinux` (also explains the jump-label BUG) | {textpoke:F0} ms | {script / textpoke:F1}× | {same} " +
        $"of {ours.Count} frames ({peerFrames.Count} in its output) |");
    Console.WriteLine($"| `textpoke decode ... --json` | {textpokeJson:F0} ms | {script / textpokeJson:F1}× | |");
    Console.WriteLine();
    Console.WriteLine($"Median of {runs} runs after one warm-up, page cache warm; textpoke includes .NET start-up.");
}

// Time from start to verdict for a crashing kernel: textpoke boot against what ClangBuiltLinux's boot-utils does, which
// never reads the console and so only learns of a panicking x86 kernel from its timeout (3 minutes by default; QEMU is
// run here as it runs it, without panic=-1, with a 30 s timeout to keep the run short).
void BootBenchmark()
{
    string golden = manifest["GOLDEN_VMLINUZ"];
    string original = Path.Combine(work, "boot-original.elf"), poked = Path.Combine(work, "boot-poked.elf");
    using (var image = KernelImage.Open(golden)) File.WriteAllBytes(original, image.ElfImage.ToArray());
    Process(cliFile, CliArgs("poke", original, "--flip-jump-key", "frontswap_enabled_key", "-o", poked));
    int runsHere = 3;
    double Timed(params string[] a) => Run(a[0], a[1..], mustSucceed: false);
    var crash = Enumerable.Range(0, runsHere).Select(_ => Timed([cliFile, .. CliArgs("boot", poked, "--accel", "tcg")])).Order().ElementAt(1);
    var ok = Enumerable.Range(0, runsHere).Select(_ => Timed([cliFile, .. CliArgs("boot", original, "--accel", "tcg")])).Order().ElementAt(1);
    string initrd = Path.Combine(work, "plain.cpio");
    File.WriteAllBytes(initrd, TextPoke.Boot.Initramfs.Build(TextPoke.Boot.Initramfs.FindBusybox()!, "DONE", []));
    var plain = Timed("timeout", "30", "qemu-system-x86_64", "-kernel", poked, "-initrd", initrd, "-append", "console=ttyS0", "-nographic", "-m", "1024",
        "-accel", "tcg");
    Console.WriteLine("| time to a verdict (Debian 6.1.0-53, TCG) | textpoke boot | boot-utils behaviour (console not read) |");
    Console.WriteLine("|---|---|---|");
    Console.WriteLine($"| seed crash (`frontswap_enabled_key` site flipped) | {crash / 1000:F1} s: crashed, decoded and explained | {plain / 1000:F1} s " +
        $"here (the 30 s timeout); 180 s with boot-utils' default `-t 3m`, then only \"timed out\" |");
    Console.WriteLine($"| unmodified kernel | {ok / 1000:F1} s: booted (success marker) | exit code of QEMU after poweroff |");
    Console.WriteLine();
    Console.WriteLine($"Median of {runsHere} runs (textpoke, including the KVM probe, building the initramfs and CLI start-up); one run of the plain QEMU.");
}

// All tables of an unstripped distro vmlinux, side by side with LLVM BOLT's Linux kernel rewriter reading the same file.
void BoltBenchmark()
{
    string vmlinux = Manifest(root, "--dbg-vmlinux")["CLOUD_DBG_VMLINUX"];
    if (!File.Exists("/usr/bin/llvm-bolt-19")) Process("sh", "-c", "apt-get install -y -qq --no-install-recommends bolt-19 >/dev/null");
    var textpoke = Median(() => Process(cliFile, CliArgs("check", vmlinux)));
    var read = Median(() => Process("cat", vmlinux));
    var sw = Stopwatch.StartNew();
    var psi = new ProcessStartInfo("/usr/bin/llvm-bolt-19") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
    foreach (var a in new[] { vmlinux, "-o", Path.Combine(work, "bolt.out") }) psi.ArgumentList.Add(a);
    using var bolt = System.Diagnostics.Process.Start(psi)!;
    var boltOut = bolt.StandardOutput.ReadToEndAsync();
    var boltErr = bolt.StandardError.ReadToEnd();
    bolt.WaitForExit();
    sw.Stop();
    var parsed = (boltOut.Result + boltErr).Split('\n').Where(l => l.StartsWith("BOLT-INFO: parsed", StringComparison.Ordinal)).ToList();
    var error = (boltOut.Result + boltErr).Split('\n').LastOrDefault(l => l.Contains("error", StringComparison.OrdinalIgnoreCase));
    Console.WriteLine($"| {Path.GetFileName(vmlinux)} ({new FileInfo(vmlinux).Length / (1024 * 1024)} MiB, unstripped) | time | result |");
    Console.WriteLine("|---|---|---|");
    Console.WriteLine($"| `textpoke check` (14 tables) | {textpoke:F0} ms | every table read and checked, 0 findings |");
    Console.WriteLine($"| `cat` of the file | {read:F0} ms | |");
    Console.WriteLine($"| `llvm-bolt-19 vmlinux -o out` | {sw.Elapsed.TotalMilliseconds:F0} ms | exit {bolt.ExitCode}; " +
        $"{string.Join("; ", parsed.Select(p => p["BOLT-INFO: ".Length..]))}{(error != null ? $"; then `{error.Trim()}`" : "")} |");
    Console.WriteLine();
    Console.WriteLine($"textpoke: median of {runs} runs after one warm-up; BOLT: one run.");
}

static string FindRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir != null && !File.Exists(Path.Combine(dir.FullName, "TextPoke.slnx"))) dir = dir.Parent;
    return dir?.FullName ?? throw new InvalidOperationException("run from inside the repository");
}

static Dictionary<string, string> Manifest(string root, string? option = null)
{
    var psi = new ProcessStartInfo(Path.Combine(root, "scripts", "fetch-kernels")) { RedirectStandardOutput = true };
    if (option != null) psi.ArgumentList.Add(option);
    using var p = System.Diagnostics.Process.Start(psi)!;
    var text = p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=', 2)).Where(a => a.Length == 2).ToDictionary(a => a[0], a => a[1]);
}

// check on every era's kernels (Debian 5.10, 6.1, 6.12): the vmlinuz against its own decompressor on the payload, the
// extracted ELF against cat.
void ErasBenchmark()
{
    var kernels = new (string Name, string Key)[]
    {
        ("5.10 generic", "ERA_5_10_GENERIC_VMLINUZ"), ("5.10 cloud", "ERA_5_10_CLOUD_VMLINUZ"), ("6.1 generic", "GENERIC_VMLINUZ"),
        ("6.1 cloud", "CLOUD_VMLINUZ"), ("6.12 generic", "ERA_6_12_GENERIC_VMLINUZ"), ("6.12 cloud", "ERA_6_12_CLOUD_VMLINUZ"),
        ("6.12 rt", "ERA_6_12_RT_VMLINUZ"),
    };
    Console.WriteLine("| kernel | payload | textpoke check vmlinuz | its decompressor on the payload | ratio | check ELF | `cat` ELF | ratio |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|");
    foreach (var (name, key) in kernels)
    {
        string path = manifest[key];
        string zipped = Path.Combine(work, "era-payload"), plain = Path.Combine(work, "era.elf");
        string compression;
        using (var image = KernelImage.Open(path))
        {
            var h = image.BzImageHeader!;
            compression = TextPoke.Images.BzImage.Compression.Name(image.Compression);
            File.WriteAllBytes(zipped, image.Container!.Span(h.ProtectedModeOffset + h.PayloadOffset, h.PayloadLength - 4).ToArray());
            File.WriteAllBytes(plain, image.ElfImage.ToArray());
        }
        string[] tool = compression switch
        {
            "xz" => ["xz", "-dc", "--single-stream", zipped], "zstd" => ["zstd", "-dcq", zipped], "gzip" => ["gzip", "-dc", zipped],
            _ => ["lz4", "-dcq", zipped],
        };
        var decompress = Median(() => Run(tool[0], tool[1..], mustSucceed: false));
        var checkZ = Median(() => Process(cliFile, CliArgs("check", path)));
        var cat = Median(() => Process("cat", plain));
        var checkE = Median(() => Process(cliFile, CliArgs("check", plain)));
        Console.WriteLine($"| {name} | {compression}, {new FileInfo(path).Length / 1024} KiB | {checkZ:F0} ms | `{tool[0]} -d`: {decompress:F0} ms | " +
            $"{checkZ / decompress:F2} | {checkE:F0} ms | {cat:F0} ms | {checkE / cat:F2} |");
    }
    Console.WriteLine();
    Console.WriteLine($"Median of {runs} runs after one warm-up, page cache warm.");
    Console.WriteLine();
}

// boot --verify's comparison: each era's cloud kernel booted once under QEMU qemu64 (TCG), its memory copied out at the
// marker, then the verifier timed in process on that snapshot (from dump to verdict).
void VerifyBenchmark()
{
    Console.WriteLine("| kernel | boot + dump | bytes compared | differing ranges | explained by mechanism | unexplained | dump to verdict |");
    Console.WriteLine("|---|---|---|---|---|---|---|");
    foreach (var (name, key) in new[] { ("5.10 cloud", "ERA_5_10_CLOUD_VMLINUZ"), ("6.1 cloud", "CLOUD_VMLINUZ"), ("6.12 cloud", "ERA_6_12_CLOUD_VMLINUZ") })
    {
        string path = manifest[key];
        var session = TextPoke.Boot.BootSession.Prepare(new TextPoke.Boot.BootSessionRequest(path, Cpus: 2, Accel: "tcg", Verify: true, Cpu: "qemu64"));
        var boot = session.Run()[0];
        if (boot.Memory is not { } memory) throw new InvalidOperationException($"{path}: {boot.MemoryError}");
        using var image = KernelImage.Open(path);
        var symbols = ImageSymbols.Load(image);
        TextPoke.Live.VerifyResult? result = null;
        var time = Median(() =>
        {
            var sw = Stopwatch.StartNew();
            result = TextPoke.Live.TextVerifier.Verify(image, symbols, memory);
            return sw.Elapsed.TotalMilliseconds;
        });
        var by = string.Join(", ", result!.ByMechanism.Select(m => $"{m.Mechanism} {m.Ranges}"));
        Console.WriteLine($"| {name} | {boot.Elapsed.TotalSeconds:F1} s | {result.BytesCompared:N0} | {result.Ranges.Count:N0} | {by} | " +
            $"{result.Unexplained + result.Inconsistent} | {time:F0} ms |");
    }
    Console.WriteLine();
    Console.WriteLine($"Verifier: median of {runs} runs in process after one warm-up, on the memory copied at the marker.");
    Console.WriteLine();
}

