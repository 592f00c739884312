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

    public List<string> Explain(CrashReport report)
    {
        if (imagePath == null || !JumpLabelExplainer.Applies(report)) return [];
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
        return error != null ? [error] : JumpLabelExplainer.Explain(report, image, symbols)?.Lines.ToList() ?? [];
    }

    public void Dispose() => image?.Dispose();
}

/// <summary>One crash report as text and as JSON, shared by boot and decode (shape in docs/json.md).</summary>
static class ReportOutput
{
    internal static void Text(TextWriter o, CrashReport report, IReadOnlyList<string> explanation, CodeDisassembly.Syntax syntax, int maxFrames = int.MaxValue)
    {
        o.WriteLine($"report   {report.Title}  [{report.Type}{(report.Panicked ? ", panicked" : "")}{(report.Corrupted ? $", corrupted: {report.CorruptedReason}" : "")}]");
        o.WriteLine($"         log lines {report.StartLine + 1}-{report.EndLine + 1}{(report.Frame != null ? $", guilty function {report.Frame}" : "")}");
        if (report.Cpu != null) o.WriteLine($"         CPU {report.Cpu}, PID {report.Pid}, Comm {report.Comm}, kernel {report.KernelVersion}");
        if (report.Rip != null) o.WriteLine($"         RIP {report.Rip}");
        foreach (var line in report.Lines.TakeWhile(l => !l.StartsWith("CPU: ", StringComparison.Ordinal)).Take(6)) o.WriteLine($"  | {line}");
        if (report.Code != null && CodeDisassembly.Disassemble(report.Code, syntax) is { Count: > 0 } code)
        {
            o.WriteLine("         code:");
            foreach (var line in CodeDisassembly.Format(code)) o.WriteLine($"         {line}");
        }
        if (report.Frames.Count > 0)
        {
            o.WriteLine("         call trace:");
            foreach (var f in report.Frames.Take(maxFrames)) o.WriteLine($"           {(f.Reliable ? "" : "? ")}{f.Function}+0x{f.Offset:x}/0x{f.Size:x}{(f.Module != null ? $" [{f.Module}]" : "")}");
            if (report.Frames.Count > maxFrames) o.WriteLine($"           ... {report.Frames.Count - maxFrames} more");
        }
        if (explanation.Count > 0)
        {
            o.WriteLine("explain  jump label:");
            foreach (var line in explanation) o.WriteLine($"         {line}");
        }
    }

    internal static object Json(CrashReport x, IReadOnlyList<string> explanation, CodeDisassembly.Syntax syntax) => new
    {
        title = x.Title, altTitles = ConsoleLog.AltTitles(x).ToList(), type = x.Type, category = CrashTypes.Of(x.Title),
        corrupted = x.Corrupted, corruptedReason = x.CorruptedReason, panicked = x.Panicked, frame = x.Frame,
        startLine = x.StartLine, endLine = x.EndLine, cpu = x.Cpu, pid = x.Pid, comm = x.Comm, kernelVersion = x.KernelVersion, rip = x.Rip, code = x.Code,
        codeDisassembly = x.Code == null ? [] : CodeDisassembly.Disassemble(x.Code, syntax)
            .Select(i => new { offset = i.Offset, bytes = i.Bytes, text = i.Text, faulting = i.Faulting, invalid = i.Invalid }).ToList(),
        frames = x.Frames.Select(f => new { function = f.Function, offset = f.Offset, size = f.Size, module = f.Module, reliable = f.Reliable }),
        explanation,
    };
}
