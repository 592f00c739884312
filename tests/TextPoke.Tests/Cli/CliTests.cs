using System.Text.Json;
using TextPoke.Demo;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Cli;

public class CliTests
{
    [Fact]
    public void Demo_PrintsTheSeedsLine_AndExits0()
    {
        var r = CliRun.Run("demo");
        Assert.Equal(0, r.Exit);
        Assert.Contains(SeedDemo.ExpectedLine, r.Lines);
        Assert.Contains("kernel BUG at arch/x86/kernel/jump_label.c:73!", r.Lines);
        // The seed's line and what matters about it; not the summary of thirteen tables the tiny image does not have.
        Assert.DoesNotContain(r.Lines, l => l.Contains("absent", StringComparison.Ordinal) || l == "summary");
        Assert.Contains("result: 1 finding, 1 of them will crash or corrupt the kernel", r.Lines);
        Assert.Equal("jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60 [ffffffff812ff3fc] (eb 1c 48 89 df != 66 90 0f 1f 00)) size:2 " +
            "type:1", SeedDemo.ExpectedLine);
    }

    [Fact]
    public void Check_ExitCodes_CleanIs0_FindingsIs1()
    {
        Assert.Equal(0, CliRun.Run("check", Fixtures.Build("jump-clean")).Exit);
        var r = CliRun.Run("check", Fixtures.Build("jump-seed"));
        Assert.Equal(1, r.Exit);
        Assert.Contains("result: 1 finding, 1 of them will crash or corrupt the kernel", r.Lines);
        Assert.Contains(r.Lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^symbols  \.symtab \(\d+ symbols\)$"));
        // Tables the image has with no entries share one summary line (the fixture's linker script defines every table).
        var empty = Assert.Single(r.Lines, l => l.TrimStart().StartsWith("empty ", StringComparison.Ordinal));
        Assert.Contains("smp_locks, ", empty);
        Assert.EndsWith("(0 entries)", empty);
        Assert.DoesNotContain(r.Lines, l => l.Contains("0 entries (empty)", StringComparison.Ordinal));
    }

    /// <summary>
    /// A stripped image whose jump table lives inside another section cannot show it without symbols: the check says
    /// what it could not read and exits 2, never "clean" (the same bytes with their .symtab are clean, exit 0). With a
    /// finding elsewhere the finding decides: exit 1, and the line still names what was not read.
    /// </summary>
    [Fact]
    public void Check_TableThatCouldNotBeRead_IsNeverClean_Exit2()
    {
        string dir = Repo.Scratch("stripped");
        foreach (var name in new[] { "jump-clean", "tables-broken" })
            Tool.Run("objcopy", ["--strip-all", Fixtures.Build(name), Path.Combine(dir, name)]);
        Assert.Equal(0, CliRun.Run("check", Fixtures.Build("jump-clean")).Exit);

        var r = CliRun.Run("check", Path.Combine(dir, "jump-clean"));
        Assert.Equal(2, r.Exit);
        Assert.Contains("result: not checked, 0 findings in the tables read, but 3 tables the image has or may have could not be read: jump, mcount, " +
            "static_calls", r.Lines);
        Assert.Contains(r.Lines, l => l.StartsWith("  jump            __jump_table: not checked: not found, and cannot be ruled out"));
        using var doc = JsonDocument.Parse(CliRun.Run("check", Path.Combine(dir, "jump-clean"), "--json").Out);
        Assert.Equal("not-checked", doc.RootElement.GetProperty("result").GetString());
        Assert.False(doc.RootElement.GetProperty("clean").GetBoolean());
        Assert.Equal("not-checked", doc.RootElement.GetProperty("tables")[0].GetProperty("status").GetString());
        Assert.Equal("jump", doc.RootElement.GetProperty("notChecked")[0].GetString());

        var broken = CliRun.Run("check", Path.Combine(dir, "tables-broken"));
        Assert.Equal(1, broken.Exit);
        Assert.Contains(broken.Lines, l => l.StartsWith("result: ") && l.Contains("; not checked: jump, mcount, static_calls", StringComparison.Ordinal));
    }

    /// <summary>
    /// A finding the kernel never acts on (an .smp_locks entry on a byte that is neither f0 nor 3e) is a notice: reported,
    /// exit 0, and exit 1 only with --strict. The same entry on 3e is acted on (made a LOCK when CPUs come up): exit 1.
    /// </summary>
    [Fact]
    public void Notices_AreReported_ButFailOnlyWithStrict()
    {
        string clean = Fixtures.Build("tables-clean");
        using var sites = JsonDocument.Parse(CliRun.Run("sites", clean, "--table", "smp_locks", "--json").Out);
        string site = sites.RootElement.GetProperty("sites")[0].GetProperty("address").GetString()!;
        var dir = Repo.Scratch("notice");
        string prefixed = Path.Combine(dir, "prefixed"), ds = Path.Combine(dir, "ds");
        Assert.Equal(0, CliRun.Run("poke", clean, site, "66", "-o", prefixed).Exit);
        Assert.Equal(0, CliRun.Run("poke", clean, site, "3e", "-o", ds).Exit);
        Assert.Equal(0, CliRun.Run("check", clean).Exit);

        var notice = CliRun.Run("check", prefixed);
        Assert.Equal(0, notice.Exit);
        Assert.Contains(notice.Lines, l => l.Contains("[smp.not-lock, notice]", StringComparison.Ordinal));
        Assert.Contains("result: clean, 0 findings (1 notice: reported above, cannot change behaviour; --strict fails on them)", notice.Lines);
        Assert.Equal(1, CliRun.Run("check", prefixed, "--strict").Exit);
        using var json = JsonDocument.Parse(CliRun.Run("check", prefixed, "--json").Out);
        Assert.Equal("clean", json.RootElement.GetProperty("result").GetString());
        Assert.Equal(1, CliRun.Run("check", ds).Exit);
        Assert.Contains(CliRun.Run("check", ds).Lines, l => l.Contains("[smp.not-lock, warning]", StringComparison.Ordinal));
    }

    [Fact]
    public void Check_Json_CarriesTheSameFinding()
    {
        var r = CliRun.Run("check", Fixtures.Build("jump-seed"), "--json");
        Assert.Equal(1, r.Exit);
        using var doc = JsonDocument.Parse(r.Out);
        var root = doc.RootElement;
        Assert.False(root.GetProperty("clean").GetBoolean());
        var table = root.GetProperty("tables")[0];
        Assert.Equal("jump", table.GetProperty("name").GetString());
        Assert.Equal(1, table.GetProperty("stats").GetProperty("entries").GetInt32());
        var finding = table.GetProperty("findings")[0];
        Assert.Equal("jump.objtool-not-run", finding.GetProperty("rule").GetString());
        Assert.Equal("bug", finding.GetProperty("severity").GetString());
        Assert.Equal("0xffffffff8100001c", finding.GetProperty("address").GetString());
        Assert.Equal("jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60 [ffffffff8100001c] (eb 1c 48 89 df != 66 90 0f 1f 00)) size:2 " +
            "type:1",
            finding.GetProperty("kernelLines")[0].GetString());
    }

    [Fact]
    public void Keys_ListsEachKeyWithItsState()
    {
        var r = CliRun.Run("keys", Fixtures.Build("jump-clean"));
        Assert.Equal(0, r.Exit);
        var line = r.Lines.Single(l => l.StartsWith("frontswap_enabled_key"));
        Assert.Matches(@"^frontswap_enabled_key\s+ffffffff8100\w{4}\s+off\s+\.bss\s+3\s+3\s+0\s+0\s+0$", line);
        Assert.Matches(@"^on_key\s+\w{16}\s+on\s+\.data\s+2\s+1\s+1\s+0\s+0$", r.Lines.Single(l => l.StartsWith("on_key")));
        using var doc = JsonDocument.Parse(CliRun.Run("keys", Fixtures.Build("jump-clean"), "--json").Out);
        Assert.Equal(3, doc.RootElement.GetProperty("keys").GetArrayLength());
    }

    [Fact]
    public void Sites_FiltersByKeyAndFunction()
    {
        var elf = Fixtures.Build("jump-clean");
        var byKey = CliRun.Run("sites", elf, "--key", "on_key");
        Assert.Equal(0, byKey.Exit);
        Assert.Contains("2 of 6 sites", byKey.Lines);
        var byFunction = CliRun.Run("sites", elf, "--function", "init_zswap");
        Assert.Contains("1 of 6 sites", byFunction.Lines);
        Assert.Contains(byFunction.Lines, l => l.Contains("init_zswap+0x0/0x6") && l.EndsWith("frontswap_enabled_key init"));
        Assert.Equal(2, CliRun.Run("sites", elf, "--key", "no_such_key").Exit);
        Assert.Equal(2, CliRun.Run("sites", elf, "--function", "no_such_function").Exit);
    }

    [Fact]
    public void Help_Exits0_AndListsTheCommands()
    {
        var r = CliRun.Run("--help");
        Assert.Equal(0, r.Exit);
        foreach (var command in new[] { "check", "keys", "sites", "demo" }) Assert.Contains(command, r.Out);
    }
}
