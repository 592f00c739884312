using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Checks;

/// <summary>The result of checking one image: per-table reports and all findings.</summary>
public sealed class CheckResult
{
    public required KernelImage Image { get; init; }
    public required ImageSymbols Symbols { get; init; }
    public JumpLabelReport? Jump { get; init; }
    /// <summary>Module loader findings (relocatable inputs only).</summary>
    public IReadOnlyList<Finding> Module { get; init; } = [];
    /// <summary>Every other table, in <see cref="SiteTables.All"/> order.</summary>
    public IReadOnlyList<TableReport> Tables { get; init; } = [];
    public IEnumerable<Finding> Findings => Module.Concat(Jump?.Findings ?? Enumerable.Empty<Finding>()).Concat(Tables.SelectMany(t => t.Findings));

    /// <summary>The tables the image has, or may have, that could not be read: name and why.</summary>
    public IEnumerable<(string Name, string Why)> NotChecked =>
        (Jump is { Status: TableStatus.NotChecked } j ? [(JumpLabelCheck.TableName, j.Absent ?? "not read")] : Enumerable.Empty<(string, string)>())
            .Concat(Tables.Where(t => t.Status == TableStatus.NotChecked).Select(t => (t.Name, t.Absent ?? "not read")));

    /// <summary>With --strict, notices fail the check too.</summary>
    public bool Strict { get; init; }

    /// <summary>The findings that decide the verdict: bugs and warnings, and notices too under --strict.</summary>
    public IEnumerable<Finding> Failing => Findings.Where(f => Strict || f.Severity != Severity.Notice);

    /// <summary>Findings decide first (the kernel will misbehave); then whether everything the image has was read.</summary>
    public CheckVerdict Verdict => Failing.Any() ? CheckVerdict.Findings : NotChecked.Any() ? CheckVerdict.NotChecked : CheckVerdict.Clean;

    /// <summary>No findings, and every table the image has was read.</summary>
    public bool Clean => Verdict == CheckVerdict.Clean;
}

/// <summary>The outcome of a check, as the exit code reports it: 0, 1, 2.</summary>
public enum CheckVerdict
{
    /// <summary>Every table the image has was read, and nothing will misbehave.</summary>
    Clean,
    /// <summary>At least one site will make the kernel misbehave.</summary>
    Findings,
    /// <summary>No findings in what was read, but a table the image has (or may have) could not be read.</summary>
    NotChecked,
}

/// <summary>Runs the selected tables' checks over a loaded image.</summary>
public static class CheckRunner
{
    /// <summary>Table names accepted by --tables.</summary>
    public static readonly IReadOnlyList<string> KnownTables = [JumpLabelCheck.TableName, ModuleCheck.TableName, .. SiteTables.All.Select(t => t.Name)];

    /// <summary>
    /// Checks an image. The tables run side by side unless <paramref name="parallel"/> is false (a caller that already
    /// checks many images in parallel, like a module tree, gains nothing from nesting).
    /// </summary>
    public static CheckResult Run(KernelImage image, ImageSymbols symbols, IReadOnlyCollection<string>? tables = null, Func<string,
        StaticKeyInfo?>? externalKeys = null, bool parallel = true, bool strict = false, bool listSites = false)
    {
        bool all = tables == null || tables.Count == 0;
        // The tables are independent: check them side by side, each with its own decoder and buffers.
        var selected = SiteTables.All.Where(t => all || tables!.Contains(t.Name)).ToArray();
        var reports = new TableReport[selected.Length];
        JumpLabelReport? jump = null;
        var work = new List<Action>();
        if (all || tables!.Contains(JumpLabelCheck.TableName)) work.Add(() => jump = JumpLabelCheck.Run(image, symbols, externalKeys));
        for (int i = 0; i < selected.Length; i++)
        {
            int k = i;
            work.Add(() => reports[k] = SiteTables.Run(selected[k], new TableContext(image, symbols, listSites)));
        }
        try
        {
            if (parallel) Parallel.Invoke(new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, work.ToArray());
            else foreach (var step in work) step();
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            // Bad input found by one table is the error of the whole check: rethrow it as it was thrown.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
        return new CheckResult
        {
            Image = image,
            Symbols = symbols,
            Module = (all || tables!.Contains(ModuleCheck.TableName)) && image.Elf.IsRelocatable ? ModuleCheck.Relocations(image) : [],
            Jump = jump,
            Tables = reports,
            Strict = strict,
        };
    }
}
