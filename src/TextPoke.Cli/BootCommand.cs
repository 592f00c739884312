using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using TextPoke.Boot;
using TextPoke.Crash;
using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Cli;

static partial class Commands
{
    /// <summary>Exit codes of boot: booted 0, crashed 1, (2: bad input or usage), panicked 3, timed out 4, QEMU failed 5.</summary>
    static int BootExitCode(BootOutcome o) => o switch
    {
        BootOutcome.Booted => 0, BootOutcome.Crashed => 1, BootOutcome.Panicked => 3, BootOutcome.TimedOut => 4, _ => 5,
    };

    public static Command Boot(TextWriter stdout)
    {
        var kernel = new Argument<string>("KERNEL") { Description = "a bzImage/vmlinuz, or an ELF vmlinux with a PVH note (boots fastest under TCG)" };
        var initrd = new Option<string?>("--initrd") { Description = "your own initramfs instead of the default busybox one (then no success marker is known: give --marker)", HelpName = "FILE" };
        var append = new Option<string?>("--append") { Description = $"extra kernel command line, after \"{Qemu.DefaultAppend}\"", HelpName = "ARGS" };
        var timeout = new Option<int>("--timeout") { Description = "give up after S seconds", HelpName = "S", DefaultValueFactory = _ => 120 };
        var silence = new Option<int>("--silence") { Description = "give up when the console says nothing for S seconds", HelpName = "S", DefaultValueFactory = _ => 60 };
        var vmlinux = new Option<string?>("--vmlinux") { Description = "the image to explain a crash with (default: KERNEL itself)", HelpName = "FILE" };
        var log = new Option<string?>("--log") { Description = "write the console log here (default: a file in the temporary directory)", HelpName = "FILE" };
        var run = new Option<string[]>("--run") { Description = "a shell command for the default initramfs to run before the marker (repeatable), e.g. to enable a static key through debugfs", HelpName = "CMD" };
        var marker = new Option<string?>("--marker") { Description = "the line that means success (default: a unique marker the default initramfs prints)", HelpName = "TEXT" };
        var repeat = new Option<int>("--repeat") { Description = "boot N times and count the failures", HelpName = "N", DefaultValueFactory = _ => 1 };
        var memory = new Option<int>("--memory", "-m") { Description = "guest memory in MiB", HelpName = "MB", DefaultValueFactory = _ => 1024 };
        var smp = new Option<int>("--smp") { Description = "guest CPUs", HelpName = "N", DefaultValueFactory = _ => 1 };
        var accel = new Option<string>("--accel") { Description = "kvm, tcg, or auto (KVM when it actually works here)", DefaultValueFactory = _ => "auto" };
        var live = new Option<bool>("--live") { Description = "print the console as it comes" };
        var json = JsonOption();
        var command = new Command("boot", "Boot KERNEL in QEMU, watch its serial console, stop at the first crash or at the success marker, and decode what happened.")
        {
            kernel, initrd, append, timeout, silence, vmlinux, log, run, marker, repeat, memory, smp, accel, live, json,
        };
        command.SetAction((result, cancel) =>
        {
            string kernelPath = result.GetValue(kernel)!;
            string kind = Qemu.Bootable(kernelPath);
            int times = result.GetValue(repeat);
            if (times < 1) throw new UsageException("--repeat needs at least 1");
            if (result.GetValue(timeout) < 1) throw new UsageException("--timeout needs at least 1 second");
            string? userInitrd = result.GetValue(initrd);
            if (userInitrd != null && !File.Exists(userInitrd)) throw new ImageFormatException(userInitrd, "cannot open: no such file");
            string markerText = result.GetValue(marker) ?? $"TEXTPOKE-BOOTED-{Guid.NewGuid():N}"[..32];
            string? busybox = null;
            if (userInitrd == null && (busybox = Initramfs.FindBusybox()) == null)
                throw new UsageException("no static busybox (Debian package busybox-static) for the default initramfs; install it or pass --initrd FILE");
            string binary = "qemu-system-x86_64";
            string accelerator = result.GetValue(accel)!;
            string? note = null;
            if (accelerator == "auto")
            {
                var (usable, why) = Qemu.ProbeKvm(binary);
                accelerator = usable ? "kvm" : "tcg";
                if (!usable) note = $"KVM unusable here ({why}): using TCG";
            }
            else if (accelerator is not ("kvm" or "tcg")) throw new UsageException($"--accel {accelerator}: use kvm, tcg or auto");
            if (note != null && !result.GetValue(json)) stdout.WriteLine($"note     {note}");

            var work = Directory.CreateTempSubdirectory("textpoke-boot");
            try
            {
                string initrdPath = userInitrd ?? Path.Combine(work.FullName, "initramfs.cpio");
                if (userInitrd == null) File.WriteAllBytes(initrdPath, Initramfs.Build(busybox!, markerText, result.GetValue(run) ?? []));
                string appendText = Qemu.DefaultAppend + (result.GetValue(append) is { Length: > 0 } extra ? " " + extra : "");
                var results = new List<BootResult>();
                using var interrupt = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                ConsoleCancelEventHandler onCtrlC = (_, e) => { e.Cancel = true; interrupt.Cancel(); BootRunner.KillAll(); };
                Console.CancelKeyPress += onCtrlC;
                try
                {
                    for (int i = 0; i < times && !interrupt.IsCancellationRequested; i++)
                    {
                        string logPath = result.GetValue(log) is { } l ? (times == 1 ? l : $"{l}.{i + 1}") : Path.Combine(Path.GetTempPath(), $"textpoke-boot-{Environment.ProcessId}-{i + 1}.log");
                        var request = new BootRequest(new QemuOptions(kernelPath, initrdPath, appendText, result.GetValue(memory), result.GetValue(smp), accelerator, binary),
                            markerText, TimeSpan.FromSeconds(result.GetValue(timeout)), TimeSpan.FromSeconds(Math.Min(result.GetValue(silence), result.GetValue(timeout))), logPath,
                            MarkerKnown: userInitrd == null || result.GetValue(marker) != null);
                        using var progress = BootProgress.Start(result.GetValue(live) || result.GetValue(json) ? null : stdout, times > 1 ? $"boot {i + 1}/{times}" : "boot");
                        var r = BootRunner.Run(request, line =>
                        {
                            if (result.GetValue(live) && !result.GetValue(json)) { stdout.WriteLine(line); stdout.Flush(); }
                            progress?.Line(line);
                        }, interrupt.Token);
                        progress?.Dispose();
                        results.Add(r);
                    }
                }
                finally
                {
                    Console.CancelKeyPress -= onCtrlC;
                }
                string explainWith = result.GetValue(vmlinux) ?? kernelPath;
                if (result.GetValue(json)) BootJson(stdout, kernelPath, kind, accelerator, note, results, explainWith);
                else BootText(stdout, kernelPath, kind, accelerator, results, explainWith);
                var first = results.FirstOrDefault(r => r.Outcome != BootOutcome.Booted) ?? results[0];
                return Task.FromResult(BootExitCode(first.Outcome));
            }
            finally
            {
                try { work.Delete(recursive: true); } catch (IOException) { }
            }
        });
        return command;
    }

    static void BootText(TextWriter o, string kernel, string kind, string accelerator, List<BootResult> results, string explainWith)
    {
        using var explainer = new SiteExplainer(explainWith);
        o.WriteLine($"kernel   {kernel} ({kind}), {accelerator.ToUpperInvariant()}");
        if (results.Count > 0) o.WriteLine($"qemu     {string.Join(' ', results[0].Command.Select(a => a.Contains(' ') ? $"\"{a}\"" : a))}");
        foreach (var (r, i) in results.Select((r, i) => (r, i)))
        {
            o.WriteLine();
            o.WriteLine($"{(results.Count > 1 ? $"boot {i + 1}: " : "")}{Outcome(r.Outcome)} after {r.Elapsed.TotalSeconds:0.0} s: {r.Reason}");
            o.WriteLine($"log      {r.LogPath} ({r.Lines.Count} lines)");
            foreach (var report in r.Reports)
            {
                o.WriteLine();
                ReportOutput.Text(o, report, explainer.Explain(report), CodeDisassembly.Syntax.Att, maxFrames: 16);
            }
        }
        if (results.Count > 1)
        {
            o.WriteLine();
            o.WriteLine($"summary  {results.Count} boots: " + string.Join(", ", results.GroupBy(r => r.Outcome).Select(g => $"{g.Count()} {Outcome(g.Key)}")) +
                $"; {results.Count(r => r.Outcome != BootOutcome.Booted)} failed");
        }
    }

    static string Outcome(BootOutcome o) => o switch
    {
        BootOutcome.Booted => "booted", BootOutcome.Crashed => "crashed", BootOutcome.Panicked => "panicked",
        BootOutcome.TimedOut => "timed out", _ => "QEMU failed",
    };

    static void BootJson(TextWriter o, string kernel, string kind, string accelerator, string? note, List<BootResult> results, string explainWith)
    {
        using var explainer = new SiteExplainer(explainWith);
        var doc = new
        {
            kernel, kind, accelerator, note,
            boots = results.Select(r => new
            {
                outcome = Outcome(r.Outcome), reason = r.Reason, seconds = Math.Round(r.Elapsed.TotalSeconds, 2), log = r.LogPath, lines = r.Lines.Count,
                qemuExitCode = r.QemuExitCode, qemuError = r.QemuError.Length == 0 ? null : r.QemuError, command = r.Command,
                reports = r.Reports.Select(x => ReportOutput.Json(x, explainer.Explain(x), CodeDisassembly.Syntax.Att)),
            }),
            failed = results.Count(r => r.Outcome != BootOutcome.Booted),
        };
        o.WriteLine(JsonSerializer.Serialize(doc, JsonOutput.Options));
    }
}

/// <summary>A one-line progress display with elapsed time and the last console line, on terminals only (never in CI).</summary>
sealed class BootProgress : IDisposable
{
    readonly Stopwatch _clock = Stopwatch.StartNew();
    readonly Timer _timer;
    readonly string _label;
    string _last = "";
    int _frame;
    bool _done;

    BootProgress(string label)
    {
        _label = label;
        _timer = new Timer(_ => Draw(), null, 0, 150);
    }

    public static BootProgress? Start(TextWriter? output, string label) =>
        output == null || Console.IsOutputRedirected || Environment.GetEnvironmentVariable("CI") is { Length: > 0 } and not "false" ? null : new BootProgress(label);

    public void Line(string line) => _last = ConsoleLog.Strip(line);

    void Draw()
    {
        if (_done) return;
        const string spin = "|/-\\";
        var text = $"\r{spin[_frame++ % 4]} {_label} {_clock.Elapsed.TotalSeconds,5:0.0} s  {_last}";
        int width = Math.Max(40, Console.IsOutputRedirected ? 100 : Console.WindowWidth - 1);
        lock (this) Console.Out.Write(text.Length > width ? text[..width] : text.PadRight(width));
    }

    public void Dispose()
    {
        if (_done) return;
        _done = true;
        _timer.Dispose();
        lock (this) Console.Out.Write("\r" + new string(' ', Math.Max(40, Console.IsOutputRedirected ? 100 : Console.WindowWidth - 1)) + "\r");
    }
}
