using System.Text;

namespace TextPoke.Crash;

/// <summary>One file of syzkaller's report corpus: the expected fields and the log.</summary>
public sealed record CorpusCase(string Name, string? Title, IReadOnlyList<string> AltTitles, string? Type, bool Corrupted, bool Panicked,
    IReadOnlyList<string> Log, string? Frame = null);

/// <summary>Per-field agreement of the parser with the corpus, and the headline (title, type and corrupted all agree).</summary>
public sealed record CorpusScore(int Files, int Found, int Title, int Alt, int Type, int Corrupted, int Panicked, int Headline, IReadOnlyList<string> Misses)
{
    static string Percent(int n, int of) => of == 0 ? "-" : $"{100.0 * n / of:F1}%";

    public double HeadlinePercent => Files == 0 ? 0 : 100.0 * Headline / Files;

    public string Table() => new StringBuilder()
        .AppendLine("| field | agree | of | share |")
        .AppendLine("|---|---|---|---|")
        .AppendLine($"| crash found (or correctly none) | {Found} | {Files} | {Percent(Found, Files)} |")
        .AppendLine($"| title | {Title} | {Files} | {Percent(Title, Files)} |")
        .AppendLine($"| alternative titles | {Alt} | {Files} | {Percent(Alt, Files)} |")
        .AppendLine($"| type | {Type} | {Files} | {Percent(Type, Files)} |")
        .AppendLine($"| corrupted | {Corrupted} | {Files} | {Percent(Corrupted, Files)} |")
        .AppendLine($"| panicked | {Panicked} | {Files} | {Percent(Panicked, Files)} |")
        .AppendLine($"| **headline** (title, type and corrupted) | **{Headline}** | {Files} | **{Percent(Headline, Files)}** |")
        .ToString();

    /// <summary>
    /// Reads the corpus folder (format in its README: header lines, an empty line, the log, optionally an empty line and
    /// "REPORT:"). Files are read as bytes with every '\r' removed.
    /// </summary>
    public static List<CorpusCase> Read(string folder)
    {
        var cases = new List<CorpusCase>();
        foreach (var path in Directory.EnumerateFiles(folder).Where(p => Path.GetFileName(p).All(char.IsAsciiDigit)).OrderBy(p =>
            int.Parse(Path.GetFileName(p))))
        {
            var text = Encoding.Latin1.GetString(File.ReadAllBytes(path)).Replace("\r", "");
            var lines = text.Split('\n');
            string? title = null, type = null, frame = null;
            var alts = new List<string>();
            bool corrupted = false, panicked = false;
            int i = 0;
            for (; i < lines.Length && lines[i].Length > 0; i++)
            {
                var l = lines[i];
                if (l.StartsWith('#')) continue;
                int colon = l.IndexOf(": ", StringComparison.Ordinal);
                if (colon < 0) continue;
                string key = l[..colon], value = l[(colon + 2)..];
                switch (key)
                {
                    // An empty title says the same as none: the log holds no crash.
                    case "TITLE": title = value.Trim().Length == 0 ? null : value; break;
                    case "ALT": alts.Add(value); break;
                    case "TYPE": type = value; break;
                    case "CORRUPTED": corrupted = value == "Y"; break;
                    case "PANICKED": panicked = value == "Y"; break;
                    case "FRAME": frame = value; break;
                }
            }
            var log = lines.Skip(i + 1).ToList();
            int report = log.FindIndex(l => l == "REPORT:");
            if (report > 0 && log[report - 1].Length == 0) log = log.Take(report - 1).ToList();
            cases.Add(new CorpusCase(Path.GetFileName(path), title, alts, type, corrupted, panicked, log, frame));
        }
        return cases;
    }

    /// <summary>
    /// The fixed split of a corpus into a development half and a validation half: a file belongs to the validation half
    /// when the FNV-1a hash of its name is odd. Reproducible, independent of the order files are read in, and blind to
    /// their content, so a rule fitted to the development half shows its generality on the other.
    /// </summary>
    public static bool IsValidation(CorpusCase c)
    {
        uint hash = 2166136261;
        foreach (char ch in c.Name) hash = (hash ^ ch) * 16777619;
        return (hash & 1) == 1;
    }

    public static CorpusScore Score(IReadOnlyList<CorpusCase> cases)
    {
        int found = 0, title = 0, alt = 0, type = 0, corrupted = 0, panicked = 0, headline = 0;
        var misses = new List<string>();
        foreach (var c in cases)
        {
            var report = ConsoleLog.Parse(c.Log).FirstOrDefault();
            bool foundOk = (report != null) == (c.Title != null);
            bool titleOk = c.Title == null ? report == null : report?.Title == c.Title;
            bool altOk = c.AltTitles.Count == 0 || report != null && c.AltTitles.Order().SequenceEqual(ConsoleLog.AltTitles(report).Order());
            bool typeOk = c.Title == null ? report == null : (report != null && CrashTypes.Of(report.Title) == (c.Type ?? ""));
            bool corruptedOk = c.Title == null ? report == null : report != null && report.Corrupted == c.Corrupted;
            bool panickedOk = c.Title == null || report != null && report.Panicked == c.Panicked;
            if (foundOk) found++;
            if (titleOk) title++;
            if (altOk) alt++;
            if (typeOk) type++;
            if (corruptedOk) corrupted++;
            if (panickedOk) panicked++;
            if (titleOk && typeOk && corruptedOk) headline++;
            else misses.Add($"{c.Name}: expected \"{c.Title}\" [{c.Type}]{(c.Corrupted ? " corrupted" : "")}, got \"{report?.Title}\" " +
                $"[{(report == null ? "" : CrashTypes.Of(report.Title))}]{(report?.Corrupted == true ? $" corrupted ({report.CorruptedReason})" : "")}");
        }
        return new CorpusScore(cases.Count, found, title, alt, type, corrupted, panicked, headline, misses);
    }
}
