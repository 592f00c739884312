using TextPoke.Tests.Support;

namespace TextPoke.Tests.Fuzz;

/// <summary>
/// Every input a fuzzing campaign (scripts/fuzz) found crashing a reader is kept in tests/fuzz-regressions/TARGET and
/// replayed here through the commands that read it: each must end in a normal result or a one-line error (exit 0, 1
/// or 2), never in the catch-all "cannot be processed" that an unanticipated exception produces.
/// </summary>
public class FuzzRegressionTests
{
    static readonly string Root = Path.Combine(Repo.Root, "tests", "fuzz-regressions");

    public static TheoryData<string, string> Inputs()
    {
        var data = new TheoryData<string, string>();
        foreach (var dir in Directory.Exists(Root) ? Directory.GetDirectories(Root) : [])
            foreach (var file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
                data.Add(Path.GetFileName(dir), Path.GetFileName(file));
        return data;
    }

    // How each target's inputs reach the command line: {} is the input, @NAME a fixture image, LOG a one-frame crash log.
    static readonly Dictionary<string, string[][]> Commands = new()
    {
        ["elf"] = [["check", "{}"], ["simulate", "{}", "--boot", "--keep-going"], ["keys", "{}"], ["sites", "{}", "--table", "alt"]],
        ["image"] = [["check", "{}"], ["simulate", "{}", "--boot", "--keep-going"], ["extract", "{}", "-o", "OUT"]],
        ["kallsyms"] = [["check", "{}"], ["keys", "{}"]],
        ["dwarf"] = [["decode", "LOG", "--vmlinux", "{}"], ["check", "{}", "--format", "sarif"]],
        ["sysmap"] = [["check", "@jump-clean", "--system-map", "{}"]],
        ["script"] = [["simulate", "@jump-seed", "--script", "{}", "--keep-going"]],
        ["decode"] = [["decode", "{}"], ["decode", "{}", "--json"]],
        ["rust"] = [["decode", "RUSTLOG"]],
    };

    static string Log(string name, string frame)
    {
        var path = Path.Combine(Repo.Scratch("fuzz-replay"), name);
        File.WriteAllText(path, "[    1.000000] kernel BUG at mm/x.c:5!\n[    1.000001] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0 #1\n" +
            $"[    1.000002] RIP: 0010:{frame}\n[    1.000003] Call Trace:\n[    1.000004]  <TASK>\n[    1.000005]  {frame}\n[    1.000006]  </TASK>\n");
        return path;
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void FoundByFuzzing_EndsInAResultOrAOneLineError(string target, string file)
    {
        string path = Path.Combine(Root, target, file);
        if (target == "initramfs")
        {
            // boot's --marker and --run reach the /init script and the archive; no QEMU is needed to replay them.
            var lines = System.Text.Encoding.Latin1.GetString(File.ReadAllBytes(path)).Split('\n');
            var init = TextPoke.Boot.Initramfs.InitScript(lines[0], lines[1..]);
            Assert.NotEmpty(TextPoke.Boot.Cpio.Write([TextPoke.Boot.CpioEntry.File("init", System.Text.Encoding.ASCII.GetBytes(init), true)]));
            return;
        }
        Assert.True(Commands.ContainsKey(target), $"no replay for target {target}");
        foreach (var command in Commands[target])
        {
            var args = command.Select(a => a switch
            {
                "{}" => path,
                "OUT" => Path.Combine(Repo.Scratch("fuzz-replay-out"), "out.elf"),
                "LOG" => Log("crash.log", "entry+0x4/0x20"),
                "RUSTLOG" => Log("rust.log", File.ReadAllText(path).Split('\n')[0].Replace("\r", "") + "+0x4/0x20"),
                _ when a.StartsWith('@') => Fixtures.Build(a[1..]),
                _ => a,
            }).ToArray();
            var r = CliRun.Run(args);
            Assert.InRange(r.Exit, 0, 2);
            Assert.DoesNotContain("cannot be processed", r.Err);
        }
    }

    [Fact]
    public void TheRegressionsAreThere() => Assert.True(Inputs().Count >= 21, "tests/fuzz-regressions holds the campaign's crashes");
}
