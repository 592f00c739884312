using TextPoke.Tables;

namespace TextPoke.Checks;

/// <summary>What became of one table in a check.</summary>
public enum TableStatus
{
    /// <summary>Read, every entry judged.</summary>
    Checked,
    /// <summary>Present, with no entries (start equals stop).</summary>
    Empty,
    /// <summary>Not in this image: the kernel was built without it.</summary>
    Absent,
    /// <summary>
    /// The image has the table, or may have it, but textpoke could not read it (layout undecided, entries cut, no
    /// symbols to find it): nothing about it is known, so the check cannot be clean.
    /// </summary>
    NotChecked,
}

/// <summary>One site of a table for `sites --table`: address, what it holds, and where it leads.</summary>
public readonly record struct TableSite(ulong Address, string State, ulong? Target = null, string? Note = null);

/// <summary>The result of checking one self-patching table other than __jump_table.</summary>
public sealed class TableReport
{
    /// <summary>The name used by --tables and sites --table (e.g. "smp_locks").</summary>
    public required string Name { get; init; }
    /// <summary>The kernel's name of the table (e.g. ".smp_locks").</summary>
    public required string Title { get; init; }
    public TableBounds? Bounds { get; init; }
    public string? Layout { get; init; }
    public string? Evidence { get; init; }
    /// <summary>Why the table was not checked (absent from this kernel, layout undecided, not read by textpoke yet).</summary>
    public string? Absent { get; init; }
    public TableStatus Status { get; init; } = TableStatus.Checked;
    public int Entries { get; internal set; }
    public List<Finding> Findings { get; } = [];
    public List<TableSite> Sites { get; } = [];
    /// <summary>Counts by site state, for the summary.</summary>
    public Dictionary<string, int> Counts { get; } = new(StringComparer.Ordinal);

    public void Count(string state) => Counts[state] = Counts.GetValueOrDefault(state) + 1;
}
