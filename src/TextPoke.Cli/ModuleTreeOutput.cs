using System.Text.Json;
using System.Text.RegularExpressions;
using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Cli;

/// <summary>check over a kernel and its module tree: the kernel's report, then modules grouped, then totals.</summary>
static class ModuleTreeOutput
{
    public static int Run(TextWriter stdout, TextWriter stderr, string? kernelPath, string treeDir, string? systemMap, IReadOnlyCollection<string>? tables,
        string format, bool verbose, bool strict = false)
    {
        if (!Directory.Exists(treeDir)) throw new ImageFormatException(treeDir, "not a directory");
        KernelImage? kernel = null;
        ImageSymbols? kernelSymbols = null;
        CheckResult? kernelCheck = null;
        try
        {
            if (kernelPath != null)
            {
                (kernel, kernelSymbols) = Commands.Load(kernelPath, systemMap);
                kernelCheck = CheckRunner.Run(kernel, kernelSymbols, tables, strict: strict);
            }
            string? release = ModuleCheck.ReleaseOf(kernel?.Banner)
                ?? (Regex.IsMatch(Path.GetFileName(Path.GetFullPath(treeDir).TrimEnd('/')), @"^\d+\.\d+")
                    ? Path.GetFileName(Path.GetFullPath(treeDir).TrimEnd('/')) : null);
            var files = ModuleTree.Find(treeDir);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            long lastDraw = 0;
            bool json = format == "json";
            using var line = format != "text" ? null : ProgressLine.Start(stderr);
            Action<int, string>? progress = line == null ? null : (done, name) =>
            {
                long now = sw.ElapsedMilliseconds;
                if (now - Interlocked.Read(ref lastDraw) < 100 && done != files.Count) return;
                Interlocked.Exchange(ref lastDraw, now);
                line.Show($"[{done,5}/{files.Count}] {name}");
            };
            var k = kernel;
            var ks = kernelSymbols;
            var results = ModuleTree.Check(treeDir, files, k == null ? null : name => JumpLabelCheck.KeyByName(k, ks!, name), release, progress);
            line?.Dispose();
            sw.Stop();
            if (format is "sarif" or "junit")
            {
                var checkedFiles = (kernelCheck == null ? [] : new List<CheckedFile> { CheckedFile.Of(kernelCheck) })
                    .Concat(results.Select(r => new CheckedFile(r.Path, r.Findings, [], r.Error))).ToList();
                if (format == "sarif") CiOutput.Sarif(stdout, checkedFiles);
                else CiOutput.JUnit(stdout, checkedFiles);
            }
            else if (json) Json(stdout, kernelCheck, treeDir, results, sw.Elapsed);
            else Text(stdout, kernelCheck, kernelPath, treeDir, release, results, sw.Elapsed, verbose, strict);
            bool errors = results.Any(r => r.Error != null);
            bool findings = results.Any(r => r.Findings.Any(f => strict || f.Severity != Severity.Notice)) || kernelCheck is { Verdict: CheckVerdict.Findings };
            bool unread = kernelCheck is { Verdict: CheckVerdict.NotChecked };
            return errors || unread && !findings ? ExitCodes.BadInput : findings ? ExitCodes.Findings : ExitCodes.Clean;
        }
        finally
        {
            kernel?.Dispose();
        }
    }

    static void Text(TextWriter o, CheckResult? kernel, string? kernelPath, string treeDir, string? release, List<ModuleResult> results, TimeSpan elapsed,
        bool verbose, bool strict)
    {
        if (kernel != null)
        {
            TextOutput.Check(o, kernel);
            o.WriteLine();
        }
        else o.WriteLine($"note     no kernel image for {treeDir} (give --vmlinux FILE): keys defined in vmlinux are not judged, vermagic is " +
            $"{(release == null ? "not checked" : $"checked against {release}")}");
        o.WriteLine($"modules  {treeDir}: {results.Count} modules{(release != null ? $", release {release}" : "")}, checked in {elapsed.TotalSeconds:F1} s");
        foreach (var r in results)
        {
            if (r.Error != null)
            {
                o.WriteLine();
                o.WriteLine($"== {r.RelativePath}: error");
                o.WriteLine($"textpoke: {r.Error}");
                continue;
            }
            if (r.Findings.Count == 0) continue;
            o.WriteLine();
            o.WriteLine($"== {r.RelativePath} ({r.Name}): {r.Findings.Count} finding{(r.Findings.Count == 1 ? "" : "s")}");
            foreach (var f in r.Findings) TextOutput.Finding(o, f);
        }
        o.WriteLine();
        o.WriteLine("modules summary");
        foreach (var r in results.Where(r => verbose || !r.Clean))
            o.WriteLine($"  {r.RelativePath}: " +
                (r.Error != null ? "error" : $"{r.Jump?.Stats?.Entries ?? 0} jump entries, {r.Findings.Count} finding{(r.Findings.Count == 1 ? "" : "s")}"));
        int clean = results.Count(r => r.Clean), withFindings = results.Count(r => r.Error == null && r.Findings.Count > 0), errors = results.Count(r =>
            r.Error != null);
        int findingCount = results.Sum(r => r.Findings.Count), entries = results.Sum(r => r.Jump?.Stats?.Entries ?? 0);
        o.WriteLine($"  total: {results.Count} modules: {clean} clean, {withFindings} with findings ({findingCount} findings), {errors} " +
            $"error{(errors == 1 ? "" : "s")}; {entries} jump entries in modules");
        // As for one image: notices (cannot change behaviour) are counted apart and fail only with --strict.
        int kernelFindings = kernel?.Failing.Count() ?? 0;
        int moduleFailing = results.Sum(r => r.Findings.Count(f => strict || f.Severity != Severity.Notice));
        int notices = strict ? 0 : (kernel?.Findings.Count(f => f.Severity == Severity.Notice) ?? 0)
            + results.Sum(r => r.Findings.Count(f => f.Severity == Severity.Notice));
        string noticeText = notices == 0 ? ""
            : $" ({notices} notice{(notices == 1 ? "" : "s")}: reported above, cannot change behaviour; --strict fails on them)";
        o.WriteLine(moduleFailing + kernelFindings == 0 && errors == 0 ? (kernel is { Verdict: CheckVerdict.NotChecked } ? TextOutput.ResultLine(kernel)
            : $"result: clean, 0 findings{noticeText}")
            : $"result: {kernelFindings + moduleFailing} finding{(kernelFindings + moduleFailing == 1 ? "" : "s")} ({kernelFindings} in the kernel, " +
                $"{moduleFailing} in modules){(errors > 0 ? $", {errors} module{(errors == 1 ? "" : "s")} could not be checked" : "")}{noticeText}");
    }

    static void Json(TextWriter o, CheckResult? kernel, string treeDir, List<ModuleResult> results, TimeSpan elapsed)
    {
        JsonOutput.ModuleTree(o, new ModuleTreeJson(
            kernel == null ? null : JsonOutput.CheckDocument(kernel),
            new ModulesJson(treeDir, Math.Round(elapsed.TotalSeconds, 2), results.Count, results.Count(r => r.Clean), results.Count(r => r.Error != null),
                results.Sum(r => r.Findings.Count),
                results.Select(r => new ModuleResultJson(r.RelativePath, r.Name, r.Error, r.Jump?.Stats?.Entries,
                    r.Findings.Select(JsonOutput.Finding).ToList()))
                    .ToList())));
    }
}
