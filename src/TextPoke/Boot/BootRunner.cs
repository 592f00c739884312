using System.Collections.Concurrent;
using System.Diagnostics;
using TextPoke.Crash;

namespace TextPoke.Boot;

/// <summary>How a boot ended.</summary>
public enum BootOutcome { Booted, Crashed, Panicked, TimedOut, QemuFailed }

/// <summary>One boot: what to run and when to give up.</summary>
/// <summary>
/// One boot. <paramref name="LogExclusive"/>: the log is a new file textpoke named (in a private folder), created
/// exclusively; otherwise it is the user's own path, replaced if it exists.
/// </summary>
/// <paramref name="MemoryAtMarker"/>: ranges of guest memory to copy out through the QEMU monitor (Qemu.MonitorSocket) when
/// the marker appears, with the guest stopped, before QEMU is ended.
public sealed record BootRequest(QemuOptions Qemu, string Marker, TimeSpan Timeout, TimeSpan Silence, string LogPath, bool MarkerKnown = true,
    bool LogExclusive = false, IReadOnlyList<(ulong Start, ulong Length)>? MemoryAtMarker = null,
    IReadOnlyList<(ulong Address, byte[] Bytes)>? InjectAtMarker = null, Live.PrintkRingLayout? LogBuffer = null);

/// <summary>The verdict of one boot, with the console log and the reports found in it.</summary>
public sealed record BootResult(BootOutcome Outcome, string Reason, TimeSpan Elapsed, IReadOnlyList<string> Lines, IReadOnlyList<CrashReport> Reports,
    int? QemuExitCode, string QemuError, IReadOnlyList<string> Command, string LogPath)
{
    /// <summary>The guest memory copied at the marker (BootRequest.MemoryAtMarker), or null.</summary>
    public Live.MemorySnapshot? Memory { get; init; }
    /// <summary>Why the memory could not be copied, or null.</summary>
    public string? MemoryError { get; init; }
    /// <summary>
    /// The kernel's log buffer, read from guest memory when the guest fell silent before the marker with nothing on the
    /// console (an early BUG, before the console exists), as text lines; null when it was not read.
    /// </summary>
    public IReadOnlyList<string>? LogBuffer { get; init; }
}

/// <summary>
/// Runs QEMU, streams the serial console into the log (and to the caller), and stops at the first decisive event: the
/// success marker, a crash report (after the panic it causes, or a short grace period), silence, or the timeout. QEMU is
/// always killed with its process tree on the way out, also on cancellation.
/// </summary>
public static class BootRunner
{
    /// <summary>After the last line of a crash, how long to wait for QEMU to exit by itself (panic=-1 + -no-reboot).</summary>
    static readonly TimeSpan CrashGrace = TimeSpan.FromSeconds(3);
    static readonly TimeSpan MarkerGrace = TimeSpan.FromSeconds(3);
    static readonly ConcurrentDictionary<int, Process> Running = new();

    static BootRunner()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
    }

    /// <summary>Kills every QEMU this process started (Ctrl-C, exit).</summary>
    public static void KillAll()
    {
        foreach (var p in Running.Values)
        {
            try { if (!p.HasExited) p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } catch (System.ComponentModel.Win32Exception) { }
        }
    }

    static FileStream OpenLog(string path, bool exclusive)
    {
        var options = new FileStreamOptions { Mode = exclusive ? FileMode.CreateNew : FileMode.Create, Access = FileAccess.Write, Share = FileShare.Read };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        return new FileStream(path, options);
    }

    public static BootResult Run(BootRequest request, Action<string>? onLine = null, CancellationToken cancel = default)
    {
        var args = Qemu.Arguments(request.Qemu);
        var psi = new ProcessStartInfo(request.Qemu.Binary)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var command = new List<string> { request.Qemu.Binary };
        command.AddRange(args);
        var lines = new List<string>();
        var queue = new BlockingCollection<string?>();
        var stderr = new System.Text.StringBuilder();
        var clock = Stopwatch.StartNew();
        Process process;
        try { process = Process.Start(psi) ?? throw new InvalidOperationException("no process"); }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return new BootResult(BootOutcome.QemuFailed, $"{request.Qemu.Binary} cannot be started: {e.Message}", clock.Elapsed, [], [], null, "", command,
                request.LogPath);
        }
        Running[process.Id] = process;
        using var log = new StreamWriter(OpenLog(request.LogPath, request.LogExclusive), new System.Text.UTF8Encoding(false)) { AutoFlush = true };
        try
        {
            process.StandardInput.Close();
            process.OutputDataReceived += (_, e) => queue.Add(e.Data);
            process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.AppendLine(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();

            bool marker = false, crash = false, ended = false;
            Live.MemorySnapshot? memory = null;
            string? memoryError = null;
            TimeSpan? stopAt = null;
            var lastOutput = clock.Elapsed;
            string reason = "";
            BootOutcome? forced = null;
            while (true)
            {
                if (cancel.IsCancellationRequested) { forced = BootOutcome.TimedOut; reason = "interrupted"; break; }
                var now = clock.Elapsed;
                if (stopAt is { } s && now >= s) break;
                if (now >= request.Timeout) { forced = BootOutcome.TimedOut; reason = $"no verdict within {request.Timeout.TotalSeconds:0} s"; break; }
                if (now - lastOutput >= request.Silence && !marker
                    && !crash) { forced = BootOutcome.TimedOut; reason = $"silent for {request.Silence.TotalSeconds:0} s"; break; }
                if (!queue.TryTake(out var line, 100, CancellationToken.None)) continue;
                if (line == null) { ended = true; break; } // QEMU closed its stdout: it exited
                lastOutput = clock.Elapsed;
                lines.Add(line);
                log.WriteLine(line);
                onLine?.Invoke(line);
                string text = ConsoleLog.Strip(line);
                // The marker may share its line with a kernel message printed at the same moment ("MARKER[    2.36] tsc: ..."),
                // and stripping the console prefix drops text before a timestamp: look in the raw line too.
                if (!marker && (line.Contains(request.Marker, StringComparison.Ordinal) || text.Contains(request.Marker, StringComparison.Ordinal)))
                {
                    marker = true;
                    stopAt = clock.Elapsed + MarkerGrace;
                    if (request.InjectAtMarker is { Count: > 0 } writes && request.Qemu.GdbSocket is { } gdb) memoryError = Inject(gdb, writes);
                    if (request.MemoryAtMarker is { } ranges && request.Qemu.MonitorSocket is { } socket && memoryError == null)
                    {
                        (memory, memoryError) = DumpMemory(socket, ranges);
                        stopAt = clock.Elapsed;
                    }
                }
                if (!crash && IsCrashStart(text))
                {
                    crash = true;
                    stopAt = clock.Elapsed + CrashGrace + CrashGrace;
                }
                if (crash && (text.StartsWith("---[ end trace", StringComparison.Ordinal) || text.StartsWith("Kernel panic - not syncing",
                    StringComparison.Ordinal)
                    || text.StartsWith("---[ end Kernel panic", StringComparison.Ordinal)))
                    stopAt = clock.Elapsed + CrashGrace;
            }
            IReadOnlyList<string>? logBuffer = null;
            if (!marker && forced == BootOutcome.TimedOut && !process.HasExited && request.LogBuffer is { } buffer
                && request.Qemu.MonitorSocket is { } monitorSocket && ConsoleLog.Parse(lines).Count == 0)
            {
                logBuffer = ReadLogBuffer(monitorSocket, buffer);
                if (logBuffer != null)
                {
                    // Kept in the log too, so that `decode` of the log finds what the console never showed.
                    log.WriteLine("--- textpoke: the kernel fell silent before its console; its log buffer, read from guest memory: ---");
                    foreach (var l in logBuffer) log.WriteLine(l);
                }
            }
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit();
            // Drain what was already read.
            while (queue.TryTake(out var rest) && rest != null) { lines.Add(rest); log.WriteLine(rest); onLine?.Invoke(rest); }
            int exit = process.ExitCode;
            var reports = ConsoleLog.Parse(lines);
            string error;
            lock (stderr) error = stderr.ToString().Trim();
            var outcome = Classify(marker, reports, lines, ended, exit, error, forced, ref reason, request);
            if (reports.Count == 0 && logBuffer != null && ConsoleLog.Parse(logBuffer) is { Count: > 0 } early)
            {
                // Halted before the console: the report is only in the log buffer, read from guest memory.
                reports = early;
                var fatal = early.FirstOrDefault(r => r.Type is not ("WARNING" or "LOCKDEP")) ?? early[0];
                outcome = BootOutcome.Crashed;
                reason = $"halted before the console: {fatal.Title} (read from the kernel's log buffer in guest memory)";
            }
            return new BootResult(outcome, reason, clock.Elapsed, lines, reports, ended ? exit : null, error, command, request.LogPath)
            {
                Memory = memory, MemoryError = memoryError ?? (request.MemoryAtMarker != null && memory == null ? "the guest never reached the marker" : null),
                LogBuffer = logBuffer,
            };
        }
        finally
        {
            try { if (!process.HasExited) process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            Running.TryRemove(process.Id, out _);
            process.Dispose();
        }
    }

    /// <summary>
    /// The printk buffer's records as lines, or null: read through the ring's descriptors when the kernel names them
    /// (exact texts, in sequence order), else the printable runs between the data ring's binary headers.
    /// </summary>
    static IReadOnlyList<string>? ReadLogBuffer(string socket, Live.PrintkRingLayout ring)
    {
        var ranges = new List<(ulong, ulong)> { (ring.Data, ring.DataLength) };
        if (ring.Count > 0)
        {
            ranges.Add((ring.Descs, (ulong)ring.Count * Live.PrintkRingLayout.DescSize));
            ranges.Add((ring.Infos, (ulong)ring.Count * Live.PrintkRingLayout.InfoSize));
        }
        Live.MemorySnapshot snapshot;
        try
        {
            using var monitor = QemuMonitor.Connect(socket, TimeSpan.FromSeconds(10));
            snapshot = monitor.Dump(ranges, Path.GetDirectoryName(socket)!);
        }
        catch (Exception e) when (e is IOException or TimeoutException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
        {
            return null;
        }
        var data = new byte[ring.DataLength];
        if (!snapshot.TryRead(ring.Data, data)) return null;
        if (ring.Count > 0)
        {
            var descs = new byte[ring.Count * Live.PrintkRingLayout.DescSize];
            var infos = new byte[ring.Count * Live.PrintkRingLayout.InfoSize];
            if (snapshot.TryRead(ring.Descs, descs) && snapshot.TryRead(ring.Infos, infos)
                && Live.PrintkRing.Lines(data, descs, infos, ring.Count) is { Count: > 0 } lines)
                return lines;
        }
        return LogBufferLines(data);
    }

    static bool IsText(byte b) => b is >= 0x20 and < 0x7f || b == (byte)'\t';

    /// <summary>
    /// Splits a printk buffer (8-byte aligned) into its messages: runs of at least 4 printable characters (tabs included).
    /// A record is an 8-byte id at an aligned offset, then its text. When a text ends on an aligned boundary, the next
    /// record's id follows at once, and its low bytes may happen to be printable (":0" then 0xff...): a run that goes on
    /// past an aligned offset into bytes that are not text before the next aligned offset, with text again 8 bytes after
    /// that offset, ended at the offset.
    /// </summary>
    public static List<string> LogBufferLines(ReadOnlySpan<byte> bytes)
    {
        var lines = new List<string>();
        int start = -1;
        for (int i = 0; i <= bytes.Length; i++)
        {
            bool printable = i < bytes.Length && IsText(bytes[i]);
            if (printable) { if (start < 0) start = i; continue; }
            int end = i;
            int aligned = end & ~7;
            if (start >= 0 && aligned > start && aligned < end && aligned + 12 <= bytes.Length
                && !bytes[end..(aligned + 8)].ContainsAnyInRange((byte)0x20, (byte)0x7e)
                && IsText(bytes[aligned + 8]) && IsText(bytes[aligned + 9]) && IsText(bytes[aligned + 10]) && IsText(bytes[aligned + 11]))
                end = aligned; // the next record's id
            if (start >= 0 && end - start >= 4) lines.Add(System.Text.Encoding.ASCII.GetString(bytes[start..end]));
            start = -1;
        }
        return lines;
    }

    static string? Inject(string socket, IReadOnlyList<(ulong Address, byte[] Bytes)> writes)
    {
        try
        {
            using var stub = GdbStub.Connect(socket, TimeSpan.FromSeconds(30));
            foreach (var (address, bytes) in writes) stub.Write(address, bytes);
            stub.Detach();
            return null;
        }
        catch (Exception e) when (e is IOException or TimeoutException or System.Net.Sockets.SocketException)
        {
            return $"--inject failed: {e.Message}";
        }
    }

    static (Live.MemorySnapshot?, string?) DumpMemory(string socket, IReadOnlyList<(ulong Start, ulong Length)> ranges)
    {
        try
        {
            using var monitor = QemuMonitor.Connect(socket, TimeSpan.FromSeconds(60));
            return (monitor.Dump(ranges, Path.GetDirectoryName(socket)!), null);
        }
        catch (Exception e) when (e is IOException or TimeoutException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
        {
            return (null, $"guest memory could not be read through the QEMU monitor: {e.Message}");
        }
    }

    static bool IsCrashStart(string text) =>
        text.StartsWith("Kernel panic - not syncing", StringComparison.Ordinal) ||
        ConsoleLog.Rules.Any(r => r.Type is not ("WARNING" or "LOCKDEP") && r.Header.IsMatch(text));

    static BootOutcome Classify(bool marker, List<CrashReport> reports, List<string> lines, bool ended, int exit, string error, BootOutcome? forced,
        ref string reason, BootRequest request)
    {
        var fatal = reports.FirstOrDefault(r => r.Type is not ("WARNING" or "LOCKDEP" or "PANIC"));
        if (fatal != null) { reason = fatal.Title; return BootOutcome.Crashed; }
        var panic = reports.FirstOrDefault(r => r.Type == "PANIC");
        if (panic != null) { reason = panic.Title; return BootOutcome.Panicked; }
        if (marker) { reason = reports.Count > 0 ? $"booted, with {reports.Count} warning report{(reports.Count == 1 ? "" : "s")}"
            : "reached the success marker"; return BootOutcome.Booted; }
        if (forced is { } f) return f;
        if (lines.Count == 0 || exit != 0)
        {
            reason = error.Length > 0 ? error.Split('\n')[0] : $"QEMU exited with {exit} before the kernel printed anything";
            return lines.Count == 0 ? BootOutcome.QemuFailed : BootOutcome.Crashed;
        }
        if (!request.MarkerKnown && ended)
        {
            // A user's initramfs without --marker: a clean power-off with no report is the best sign of success there is.
            reason = "QEMU exited cleanly without a report (no success marker known: pass --marker to be sure)";
            return BootOutcome.Booted;
        }
        reason = $"the guest stopped (QEMU exited) before printing {request.Marker}, without a report on the console";
        return BootOutcome.Crashed;
    }
}
