using System.Text;
using System.Text.Json;
using TextPoke.Crash;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Crash;

/// <summary>
/// Property tests of the log parser: random and mutated logs (lines cut, dropped, repeated, swapped, overlong numbers,
/// control bytes, lines of random text) never throw, every report lies inside its log, and decode's JSON stays valid.
/// The seed is fixed: a failure is reproducible.
/// </summary>
public class LogPropertyTests
{
    static readonly List<CorpusCase> Corpus = CorpusScore.Read(Path.Combine(Repo.Data, "syzkaller-linux-reports"));

    static string RandomLine(Random r)
    {
        string[] pieces = ["BUG: ", "WARNING: ", "INFO: task ", "CPU: ", "PID: ", "RIP: 0010:", "Call Trace:", " <TASK>", "+0x", "/0x", "[<",
            ">] ", "Kernel panic - not syncing: ", "kernel BUG at ", ":", "!", " in ", "99999999999999999999", "ffffffffffffffffffff",
            "\u001b[31m", "\t", "KASAN: ", "Read of size ", "general protection fault", "------------[ cut here ]------------", "{", "}"];
        var sb = new StringBuilder();
        for (int i = r.Next(1, 8); i > 0; i--) sb.Append(pieces[r.Next(pieces.Length)]).Append(r.Next(2) == 0 ? "x" : "");
        return sb.ToString();
    }

    static List<string> Mutate(Random r, IReadOnlyList<string> log)
    {
        var lines = log.ToList();
        for (int n = r.Next(1, 12); n > 0 && lines.Count > 0; n--)
        {
            int i = r.Next(lines.Count);
            switch (r.Next(7))
            {
                case 0: lines[i] = lines[i][..r.Next(lines[i].Length + 1)]; break;                  // cut
                case 1: lines.RemoveAt(i); break;                                                       // drop
                case 2: lines.Insert(i, lines[r.Next(lines.Count)]); break;                             // repeat
                case 3: (lines[i], lines[^1]) = (lines[^1], lines[i]); break;                           // swap
                case 4: lines[i] = System.Text.RegularExpressions.Regex.Replace(lines[i], "[0-9a-f]+", "1fffffffffffffffffff"); break;
                case 5: lines.Insert(i, RandomLine(r)); break;                                          // noise
                default: lines[i] = lines[i] + (char)r.Next(0, 32); break;                              // control byte
            }
        }
        return lines;
    }

    [Fact]
    public void MutatedCorpusLogs_NeverThrow_AndReportsLieInsideTheLog()
    {
        var random = new Random(1731);
        for (int iteration = 0; iteration < 600; iteration++)
        {
            var log = Mutate(random, Corpus[random.Next(Corpus.Count)].Log);
            var reports = ConsoleLog.Parse(log);
            foreach (var report in reports)
            {
                Assert.InRange(report.StartLine, 0, Math.Max(0, log.Count - 1));
                Assert.InRange(report.EndLine, report.StartLine, Math.Max(0, log.Count - 1));
                Assert.False(string.IsNullOrEmpty(report.Title));
            }
        }
    }

    [Fact]
    public void RandomLogs_NeverThrow()
    {
        var random = new Random(42);
        for (int iteration = 0; iteration < 300; iteration++)
        {
            var log = Enumerable.Range(0, random.Next(1, 60)).Select(_ => RandomLine(random)).ToList();
            foreach (var report in ConsoleLog.Parse(log))
                Assert.InRange(report.EndLine, report.StartLine, log.Count - 1);
        }
    }

    [Fact]
    public void DecodeJson_OfMutatedLogs_IsValid()
    {
        var random = new Random(7);
        var dir = Repo.Scratch("mutated-logs");
        for (int iteration = 0; iteration < 12; iteration++)
        {
            var path = Path.Combine(dir, $"log{iteration}");
            File.WriteAllLines(path, Mutate(random, Corpus[random.Next(Corpus.Count)].Log));
            var r = CliRun.Run("decode", path, "--json");
            Assert.True(r.Exit is 0 or 1, r.Err);
            using var doc = JsonDocument.Parse(r.Out);
            Assert.Equal(JsonValueKind.Array, doc.RootElement.GetProperty("reports").ValueKind);
        }
    }
}
