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
string vmlinuz = args.Length > 0 ? args[0] : Manifest(root)["GENERIC_VMLINUZ"];
int runs = args.Length > 1 ? int.Parse(args[1]) : 7;
// The CLI as users run it: ./textpoke builds it (ReadyToRun) into .build/textpoke.
Process(Path.Combine(root, "textpoke"), "--help");
string cli = Path.Combine(root, ".build", "textpoke", "textpoke.dll");

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

double Process(string file, params string[] arguments)
{
    var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
    foreach (var a in arguments) psi.ArgumentList.Add(a);
    var sw = Stopwatch.StartNew();
    using var p = System.Diagnostics.Process.Start(psi)!;
    p.StandardOutput.BaseStream.CopyTo(Stream.Null);
    p.StandardError.ReadToEnd();
    p.WaitForExit();
    sw.Stop();
    if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} exited {p.ExitCode}");
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

var xz = Median(() => Process("xz", "-dc", "--single-stream", payload));
var cliZ = Median(() => Process("dotnet", cli, "check", vmlinuz));
var libZ = Median(() => InProcess(vmlinuz));
var cat = Median(() => Process("cat", elf));
var read = Median(() => ReadFile(elf));
var cliE = Median(() => Process("dotnet", cli, "check", elf));
var libE = Median(() => InProcess(elf));
var nop = Median(() => Process("dotnet", cli, "--help"));

Console.WriteLine($"| input | textpoke check (CLI) | textpoke check (library, in process) | unavoidable work | ratio CLI / work | ratio library / work |");
Console.WriteLine($"|---|---|---|---|---|---|");
Console.WriteLine($"| {Path.GetFileName(vmlinuz)} ({new FileInfo(vmlinuz).Length / 1024} KiB, xz) | {cliZ:F0} ms | {libZ:F0} ms | `xz -dc` of the payload: {xz:F0} ms | {cliZ / xz:F2} | {libZ / xz:F2} |");
Console.WriteLine($"| extracted ELF ({new FileInfo(elf).Length / 1024 / 1024} MiB) | {cliE:F0} ms | {libE:F0} ms | `cat` of the file: {cat:F0} ms; ReadAllBytes: {read:F0} ms | {cliE / cat:F2} | {libE / read:F2} |");
Console.WriteLine();
Console.WriteLine($"Median of {runs} runs after one warm-up, page cache warm. CLI start-up alone (`textpoke --help`): {nop:F0} ms.");
Directory.Delete(work, true);

static string FindRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir != null && !File.Exists(Path.Combine(dir.FullName, "TextPoke.slnx"))) dir = dir.Parent;
    return dir?.FullName ?? throw new InvalidOperationException("run from inside the repository");
}

static Dictionary<string, string> Manifest(string root)
{
    var psi = new ProcessStartInfo(Path.Combine(root, "scripts", "fetch-kernels")) { RedirectStandardOutput = true };
    using var p = System.Diagnostics.Process.Start(psi)!;
    var text = p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=', 2)).ToDictionary(a => a[0], a => a[1]);
}
