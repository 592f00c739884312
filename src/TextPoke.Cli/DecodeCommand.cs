using System.CommandLine;
using System.Text;
using System.Text.Json;
using TextPoke.Crash;
using TextPoke.Images;

namespace TextPoke.Cli;

static partial class Commands
{
    /// <summary>Logs larger than this are refused rather than read into memory.</summary>
    const long MaxLogBytes = 1L << 30;

    public static Command Decode(TextWriter stdout)
    {
        var log = new Argument<string>("LOG") { Description = "a kernel console log (dmesg, serial console, CI log); - or nothing reads standard input",
            DefaultValueFactory = _ => "-" };
        var vmlinux = new Option<string?>("--vmlinux") { Description = "the kernel image the log came from: frames get file:line and inline chains from its " +
            "DWARF (an unstripped vmlinux, e.g. Debian's -dbg), and a jump-label BUG is looked up in it (a vmlinuz will do for that)", HelpName = "FILE" };
        var modules = new Option<string?>("--modules") { Description = "a directory of the kernel's modules (with debug info, e.g. Debian's -dbg " +
            "/usr/lib/debug/lib/modules/VERSION): frames in modules get file:line too", HelpName = "DIR" };
        var intel = new Option<bool>("--intel") { Description = "disassemble Code: lines in Intel syntax (default AT&T, like objdump)" };
        var json = JsonOption();
        var format = new Option<string?>("--format")
        {
            Description = "text (default), json (as --json), sarif (SARIF 2.1.0: a result per report, at the guilty function's source line with a " +
                "DWARF --vmlinux, else at its lines in the log) or junit (JUnit XML: a test case per report, failing with its title and lines)",
            HelpName = "FORMAT",
        };
        var command = new Command("decode",
            "Find every kernel report in LOG (BUG, Oops, WARNING, KASAN, lockdep, hangs, panic...): title, type, guilty function, " +
            "Code: disassembly, call trace, and for a jump-label BUG what the image says about the site. Exit codes: 0 no crash, 1 crash found, 2 bad input.")
        {
            log, vmlinux, modules, intel, json, format,
        };
        command.SetAction(result =>
        {
            string how = FormatOf(result, format, json);
            string path = result.GetValue(log)!;
            string? image = result.GetValue(vmlinux);
            string? modulesDir = result.GetValue(modules);
            if (image != null && !File.Exists(image)) throw new ImageFormatException(image, "cannot open: no such file");
            if (modulesDir != null && image == null) throw new UsageException("--modules needs --vmlinux (the kernel the modules belong to)");
            var lines = ReadLog(path);
            var reports = ConsoleLog.Parse(lines);
            var syntax = result.GetValue(intel) ? CodeDisassembly.Syntax.Intel : CodeDisassembly.Syntax.Att;
            string name = path == "-" ? "<stdin>" : path;
            using var source = image != null && reports.Count > 0 ? Symbolizer.Open(image, modulesDir) : null;
            using var explainer = source != null ? new SiteExplainer(source.Image, source.Symbols) : new SiteExplainer(image);
            var kaslr = source?.KaslrOffset(lines, reports.SelectMany(r => r.Frames));
            if (how == "sarif")
            {
                CiOutput.SarifDecode(stdout, path, reports.Select(r => new CiOutput.DecodedReport(r, explainer.Explain(r, lines),
                    source == null ? null : ReportOutput.Guilty(source, r))).ToList());
            }
            else if (how == "junit")
            {
                var cases = reports.Select(r => new CiOutput.TestCase($"{name}:{r.StartLine + 1}: {r.Title}", $"{r.Title} [{CrashTypes.Of(r.Title)}]" +
                        (r.Corrupted ? $" (corrupted: {r.CorruptedReason})" : ""), r.Type,
                        string.Join("\n", r.Lines.Concat(explainer.Explain(r, lines).Prepend(""))))).ToList();
                if (cases.Count == 0) cases.Add(new CiOutput.TestCase($"{name}: no crash"));
                CiOutput.JUnit(stdout, "textpoke decode", "textpoke.decode", cases);
            }
            else if (how == "json")
            {
                JsonOutput.Decode(stdout, new DecodeJson(name, lines.Count, image, modulesDir, source == null ? null : source.HasDwarf,
                    kaslr is { } k ? $"0x{k.Offset:x}" : null,
                    reports.Select(r => ReportOutput.Json(r, explainer.Explain(r, lines), syntax, source)).ToList()));
            }
            else
            {
                stdout.WriteLine($"log      {name} ({lines.Count} lines)");
                if (source != null)
                {
                    stdout.WriteLine(source.HasDwarf
                        ? $"source   DWARF of {source.VmlinuxPath}{(source.BasePath is { Length: > 0 } b ? $" (paths relative to {b})" : "")}" +
                            $"{(modulesDir != null ? $"; modules from {modulesDir}" : "")}"
                        : $"source   {source.VmlinuxPath} has no DWARF: frames are not resolved to file:line (give the unstripped vmlinux, e.g. from " +
                            $"Debian's -dbg package)");
                    if (kaslr is { } k) stdout.WriteLine($"kaslr    offset 0x{k.Offset:x} ({k.Evidence})");
                }
                foreach (var report in reports)
                {
                    stdout.WriteLine();
                    ReportOutput.Text(stdout, report, explainer.Explain(report, lines), syntax, source: source, topic: SiteExplainer.Topic(report, lines));
                    if (image == null && JumpLabelExplainer.Applies(report))
                        stdout.WriteLine("explain  give --vmlinux IMAGE (the booted vmlinux or vmlinuz) to look the jump-label site up");
                }
                stdout.WriteLine();
                stdout.WriteLine(reports.Count == 0 ? "summary  no crash found"
                    : $"summary  {reports.Count} report{(reports.Count == 1 ? "" : "s")}: " + string.Join("; ", reports.GroupBy(r => r.Title)
                        .Select(g => g.Count() == 1 ? g.Key : $"{g.Key} ({g.Count()} times)")));
            }
            return reports.Count == 0 ? ExitCodes.Clean : ExitCodes.Findings;
        });
        return command;
    }

    /// <summary>The log's lines (UTF-8, invalid bytes replaced); binary data and huge files are refused with one line.</summary>
    static List<string> ReadLog(string path)
    {
        string name = path == "-" ? "<stdin>" : path;
        Stream stream;
        if (path == "-") stream = Console.OpenStandardInput();
        else if (Directory.Exists(path)) throw new ImageFormatException(path, "is a directory, not a console log");
        else if (!File.Exists(path)) throw new ImageFormatException(path, "cannot open: no such file");
        else
        {
            stream = File.OpenRead(path);
            if (stream.Length > MaxLogBytes) { stream.Dispose(); throw new ImageFormatException(path,
                $"too large for a console log ({stream.Length} bytes; the limit is {MaxLogBytes} bytes)"); }
        }
        using (stream)
        {
            // Streamed: only the lines are kept, not the bytes and a whole-file string besides.
            var lines = new List<string>();
            var decoder = new UTF8Encoding(false).GetDecoder(); // invalid bytes become U+FFFD
            var chunk = new byte[1 << 16];
            var chars = new char[Encoding.UTF8.GetMaxCharCount(chunk.Length)];
            var line = new StringBuilder();
            long total = 0;
            int n;
            while ((n = stream.ReadAtLeast(chunk, chunk.Length, throwOnEndOfStream: false)) > 0)
            {
                if ((total += n) > MaxLogBytes) throw new ImageFormatException(name, $"too large for a console log (more than {MaxLogBytes} bytes)");
                int count = decoder.GetChars(chunk, 0, n, chars, 0, flush: false);
                if (total == n && LooksBinary(chunk.AsSpan(0, n), chars.AsSpan(0, count))) throw new ImageFormatException(name,
                    "binary data, not a console log");
                var text = chars.AsSpan(0, count);
                for (int nl; (nl = text.IndexOf('\n')) >= 0; text = text[(nl + 1)..])
                {
                    line.Append(text[..nl]);
                    lines.Add(line.ToString().TrimEnd('\r'));
                    line.Clear();
                }
                line.Append(text);
            }
            line.Append(chars, 0, decoder.GetChars(chunk, 0, 0, chars, 0, flush: true));
            if (line.Length > 0) lines.Add(line.ToString().TrimEnd('\r'));
            return lines;
        }
    }

    /// <summary>
    /// The first 64 KiB of a log: control bytes and bytes that are not UTF-8 (random or compressed data is mostly such
    /// bytes). Real serial logs carry some NULs and line noise (one of syzkaller's corpus logs is 10% NUL), so only more
    /// than 30% is binary.
    /// </summary>
    static bool LooksBinary(ReadOnlySpan<byte> head, ReadOnlySpan<char> decoded)
    {
        int binary = 0;
        foreach (var b in head) if (b == 0 || b < 0x20 && b is not ((byte)'\n' or (byte)'\r' or (byte)'\t' or 0x1b or 0x07 or 0x08)) binary++;
        foreach (var c in decoded) if (c == '\uFFFD') binary++;
        return binary * 10 > head.Length * 3;
    }
}
