namespace TextPoke.Checks;

/// <summary>How bad a finding is: Bug = the kernel will BUG/crash or misbehave; Warning = suspicious, the kernel may WARN.</summary>
/// <summary>
/// How much a finding matters. Bug: the kernel crashes or corrupts itself. Warning: it misbehaves (a WARN, a wrong code
/// path, a lost mitigation, an unwinder disabled). Notice: the table is not as the build should leave it, but the kernel
/// never acts on the entry, so behaviour cannot change; reported, and failing a check only with --strict.
/// </summary>
public enum Severity { Bug, Warning, Notice }

/// <summary>
/// One broken invariant at one place: what the kernel will print when it trips (byte for byte, real address in place
/// of the hashed %p), and a plain explanation.
/// </summary>
public sealed record Finding
{
    public required string Table { get; init; }
    /// <summary>Stable rule id, e.g. "jump.initial-state" (see docs/checks.md).</summary>
    public required string Rule { get; init; }
    public required Severity Severity { get; init; }
    /// <summary>Short title, e.g. "JMP where the key's state requires a NOP".</summary>
    public required string Title { get; init; }
    public ulong? Address { get; init; }
    /// <summary>The address as %pS prints it.</summary>
    public string? Location { get; init; }
    public string? Key { get; init; }
    public ulong? KeyAddress { get; init; }
    /// <summary>The lines the kernel prints when this trips (empty when the kernel is silent).</summary>
    public IReadOnlyList<string> KernelLines { get; init; } = [];
    public required string Explanation { get; init; }
    public string? ActualBytes { get; init; }
    public string? ExpectedBytes { get; init; }
    public int? Size { get; init; }
    public int? Type { get; init; }
}
