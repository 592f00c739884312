using TextPoke.Crash;
using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Cli;

/// <summary>
/// What an image says about jump-label BUG reports. The image is opened (and a vmlinuz decompressed) once, at the first
/// report that needs it, however many reports there are.
/// </summary>
sealed class SiteExplainer(string? imagePath) : IDisposable
{
    KernelImage? image;
    ImageSymbols? symbols;
    string? error;
    bool borrowed;

    /// <summary>Explains with an image that is already open (decode's --vmlinux, opened once for symbolization too).</summary>
    public SiteExplainer(KernelImage openImage, ImageSymbols openSymbols) : this(openImage.Path)
    {
        image = openImage;
        symbols = openSymbols;
        borrowed = true;
    }

    /// <summary>What the image says about a report: a jump-label BUG, or another self-patching failure (static call,
    /// ftrace, return thunk, alternatives). <paramref name="log"/> (the log's lines) gives the lines printed before the
    /// report, where WARN messages go.</summary>
    public List<string> Explain(CrashReport report, IReadOnlyList<string>? log = null)
    {
        if (imagePath == null) return [];
        var before = Before(report, log);
        bool jump = JumpLabelExplainer.Applies(report);
        if (!jump && PatchSiteExplainer.Applies(report, before) == null) return [];
        if (image == null && error == null)
        {
            try
            {
                image = KernelImage.Open(imagePath);
                symbols = ImageSymbols.Load(image, lookBeside: false);
            }
            catch (ImageFormatException e)
            {
                image?.Dispose();
                image = null;
                error = $"cannot look the site up: {e.Message}";
            }
        }
        if (error != null) return [error];
        return jump ? JumpLabelExplainer.Explain(report, image, symbols)?.Lines.ToList() ?? []
            : PatchSiteExplainer.Explain(report, before, image!, symbols!).ToList();
    }

    /// <summary>The dozen log lines before a report, where WARN messages are printed.</summary>
    static List<string> Before(CrashReport report, IReadOnlyList<string>? log) =>
        log == null ? [] : log.Skip(Math.Max(0, report.StartLine - 12)).Take(Math.Min(12, report.StartLine)).Select(ConsoleLog.Strip).ToList();

    /// <summary>The heading of an explanation: which mechanism it is about.</summary>
    public static string Topic(CrashReport report, IReadOnlyList<string>? log) =>
        JumpLabelExplainer.Applies(report) ? "jump label"
        : PatchSiteExplainer.Applies(report, Before(report, log)) switch
        {
            PatchSiteExplainer.Kind.StaticCall => "static call",
            PatchSiteExplainer.Kind.Ftrace => "ftrace",
            PatchSiteExplainer.Kind.ReturnThunk => "return thunk",
            PatchSiteExplainer.Kind.Alternatives => "alternatives",
            _ => "site",
        };

    public void Dispose()
    {
        if (!borrowed) image?.Dispose();
    }
}

/// <summary>One crash report as text and as JSON, shared by boot and decode (shape in docs/json.md).</summary>
static class ReportOutput
{
    internal static void Text(TextWriter o, CrashReport report, IReadOnlyList<string> explanation, CodeDisassembly.Syntax syntax, int maxFrames = int.MaxValue,
        Symbolizer? source = null, string topic = "jump label")
    {
        o.WriteLine($"report   {report.Title}  [{report.Type}{(report.Panicked ? ", panicked" : "")}" +
            $"{(report.Corrupted ? $", corrupted: {report.CorruptedReason}" : "")}]");
        o.WriteLine($"         log lines {report.StartLine + 1}-{report.EndLine + 1}{(report.Frame != null ? $", guilty function {report.Frame}" : "")}");
        if (report.Cpu != null) o.WriteLine($"         CPU {report.Cpu}, PID {report.Pid}, Comm {report.Comm}, kernel {report.KernelVersion}");
        if (report.Rip != null)
        {
            o.WriteLine($"         RIP {report.Rip}");
            if (ResolveRip(source, report) is { } rip) WriteSource(o, rip, "             ");
        }
        foreach (var line in report.Lines.TakeWhile(l => !l.StartsWith("CPU: ", StringComparison.Ordinal)).Take(6)) o.WriteLine($"  | {line}");
        if (report.Code != null && CodeDisassembly.Disassemble(report.Code, syntax) is { Count: > 0 } code)
        {
            o.WriteLine("         code:");
            foreach (var line in CodeDisassembly.Format(code)) o.WriteLine($"         {line}");
        }
        if (report.Frames.Count > 0)
        {
            o.WriteLine("         call trace:");
            foreach (var f in report.Frames.Take(maxFrames))
            {
                string frame = $"{(f.Reliable ? "" : "? ")}{f.Function}+0x{f.Offset:x}/0x{f.Size:x}{(f.Module != null ? $" [{f.Module}]" : "")}";
                // Rust symbols are printed mangled by the kernel: the readable name follows in braces.
                if (RustDemangler.Demangle(f.Function) is { } rust) frame += $" {{{rust}}}";
                var resolved = source?.Resolve(f.Function, f.Offset, f.Size, f.Module);
                if (resolved?.Innermost is not { File: not null } first) { o.WriteLine($"           {frame}"); continue; }
                // decode_stacktrace.sh style: the frame, then where it is; inlined code gets one line per level, each
                // with the function whose source it is.
                string indent = new(' ', 11 + frame.Length + 1);
                o.WriteLine($"           {frame} {first.Location}{(resolved.Chain.Count > 1 ? $" ({first.Function})" : "")}");
                foreach (var level in resolved.Chain.Skip(1)) o.WriteLine($"{indent}{level.Location} ({level.Function})");
                if (resolved.Problem != null) o.WriteLine($"{indent}! {resolved.Problem}");
            }
            if (report.Frames.Count > maxFrames) o.WriteLine($"           ... {report.Frames.Count - maxFrames} more");
        }
        if (explanation.Count > 0)
        {
            o.WriteLine($"explain  {topic}:");
            foreach (var line in explanation) o.WriteLine($"         {line}");
        }
    }

    /// <summary>The guilty frame resolved to source: the call-trace frame the title names, else the RIP.</summary>
    internal static SymbolizedFrame? Guilty(Symbolizer source, CrashReport report) =>
        report.Frames.FirstOrDefault(f => f.Function == report.Frame) is { } f ? source.Resolve(f.Function, f.Offset, f.Size, f.Module)
            : ResolveRip(source, report);

    /// <summary>The RIP line's location with its module ("veth_xmit+0x40/0x270 [veth]"), which CrashReport.Rip leaves out.</summary>
    static SymbolizedFrame? ResolveRip(Symbolizer? source, CrashReport report)
    {
        if (source == null || report.Rip == null) return null;
        foreach (var line in report.Lines)
        {
            int at = line.IndexOf(report.Rip, StringComparison.Ordinal);
            if (line.StartsWith("RIP: ", StringComparison.Ordinal) && at > 0) return source.Resolve(line[at..]);
        }
        return source.Resolve(report.Rip);
    }

    static void WriteSource(TextWriter o, SymbolizedFrame resolved, string indent)
    {
        foreach (var level in resolved.Chain) o.WriteLine($"{indent}{level.Location} ({level.Function})");
        if (resolved.Problem != null) o.WriteLine($"{indent}! {resolved.Problem}");
    }

    /// <summary>file/line of the innermost source location and the functions it is inlined into, for JSON.</summary>
    static SourceJson? Source(SymbolizedFrame? r) => r?.Innermost is not { } first ? null : new(
        $"0x{r.Address:x16}", first.File, first.Line, first.Discriminator == 0 ? null : first.Discriminator, first.Function, Inlined(r), r.Problem);

    static List<InlinedJson> Inlined(SymbolizedFrame r) => r.Chain.Skip(1).Select(l => new InlinedJson(l.Function, l.File, l.Line)).ToList();

    internal static ReportJson Json(CrashReport x, IReadOnlyList<string> explanation, CodeDisassembly.Syntax syntax, Symbolizer? source = null) => new(
        x.Title, ConsoleLog.AltTitles(x).ToList(), x.Type, CrashTypes.Of(x.Title),
        x.Corrupted, x.CorruptedReason, x.Panicked, x.Frame, x.RawFrame,
        x.StartLine, x.EndLine, x.Cpu, x.Pid, x.Comm, x.KernelVersion, x.Rip, x.Code,
        x.Code == null ? [] : CodeDisassembly.Disassemble(x.Code, syntax)
            .Select(i => new CodeInstructionJson(i.Offset, i.Bytes, i.Text, i.Faulting, i.Invalid)).ToList(),
        Source(ResolveRip(source, x)),
        x.Frames.Select(f =>
        {
            var r = source?.Resolve(f.Function, f.Offset, f.Size, f.Module);
            var first = r?.Innermost;
            return new FrameJson(
                f.Function, RustDemangler.Demangle(f.Function), f.Offset, f.Size, f.Module, f.Reliable,
                f.Address is { } a ? $"0x{a:x16}" : null,
                r is { } resolved ? $"0x{resolved.Address:x16}" : null,
                first?.File, first?.File == null ? null : first.Line, first?.Function,
                r == null || first?.File == null ? null : Inlined(r),
                r?.Problem);
        }).ToList(),
        explanation);
}
