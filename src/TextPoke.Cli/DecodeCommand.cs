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
        var log = new Argument<string>("LOG") { Description = "a kernel console log (dmesg, serial console, CI log); - or nothing reads standard input", DefaultValueFactory = _ => "-" };
        var vmlinux = new Option<string?>("--vmlinux") { Description = "the kernel image the log came from: a jump-label BUG is looked up in it", HelpName = "FILE" };
        var intel = new Option<bool>("--intel") { Description = "disassemble Code: lines in Intel syntax (default AT&T, like objdump)" };
        var json = JsonOption();
        var command = new Command("decode", "Find every kernel report in LOG (BUG, Oops, WARNING, KASAN, lockdep, hangs, panic...): title, type, guilty function, " +
            "Code: disassembly, call trace, and for a jump-label BUG what the image says about the site. Exit codes: 0 no crash, 1 crash found, 2 bad input.")
        {
            log, vmlinux, intel, json,
        };
        command.SetAction(result =>
        {
            string path = result.GetValue(log)!;
            string? image = result.GetValue(vmlinux);
            if (image != null && !File.Exists(image)) throw new ImageFormatException(image, "cannot open: no such file");
            var lines = ReadLog(path);
            var reports = ConsoleLog.Parse(lines);
            var syntax = result.GetValue(intel) ? CodeDisassembly.Syntax.Intel : CodeDisassembly.Syntax.Att;
            string name = path == "-" ? "<stdin>" : path;
            if (result.GetValue(json))
            {
                var doc = new
                {
                    log = name, lines = lines.Count, vmlinux = image,
                    reports = reports.Select(r => ReportOutput.Json(r, ReportOutput.Explain(r, image), syntax)).ToList(),
                };
                stdout.WriteLine(JsonSerializer.Serialize(doc, JsonOutput.Options));
            }
            else
            {
                stdout.WriteLine($"log      {name} ({lines.Count} lines)");
                foreach (var report in reports)
                {
                    stdout.WriteLine();
                    ReportOutput.Text(stdout, report, ReportOutput.Explain(report, image), syntax);
                    if (image == null && JumpLabelExplainer.Applies(report))
                        stdout.WriteLine("explain  give --vmlinux IMAGE (the booted vmlinux or vmlinuz) to look the jump-label site up");
                }
                stdout.WriteLine();
                stdout.WriteLine(reports.Count == 0 ? "summary  no crash found"
                    : $"summary  {reports.Count} report{(reports.Count == 1 ? "" : "s")}: " + string.Join("; ", reports.Select(r => r.Title)));
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
            if (stream.Length > MaxLogBytes) { stream.Dispose(); throw new ImageFormatException(path, $"too large for a console log ({stream.Length} bytes; the limit is {MaxLogBytes} bytes)"); }
        }
        using (stream)
        {
            var buffer = new MemoryStream();
            var chunk = new byte[1 << 16];
            int n;
            while ((n = stream.Read(chunk)) > 0)
            {
                if (buffer.Length + n > MaxLogBytes) throw new ImageFormatException(name, $"too large for a console log (more than {MaxLogBytes} bytes)");
                buffer.Write(chunk, 0, n);
            }
            var bytes = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
            var head = bytes[..Math.Min(bytes.Length, 1 << 16)];
            int binary = 0;
            foreach (var b in head) if (b == 0 || b < 0x20 && b is not ((byte)'\n' or (byte)'\r' or (byte)'\t' or 0x1b or 0x07 or 0x08)) binary++;
            // Bytes that are not UTF-8 count too (random or compressed data is mostly such bytes). Real serial logs carry some
            // NULs and line noise (one of syzkaller's corpus logs is 10% NUL), so only more than 30% is binary.
            foreach (var c in Encoding.UTF8.GetString(head)) if (c == '\uFFFD') binary++;
            if (head.Length > 0 && binary * 10 > head.Length * 3) throw new ImageFormatException(name, "binary data, not a console log");
            var text = Encoding.UTF8.GetString(bytes);
            var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
            if (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
            return lines;
        }
    }
}
