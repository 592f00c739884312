namespace TextPoke.Crash;

/// <summary>One call-trace frame: "func+0xoff/0xsize [module]", reliable unless printed with "? ".</summary>
public sealed record CrashFrame(string Function, ulong Offset, ulong Size, string? Module, bool Reliable, int Line)
{
    /// <summary>The run-time address when the log prints one ("[&lt;ffffffff8a2ff407&gt;] func+0x27/0xa0", 4.x kernels).</summary>
    public ulong? Address { get; init; }
}

/// <summary>One kernel report found in a console log (BUG, Oops, WARNING, panic, ...).</summary>
public sealed record CrashReport
{
    public required string Title { get; init; }
    public required string Type { get; init; }
    /// <summary>The index in ConsoleLog.Rules of the rule that made this report (-1: an unexpected reboot, which no rule makes).</summary>
    public int Rule { get; init; } = -1;
    /// <summary>First and last line of the report in the log (0-based).</summary>
    public required int StartLine { get; init; }
    public required int EndLine { get; init; }
    public bool Corrupted { get; init; }
    public string? CorruptedReason { get; init; }
    /// <summary>"Kernel panic - not syncing" appeared in the log.</summary>
    public bool Panicked { get; init; }
    /// <summary>The guilty function (from the title rule, else the RIP, else the first reliable frame).</summary>
    public string? Frame { get; init; }
    /// <summary>The guilty frame as the log prints it, when the title shortens it (a system-call wrapper, a grouped name).</summary>
    public string? RawFrame { get; init; }
    public int? Cpu { get; init; }
    public int? Pid { get; init; }
    public string? Comm { get; init; }
    public string? KernelVersion { get; init; }
    public string? Rip { get; init; }
    public string? Code { get; init; }
    public IReadOnlyList<CrashFrame> Frames { get; init; } = [];
    /// <summary>The report's lines without console prefixes.</summary>
    public IReadOnlyList<string> Lines { get; init; } = [];
}
