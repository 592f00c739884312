using System.Text.Json;
using System.Xml.Linq;
using TextPoke.Checks;
using TextPoke.Cli;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Cli;

/// <summary>check --format sarif and --format junit: the shapes code scanning and CI test reports read, same exit codes.</summary>
public class CiOutputTests
{
    [Fact]
    public void Sarif_OneResultPerFinding_WithTheKernelsLineAndTheSymbolLocation()
    {
        var r = CliRun.Run("check", Fixtures.Build("jump-seed"), "--format", "sarif");
        Assert.Equal(1, r.Exit);
        using var doc = JsonDocument.Parse(r.Out);
        var root = doc.RootElement;
        Assert.Equal("2.1.0", root.GetProperty("version").GetString());
        var run = root.GetProperty("runs")[0];
        Assert.Equal("textpoke", run.GetProperty("tool").GetProperty("driver").GetProperty("name").GetString());
        var rules = run.GetProperty("tool").GetProperty("driver").GetProperty("rules").EnumerateArray().ToList();
        Assert.Equal(RuleCatalogue.All.Select(r => r.Id), rules.Select(r => r.GetProperty("id").GetString()));
        var result = Assert.Single(run.GetProperty("results").EnumerateArray());
        Assert.Equal("jump.objtool-not-run", result.GetProperty("ruleId").GetString());
        var rule = rules[result.GetProperty("ruleIndex").GetInt32()];
        Assert.Equal("jump.objtool-not-run", rule.GetProperty("id").GetString());
        Assert.Equal("error", rule.GetProperty("defaultConfiguration").GetProperty("level").GetString());
        Assert.Contains("objtool", rule.GetProperty("shortDescription").GetProperty("text").GetString());
        Assert.StartsWith("jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60",
            result.GetProperty("message").GetProperty("text").GetString());
        var location = result.GetProperty("locations")[0];
        Assert.StartsWith("file:///", location.GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("uri").GetString());
        Assert.Equal("swap_writepage+0x1c/0x60", location.GetProperty("logicalLocations")[0].GetProperty("fullyQualifiedName").GetString());
        Assert.True(run.GetProperty("invocations")[0].GetProperty("executionSuccessful").GetBoolean());

        var clean = CliRun.Run("check", Fixtures.Build("jump-clean"), "--format", "sarif");
        Assert.Equal(0, clean.Exit);
        using var cleanDoc = JsonDocument.Parse(clean.Out);
        Assert.Equal(0, cleanDoc.RootElement.GetProperty("runs")[0].GetProperty("results").GetArrayLength());
    }

    static readonly Lazy<NJsonSchema.JsonSchema> Schema = new(() =>
        NJsonSchema.JsonSchema.FromJsonAsync(File.ReadAllText(Path.Combine(Repo.Root, "tests", "data", "sarif", "sarif-2.1.0-rtm.5.json"))).Result);

    static void AssertSchemaValid(string sarif)
    {
        var errors = Schema.Value.Validate(sarif);
        Assert.True(errors.Count == 0, string.Join("\n", errors.Select(e => $"{e.Path}: {e.Kind}")) + "\n" + sarif);
    }

    /// <summary>
    /// Every SARIF document check writes — findings, clean, tables not read, source lines, a module tree with a file in
    /// error — is valid against the SARIF 2.1.0 schema (vendored in tests/data/sarif); and the validator does reject a
    /// document that breaks it, so the test can fail.
    /// </summary>
    [Fact]
    public void Sarif_IsValidAgainstTheSarif210Schema()
    {
        var dir = Repo.Scratch("sarif-schema");
        var stripped = Path.Combine(dir, "stripped");
        Tool.Run("objcopy", ["--strip-all", Fixtures.Build("jump-clean"), stripped]);
        var tree = Path.Combine(dir, "tree");
        Directory.CreateDirectory(tree);
        File.Copy(Fixtures.Build("jump-module"), Path.Combine(tree, "a.ko"));
        File.WriteAllBytes(Path.Combine(tree, "broken.ko"), [0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1]);
        var outputs = new List<string>();
        foreach (var args in new[]
        {
            ["check", Fixtures.Build("jump-seed"), "--format", "sarif"], ["check", Fixtures.Build("jump-clean"), "--format", "sarif"],
            ["check", stripped, "--format", "sarif"], ["check", Fixtures.Build("jump-seed-debug"), "--format", "sarif"],
            ["check", Fixtures.Build("tables-broken"), "--format", "sarif"], ["check", tree, "--vmlinux", Fixtures.Build("jump-clean"), "--format", "sarif"],
            new[] { "decode", Repo.BootLog("debian-6.1.0-53-amd64-swap_writepage-jmp.log"), "--format", "sarif" },
        })
        {
            var r = CliRun.Run(args);
            Assert.True(r.Exit is 0 or 1 or 2, r.Err);
            Assert.StartsWith("{", r.Out);
            outputs.Add(r.Out);
            AssertSchemaValid(r.Out);
        }
        var broken = outputs[0].Replace("\"level\": \"error\"", "\"level\": \"critical\"", StringComparison.Ordinal);
        Assert.NotEqual(outputs[0], broken);
        Assert.NotEmpty(Schema.Value.Validate(broken));
    }

    /// <summary>With DWARF in the image, a result points at the source line of the site (the seed's jmp is line 7 of its .S).</summary>
    [Fact]
    public void Sarif_WithDwarf_PointsAtTheSourceLine()
    {
        var r = CliRun.Run("check", Fixtures.Build("jump-seed-debug"), "--format", "sarif");
        Assert.Equal(1, r.Exit);
        using var doc = JsonDocument.Parse(r.Out);
        var physical = Assert.Single(doc.RootElement.GetProperty("runs")[0].GetProperty("results").EnumerateArray())
            .GetProperty("locations")[0].GetProperty("physicalLocation");
        Assert.EndsWith("/tests/fixtures/jump-seed-debug.S", physical.GetProperty("artifactLocation").GetProperty("uri").GetString());
        Assert.Equal(7, physical.GetProperty("region").GetProperty("startLine").GetInt32());
    }

    [Theory]
    [InlineData("debian/build/build_amd64_none_amd64/kernel/sched/core.c", "kernel/sched/core.c", "SRCROOT")]
    [InlineData("./arch/x86/include/asm/jump_label.h", "arch/x86/include/asm/jump_label.h", "SRCROOT")]
    [InlineData("/build/linux-6.1.0/mm/page_io.c", "mm/page_io.c", "SRCROOT")]
    [InlineData("zfs/module/os/linux/zfs/zfs_vnops_os.c", "zfs/module/os/linux/zfs/zfs_vnops_os.c", "SRCROOT")]
    [InlineData("/opt/src/my file.c", "file:///opt/src/my%20file.c", null)]
    public void SarifSourcePaths_AreCutToTheKernelTree(string dwarf, string uri, string? baseId)
    {
        var artifact = CiOutput.SourceArtifact(dwarf);
        Assert.Equal(uri, artifact.Uri);
        Assert.Equal(baseId, artifact.UriBaseId);
    }

    /// <summary>The catalogue, the checkers and docs/checks.md name the same rules.</summary>
    [Fact]
    public void RuleCatalogue_MatchesTheCheckersAndTheDocs()
    {
        var ids = RuleCatalogue.All.Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(RuleCatalogue.All.Count, ids.Count);
        var source = string.Concat(Directory.EnumerateFiles(Path.Combine(Repo.Root, "src", "TextPoke", "Checks"), "*.cs")
            .Where(f => !f.EndsWith("RuleCatalogue.cs", StringComparison.Ordinal)).Select(File.ReadAllText));
        var used = System.Text.RegularExpressions.Regex.Matches(source, @"""((?:jump|alt|smp|return|retpoline|mcount|static_call|ex|bug|orc|paravirt|module)" +
            @"\.[a-z0-9-]+)""").Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        foreach (var t in new[] { "call_sites", "ibt_endbr_seal", "cfi_sites" }) used.Add(t + ".bad-site");
        Assert.Equal(used.Order(StringComparer.Ordinal), ids.Order(StringComparer.Ordinal));
        var docs = File.ReadAllText(Path.Combine(Repo.Root, "docs", "checks.md"));
        Assert.Equal([], ids.Where(i => !docs.Contains($"`{i}`", StringComparison.Ordinal)).ToArray());
    }

    [Fact]
    public void JUnit_AFailurePerFileWithFindings_AnErrorForTablesNotRead()
    {
        var r = CliRun.Run("check", Fixtures.Build("jump-seed"), "--format", "junit");
        Assert.Equal(1, r.Exit);
        var xml = XDocument.Parse(r.Out);
        var suites = xml.Root!;
        Assert.Equal("testsuites", suites.Name.LocalName);
        Assert.Equal("1", suites.Attribute("tests")!.Value);
        Assert.Equal("1", suites.Attribute("failures")!.Value);
        var failure = suites.Element("testsuite")!.Element("testcase")!.Element("failure")!;
        Assert.Contains("jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60", failure.Value);

        var dir = Repo.Scratch("junit");
        var stripped = Path.Combine(dir, "stripped");
        Tool.Run("objcopy", ["--strip-all", Fixtures.Build("jump-clean"), stripped]);
        var unread = CliRun.Run("check", stripped, "--format", "junit");
        Assert.Equal(2, unread.Exit);
        var error = XDocument.Parse(unread.Out).Root!.Element("testsuite")!.Element("testcase")!.Element("error")!;
        Assert.StartsWith("not checked: jump: ", error.Attribute("message")!.Value);

        var sarif = CliRun.Run("check", stripped, "--format", "sarif");
        using var doc = JsonDocument.Parse(sarif.Out);
        var invocation = doc.RootElement.GetProperty("runs")[0].GetProperty("invocations")[0];
        Assert.False(invocation.GetProperty("executionSuccessful").GetBoolean());
        Assert.Equal(3, invocation.GetProperty("toolExecutionNotifications").GetArrayLength());
    }

    [Fact]
    public void UnknownFormat_IsAUsageError()
    {
        var r = CliRun.Run("check", Fixtures.Build("jump-clean"), "--format", "xml");
        Assert.Equal(2, r.Exit);
        Assert.Contains("--format xml", r.Err);
    }

    [Fact]
    public void DecodeJUnit_ATestCasePerReport_OrOnePassingCase()
    {
        var crash = CliRun.Run("decode", Repo.BootLog("debian-6.1.0-53-amd64-swap_writepage-jmp.log"), "--format", "junit");
        Assert.Equal(1, crash.Exit);
        var suites = XDocument.Parse(crash.Out).Root!;
        Assert.Equal("1", suites.Attribute("failures")!.Value);
        var failure = suites.Element("testsuite")!.Element("testcase")!.Element("failure")!;
        Assert.Equal("kernel BUG in __jump_label_patch [BUG]", failure.Attribute("message")!.Value);
        Assert.Contains("kernel BUG at arch/x86/kernel/jump_label.c:73!", failure.Value);

        var clean = CliRun.Run("decode", Repo.BootLog("debian-6.1.0-53-amd64-ok.log"), "--format", "junit");
        Assert.Equal(0, clean.Exit);
        var only = Assert.Single(XDocument.Parse(clean.Out).Root!.Element("testsuite")!.Elements("testcase"));
        Assert.Empty(only.Elements());
        Assert.Equal(2, CliRun.Run("decode", Repo.BootLog("debian-6.1.0-53-amd64-ok.log"), "--format", "xml").Exit);
    }

    /// <summary>decode --format sarif: a result per report, at the report's lines in the log; none for a clean log.</summary>
    [Fact]
    public void DecodeSarif_AResultPerReport_AtItsLinesInTheLog()
    {
        var log = Repo.BootLog("debian-6.1.0-53-amd64-swap_writepage-jmp.log");
        var r = CliRun.Run("decode", log, "--format", "sarif");
        Assert.Equal(1, r.Exit);
        using var json = JsonDocument.Parse(CliRun.Run("decode", log, "--json").Out);
        var report = json.RootElement.GetProperty("reports")[0];
        using var doc = JsonDocument.Parse(r.Out);
        var run = doc.RootElement.GetProperty("runs")[0];
        var result = Assert.Single(run.GetProperty("results").EnumerateArray());
        Assert.Equal("crash.bug", result.GetProperty("ruleId").GetString());
        Assert.Equal("kernel BUG in __jump_label_patch", result.GetProperty("message").GetProperty("text").GetString());
        var location = result.GetProperty("locations")[0];
        Assert.EndsWith("debian-6.1.0-53-amd64-swap_writepage-jmp.log", location.GetProperty("physicalLocation").GetProperty("artifactLocation")
            .GetProperty("uri").GetString());
        var region = location.GetProperty("physicalLocation").GetProperty("region");
        Assert.Equal(report.GetProperty("startLine").GetInt32() + 1, region.GetProperty("startLine").GetInt32());
        Assert.Equal(report.GetProperty("endLine").GetInt32() + 1, region.GetProperty("endLine").GetInt32());
        Assert.Equal("__jump_label_patch", location.GetProperty("logicalLocations")[0].GetProperty("fullyQualifiedName").GetString());
        Assert.Contains("kernel BUG at arch/x86/kernel/jump_label.c:73!", result.GetProperty("properties").GetProperty("lines").GetString());

        var clean = CliRun.Run("decode", Repo.BootLog("debian-6.1.0-53-amd64-ok.log"), "--format", "sarif");
        Assert.Equal(0, clean.Exit);
        using var cleanDoc = JsonDocument.Parse(clean.Out);
        Assert.Equal(0, cleanDoc.RootElement.GetProperty("runs")[0].GetProperty("results").GetArrayLength());
        AssertSchemaValid(clean.Out);
    }

    /// <summary>Characters XML 1.0 refuses (U+FFFF) in a log end in an escaped name, never in an exception; emoji stay whole.</summary>
    [Fact]
    public void DecodeJUnit_OfTextXmlRefuses_IsStillXml()
    {
        var log = Path.Combine(Repo.Scratch("junit-xml"), "log");
        File.WriteAllText(log, "[    1.000000] kernel BUG at mm/x.c:5!\n[    1.000001] CPU: 0 PID: 1 Comm: a\uffffb\U0001F600 Not tainted 6.1.0 #1\n" +
            "[    1.000002] RIP: 0010:foo+0x1/0x2\n");
        var r = CliRun.Run("decode", log, "--format", "junit");
        Assert.Equal(1, r.Exit);
        Assert.Equal("", r.Err);
        var failure = XDocument.Parse(r.Out).Root!.Element("testsuite")!.Element("testcase")!.Element("failure")!;
        Assert.Contains("a\\uffffb\U0001F600", failure.Value);
    }

    /// <summary>simulate --format sarif|junit: a result per BUG/WARN of the emulated kernel, with the kernel's lines; none when clean.</summary>
    [Fact]
    public void SimulateFormats_AResultPerEmulatedBugOrWarn()
    {
        var seed = CliRun.Run("simulate", Fixtures.Build("jump-seed"), "--enable", "frontswap_enabled_key", "--format", "sarif");
        Assert.Equal(1, seed.Exit);
        AssertSchemaValid(seed.Out);
        using (var doc = JsonDocument.Parse(seed.Out))
        {
            var result = Assert.Single(doc.RootElement.GetProperty("runs")[0].GetProperty("results").EnumerateArray());
            Assert.Equal("simulate.jump-label-bug", result.GetProperty("ruleId").GetString());
            Assert.StartsWith("jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60",
                result.GetProperty("message").GetProperty("text").GetString());
            Assert.Equal("frontswap_enabled_key", result.GetProperty("properties").GetProperty("key").GetString());
            Assert.StartsWith("static_key_enable -> ", result.GetProperty("properties").GetProperty("callPath").GetString());
        }
        var junit = CliRun.Run("simulate", Fixtures.Build("jump-seed"), "--enable", "frontswap_enabled_key", "--format", "junit");
        Assert.Equal(1, junit.Exit);
        var failure = XDocument.Parse(junit.Out).Root!.Element("testsuite")!.Element("testcase")!.Element("failure")!;
        Assert.Equal("1 BUG, 0 WARNs", failure.Attribute("message")!.Value);
        Assert.Contains("kernel BUG at arch/x86/kernel/jump_label.c:73!", failure.Value);

        var clean = CliRun.Run("simulate", Fixtures.Build("jump-clean"), "--format", "sarif");
        Assert.Equal(0, clean.Exit);
        using (var doc = JsonDocument.Parse(clean.Out)) Assert.Equal(0, doc.RootElement.GetProperty("runs")[0].GetProperty("results").GetArrayLength());

        var boot = CliRun.Run("simulate", "--boot", Fixtures.Build("tables-broken"), "--cpu", "none", "--format", "sarif");
        Assert.Equal(1, boot.Exit);
        AssertSchemaValid(boot.Out);
        using (var doc = JsonDocument.Parse(boot.Out))
            Assert.Equal("simulate.boot-bug", doc.RootElement.GetProperty("runs")[0].GetProperty("results")[0].GetProperty("ruleId").GetString());
        var bootJUnit = CliRun.Run("simulate", "--boot", Fixtures.Build("tables-clean"), "--cpu", "none", "--format", "junit");
        Assert.Equal(0, bootJUnit.Exit);
        Assert.Empty(XDocument.Parse(bootJUnit.Out).Root!.Element("testsuite")!.Element("testcase")!.Elements());
        Assert.Equal(2, CliRun.Run("simulate", Fixtures.Build("jump-clean"), "--json", "--format", "junit").Exit);
    }

    /// <summary>
    /// boot --format junit|sarif, on boots recorded through a stand-in QEMU: a test case per boot (a crash fails with its
    /// report, a clean boot passes); SARIF results at the report's lines in that boot's log.
    /// </summary>
    [Fact]
    public void BootFormats_ATestCasePerBoot()
    {
        var crashed = TextPoke.Tests.Boot.BootUnitTests.WatchLog(Repo.BootLog("debian-6.1.0-53-amd64-swap_writepage-jmp.log"), "never-printed");
        var booted = TextPoke.Tests.Boot.BootUnitTests.WatchLog(Repo.BootLog("debian-6.1.0-53-amd64-ok.log"), TextPoke.Tests.Boot.BootUnitTests.OkMarker);
        Assert.Equal(TextPoke.Boot.BootOutcome.Booted, booted.Outcome);
        var junit = new StringWriter();
        Commands.BootJUnit(junit, "vmlinuz", [crashed, booted], Fixtures.Build("jump-clean"));
        var cases = XDocument.Parse(junit.ToString()).Root!.Element("testsuite")!.Elements("testcase").ToList();
        Assert.Equal(["vmlinuz: boot 1", "vmlinuz: boot 2"], cases.Select(c => c.Attribute("name")!.Value));
        Assert.Equal("crashed: kernel BUG in __jump_label_patch", cases[0].Element("failure")!.Attribute("message")!.Value);
        Assert.Contains("kernel BUG at arch/x86/kernel/jump_label.c:73!", cases[0].Element("failure")!.Value);
        Assert.Empty(cases[1].Elements());

        var sarif = new StringWriter();
        Commands.BootSarif(sarif, [crashed, booted], Fixtures.Build("jump-clean"));
        AssertSchemaValid(sarif.ToString());
        using var doc = JsonDocument.Parse(sarif.ToString());
        var result = Assert.Single(doc.RootElement.GetProperty("runs")[0].GetProperty("results").EnumerateArray());
        Assert.Equal("kernel BUG in __jump_label_patch", result.GetProperty("message").GetProperty("text").GetString());
        Assert.Equal(new Uri(crashed.LogPath).AbsoluteUri, result.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("artifactLocation")
            .GetProperty("uri").GetString());
    }
}
