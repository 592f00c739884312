using System.Text.Json;
using System.Xml.Linq;
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
        var rule = Assert.Single(run.GetProperty("tool").GetProperty("driver").GetProperty("rules").EnumerateArray());
        Assert.Equal("jump.objtool-not-run", rule.GetProperty("id").GetString());
        Assert.Equal("error", rule.GetProperty("defaultConfiguration").GetProperty("level").GetString());
        var result = Assert.Single(run.GetProperty("results").EnumerateArray());
        Assert.Equal("jump.objtool-not-run", result.GetProperty("ruleId").GetString());
        Assert.Equal(0, result.GetProperty("ruleIndex").GetInt32());
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
        Assert.Equal(2, CliRun.Run("decode", Repo.BootLog("debian-6.1.0-53-amd64-ok.log"), "--format", "sarif").Exit);
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
}
