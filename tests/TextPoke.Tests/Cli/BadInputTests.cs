using System.Buffers.Binary;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Cli;

/// <summary>Bad input gets one line on stderr naming the file and the problem, exit code 2, never a stack trace.</summary>
public class BadInputTests
{
    static void AssertOneLineError(CliRun.Result r, string path, string expected)
    {
        Assert.Equal(2, r.Exit);
        Assert.Equal("", r.Out);
        var lines = r.Err.TrimEnd('\n').Split('\n');
        Assert.Single(lines);
        Assert.StartsWith($"textpoke: {path}", lines[0]);
        Assert.Contains(expected, lines[0]);
        Assert.DoesNotContain("   at ", r.Err);
    }

    static string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(Repo.Scratch("bad"), name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void EmptyFile() { var p = Write("empty", []); AssertOneLineError(CliRun.Run("check", p), p, "empty file"); }

    [Fact]
    public void RandomBytes()
    {
        var bytes = new byte[4096];
        new Random(1731).NextBytes(bytes);
        var p = Write("random", bytes);
        AssertOneLineError(CliRun.Run("check", p), p, "not a kernel image");
    }

    [Fact]
    public void MissingFile() { var p = Path.Combine(Repo.Scratch("bad"), "nope"); AssertOneLineError(CliRun.Run("check", p), p, "no such file"); }

    [Fact]
    public void TruncatedElf()
    {
        var elf = File.ReadAllBytes(Fixtures.Build("jump-clean"));
        var p = Write("truncated", elf[..(elf.Length / 3)]);
        AssertOneLineError(CliRun.Run("check", p), p, "truncated");
    }

    [Fact]
    public void ElfOfAnotherMachine()
    {
        var elf = File.ReadAllBytes(Fixtures.Build("jump-clean"));
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(18), 183);
        var p = Write("arm64", elf);
        AssertOneLineError(CliRun.Run("check", p), p, "ELF for AArch64, not x86-64");
    }

    [Fact]
    public void Elf32()
    {
        var elf = File.ReadAllBytes(Fixtures.Build("jump-clean"));
        elf[4] = 1;
        var p = Write("elf32", elf);
        AssertOneLineError(CliRun.Run("check", p), p, "32-bit ELF");
    }

    [Fact]
    public void HostileSectionHeaderOffset()
    {
        var elf = File.ReadAllBytes(Fixtures.Build("jump-clean"));
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(40), ulong.MaxValue - 10);
        var p = Write("hostile", elf);
        AssertOneLineError(CliRun.Run("check", p), p, "section header table");
    }

    [Fact]
    public void CorruptBzImagePayload()
    {
        var elf = File.ReadAllBytes(Fixtures.Build("jump-clean"));
        var payload = BzImageMaker.Payload("xz", elf);
        for (int i = 32; i < payload.Length - 8; i += 5) payload[i] ^= 0xff;
        var p = Write("vmlinuz", BzImageMaker.Make(payload));
        AssertOneLineError(CliRun.Run("check", p), p, "corrupt xz payload");
    }

    [Fact]
    public void SystemMapThatDoesNotMatch()
    {
        var elf = Fixtures.Build("jump-seed");
        var map = Write("System.map", "ffffffff82000000 T _stext\nffffffff82000000 T swap_writepage\nffffffff82000060 T swap_readpage\n"u8.ToArray());
        AssertOneLineError(CliRun.Run("check", elf, "--system-map", map), map, "does not match");
    }

    [Fact]
    public void SystemMapStubGivenExplicitly()
    {
        var elf = Fixtures.Build("jump-seed");
        var map = Write("System.map-6.1.0-56-amd64", "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n"u8.ToArray());
        AssertOneLineError(CliRun.Run("check", elf, "--system-map", map), map, "Debian's one-line stub");
    }

    [Fact]
    public void NotASystemMap()
    {
        var elf = Fixtures.Build("jump-seed");
        var map = Write("System.map", "hello world\n"u8.ToArray());
        AssertOneLineError(CliRun.Run("check", elf, "--system-map", map), map, "not a System.map");
    }

    [Fact]
    public void UsageErrorsExitWith2()
    {
        var elf = Fixtures.Build("jump-seed");
        Assert.Equal(2, CliRun.Run("check").Exit);
        Assert.Equal(2, CliRun.Run("check", elf, "--bogus").Exit);
        Assert.Equal(2, CliRun.Run("frobnicate").Exit);
        var r = CliRun.Run("check", elf, "--tables", "jump,nonsense");
        Assert.Equal(2, r.Exit);
        Assert.Contains("unknown table 'nonsense'", r.Err);
    }
}
