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

    public static Command Boot(TextWriter stdout, TextWriter stderr)
    {
        var kernel = new Argument<string>("KERNEL") { Description = "a bzImage/vmlinuz, or an ELF vmlinux with a PVH note (boots fastest under TCG)" };
        var initrd = new Option<string?>("--initrd") { Description = "your own initramfs instead of the default busybox one (then no success marker is " +
            "known: give --marker)", HelpName = "FILE" };
        var append = new Option<string?>("--append") { Description = $"extra kernel command line, after \"{Qemu.DefaultAppend}\"", HelpName = "ARGS" };
        var timeout = new Option<int>("--timeout") { Description = "give up after S seconds", HelpName = "S", DefaultValueFactory = _ => 120 };
        var silence = new Option<int>("--silence") { Description = "give up when the console says nothing for S seconds", HelpName = "S",
            DefaultValueFactory = _ => 60 };
        var vmlinux = new Option<string?>("--vmlinux") { Description = "the image to explain a crash with (default: KERNEL itself)", HelpName = "FILE" };
        var log = new Option<string?>("--log") { Description = "write the console log here (default: boot-N.log in a new private folder of the temporary " +
            "directory, kept)", HelpName = "FILE" };
        var run = new Option<string[]>("--run") { Description = "a shell command for the default initramfs to run before the marker (repeatable), e.g. to " +
            "enable a static key through debugfs", HelpName = "CMD" };
        var marker = new Option<string?>("--marker") { Description = "the line that means success (default: a unique marker the default initramfs prints)",
            HelpName = "TEXT" };
        var repeat = new Option<int>("--repeat") { Description = "boot N times and count the failures", HelpName = "N", DefaultValueFactory = _ => 1 };
        var memory = new Option<int>("--memory", "-m") { Description = "guest memory in MiB", HelpName = "MB", DefaultValueFactory = _ => 1024 };
        var smp = new Option<int>("--smp") { Description = "guest CPUs", HelpName = "N", DefaultValueFactory = _ => 1 };
        var accel = new Option<string>("--accel") { Description = "kvm, tcg, or auto (KVM when it actually works here)", DefaultValueFactory = _ => "auto" };
        var live = new Option<bool>("--live") { Description = "print the console as it comes" };
        var verify = new Option<bool>("--verify") { Description = "once booted, stop the guest, read its kernel text and data through the QEMU monitor " +
            "and explain every byte that differs from the emulated boot (as textpoke verify does; adds nokaslr); exit 1 when something is unexplained" };
        var inject = new Option<string[]>("--inject") { Description = "with --verify: once booted, write bytes into the guest's memory through QEMU's GDB " +
            "stub before it is read (a planted hook or flipped site for --verify to find), e.g. ksys_write+0x10=cc (repeatable)", HelpName = "WHERE=HEX" };
        var cpu = new Option<string?>("--cpu") { Description = "the QEMU CPU model (-cpu), e.g. qemu64, max, Skylake-Client (default: QEMU's, or host " +
            "with KVM)", HelpName = "MODEL" };
        var json = JsonOption();
        var format = FormatOption("a test case per boot, failing with its outcome and reports");
        var command = new Command("boot",
            "Boot KERNEL in QEMU, watch its serial console, stop at the first crash or at the success marker, and decode what happened.")
        {
            kernel, initrd, append, timeout, silence, vmlinux, log, run, marker, repeat, memory, smp, accel, cpu, live, verify, inject, json, format,
        };
        command.SetAction((result, cancel) =>
        {
            string how = FormatOf(result, format, json);
            string kernelPath = result.GetValue(kernel)!;
            var session = BootSession.Prepare(new BootSessionRequest(kernelPath, result.GetValue(initrd), result.GetValue(marker), result.GetValue(run),
                result.GetValue(append), result.GetValue(timeout), result.GetValue(silence), result.GetValue(log), result.GetValue(repeat),
                result.GetValue(memory), result.GetValue(smp), result.GetValue(accel)!, Verify: result.GetValue(verify), Cpu: result.GetValue(cpu),
                Inject: result.GetValue(inject)));
            bool machine = how != "text"; // json, sarif, junit: nothing else on standard output
            if (session.Note != null && !machine) stdout.WriteLine($"note     {session.Note}");
            using var interrupt = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            ConsoleCancelEventHandler onCtrlC = (_, e) => { e.Cancel = true; interrupt.Cancel(); BootRunner.KillAll(); };
            Console.CancelKeyPress += onCtrlC;
            IReadOnlyList<BootResult> results;
            try
            {
                results = session.Run(new ConsoleBootObserver(stdout, stderr, live: result.GetValue(live) && !machine, progress: !result.GetValue(live)
                    && !machine), interrupt.Token);
            }
            finally
            {
                Console.CancelKeyPress -= onCtrlC;
            }
            string explainWith = result.GetValue(vmlinux) ?? kernelPath;
            var list = results.ToList();
            if (list.Count == 0) throw new UsageException("interrupted before the first boot");
            var verified = result.GetValue(verify) ? VerifyBoots(kernelPath, list) : null;
            switch (how)
            {
                case "json": BootJson(stdout, kernelPath, session.Kind, session.Accelerator, session.Note, list, explainWith, verified); break;
                case "sarif": BootSarif(stdout, list, explainWith); break;
                case "junit": BootJUnit(stdout, kernelPath, list, explainWith); break;
                default: BootText(stdout, kernelPath, session.Kind, session.Accelerator, list, explainWith, verified); break;
            }
            var first = list.FirstOrDefault(r => r.Outcome != BootOutcome.Booted) ?? list[0];
            int code = BootExitCode(first.Outcome);
            if (code == 0 && verified != null)
            {
                if (verified.Any(v => v.Result == null)) code = ExitCodes.BadInput; // asked to verify, could not
                else if (verified.Any(v => v.Result!.Unexplained + v.Result.Inconsistent > 0)) code = ExitCodes.Findings;
            }
            return Task.FromResult(code);
        });
        return command;
    }

    /// <summary>One verification per boot: its result and its JSON document, or why there is none.</summary>
    internal sealed record BootVerification(Live.VerifyResult? Result, VerifyJson? Document, string? Error);

    // The kernel is opened once for every boot's verification, and the JSON documents made while it is open.
    static List<BootVerification> VerifyBoots(string kernel, List<BootResult> results)
    {
        using var image = KernelImage.Open(kernel);
        var symbols = ImageSymbols.Load(image);
        return results.Select(r =>
        {
            if (r.Memory is not { } memory) return new BootVerification(null, null, r.MemoryError ?? "no guest memory was read");
            var result = Live.TextVerifier.Verify(image, symbols, memory);
            return new BootVerification(result, JsonOutput.VerifyDocument(image, symbols, result), null);
        }).ToList();
    }

    static void BootText(TextWriter o, string kernel, string kind, string accelerator, List<BootResult> results, string explainWith,
        List<BootVerification>? verified = null)
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
            if (verified?[i] is { } v)
            {
                o.WriteLine();
                if (v.Result is { } vr) TextOutput.Verify(o, kernel, vr, verbose: false);
                else o.WriteLine($"verify   not done: {v.Error}");
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

    /// <summary>Every boot's reports as SARIF results at their lines in that boot's log; a boot that failed without a report is an error
    /// notification.</summary>
    internal static void BootSarif(TextWriter o, List<BootResult> results, string explainWith)
    {
        using var explainer = new SiteExplainer(explainWith);
        var reports = results.SelectMany(r => r.Reports.Select(x => new CiOutput.DecodedReport(x, explainer.Explain(x), null, r.LogPath))).ToList();
        var failures = results.Select((r, i) => (r, i)).Where(x => x.r.Outcome != BootOutcome.Booted && x.r.Reports.Count == 0)
            .Select(x => $"boot {x.i + 1} {Outcome(x.r.Outcome)}: {x.r.Reason} (log {x.r.LogPath})").ToList();
        CiOutput.SarifDecode(o, results[0].LogPath, reports, failures);
    }

    /// <summary>One JUnit test case per boot: passed when it booted, else failing with its outcome, reason and every report's lines.</summary>
    internal static void BootJUnit(TextWriter o, string kernel, List<BootResult> results, string explainWith)
    {
        using var explainer = new SiteExplainer(explainWith);
        var cases = results.Select((r, i) =>
        {
            string name = $"{kernel}: boot {i + 1}";
            if (r.Outcome == BootOutcome.Booted) return new CiOutput.TestCase(name);
            if (r.Outcome == BootOutcome.QemuFailed) return new CiOutput.TestCase(name, Error: $"QEMU failed: {r.Reason}");
            var body = string.Join("\n\n", r.Reports.Select(x => string.Join("\n", x.Lines.Concat(explainer.Explain(x).Prepend(""))))
                .Prepend($"log {r.LogPath}"));
            return new CiOutput.TestCase(name, $"{Outcome(r.Outcome)}: {r.Reason}", r.Reports.Count > 0 ? r.Reports[0].Title : Outcome(r.Outcome), body);
        }).ToList();
        CiOutput.JUnit(o, "textpoke boot", "textpoke.boot", cases);
    }

    static void BootJson(TextWriter o, string kernel, string kind, string accelerator, string? note, List<BootResult> results, string explainWith,
        List<BootVerification>? verified = null)
    {
        using var explainer = new SiteExplainer(explainWith);
        JsonOutput.Boot(o, new BootJson(kernel, kind, accelerator, note,
            results.Select((r, i) => new BootRunJson(Outcome(r.Outcome), r.Reason, Math.Round(r.Elapsed.TotalSeconds, 2), r.LogPath, r.Lines.Count,
                r.QemuExitCode, r.QemuError.Length == 0 ? null : r.QemuError, r.Command,
                r.Reports.Select(x => ReportOutput.Json(x, explainer.Explain(x), CodeDisassembly.Syntax.Att)).ToList(),
                verified?[i].Document, verified?[i].Error)).ToList(),
            results.Count(r => r.Outcome != BootOutcome.Booted)));
    }
}

/// <summary>The console side of a boot session: the console lines as they come (--live), or a progress line on terminals.</summary>
sealed class ConsoleBootObserver(TextWriter stdout, TextWriter stderr, bool live, bool progress) : IBootObserver
{
    BootProgress? _progress;

    public void Started(int index, int count) => _progress = progress ? BootProgress.Start(stderr, count > 1 ? $"boot {index + 1}/{count}" : "boot") : null;

    public void Line(string line)
    {
        if (live) { stdout.WriteLine(line); stdout.Flush(); }
        _progress?.Line(line);
    }

    public void Finished(BootResult result)
    {
        _progress?.Dispose();
        _progress = null;
    }
}

/// <summary>A boot's progress: spinner, elapsed time and the last console line, redrawn on a <see cref="ProgressLine"/>.</summary>
sealed class BootProgress : IDisposable
{
    readonly Stopwatch _clock = Stopwatch.StartNew();
    readonly Timer _timer;
    readonly ProgressLine _line;
    readonly string _label;
    string _last = "";
    int _frame;

    BootProgress(ProgressLine line, string label)
    {
        _line = line;
        _label = label;
        _timer = new Timer(_ => Draw(), null, 0, 150);
    }

    public static BootProgress? Start(TextWriter output, string label) => ProgressLine.Start(output) is { } line ? new BootProgress(line, label) : null;

    public void Line(string line) => _last = ConsoleLog.Strip(line);

    void Draw()
    {
        const string spin = "|/-\\";
        _line.Show($"{spin[_frame++ % 4]} {_label} {_clock.Elapsed.TotalSeconds,5:0.0} s  {_last}");
    }

    public void Dispose()
    {
        _timer.Dispose();
        _line.Dispose();
    }
}
