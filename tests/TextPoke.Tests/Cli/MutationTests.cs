using TextPoke.Tests.Support;

namespace TextPoke.Tests.Cli;

/// <summary>
/// Hostile input: randomly corrupted images must give exit code 0, 1 or 2 and, on 2, exactly one line on stderr — never
/// a stack trace, a crash or a hang (the whole run is bounded by the test's own time).
/// </summary>
public class MutationTests
{
    static void Mutate(string name, byte[] original, int seed, int count, params string[] command)
    {
        var random = new Random(seed);
        var dir = Repo.Scratch("mutate");
        for (int i = 0; i < count; i++)
        {
            var bytes = (byte[])original.Clone();
            int edits = 1 + random.Next(8);
            for (int e = 0; e < edits; e++)
            {
                int at = random.Next(bytes.Length);
                switch (random.Next(3))
                {
                    case 0: bytes[at] = (byte)random.Next(256); break;
                    case 1: bytes[at] = 0xff; break;
                    default: Array.Clear(bytes, at, Math.Min(8, bytes.Length - at)); break;
                }
            }
            if (random.Next(10) == 0) bytes = bytes[..random.Next(1, bytes.Length)];
            var path = Path.Combine(dir, $"{name}-{i}");
            File.WriteAllBytes(path, bytes);
            var r = CliRun.Run(command.Length == 0 ? ["check", path] : [.. command, path]);
            Assert.True(r.Exit is 0 or 1 or 2, $"{path}: exit {r.Exit}\n{r.Err}");
            Assert.DoesNotContain("   at ", r.Err);
            // Every bad input is diagnosed by a reader, not caught by the command line's last-resort handler.
            Assert.True(!r.Err.Contains("cannot be processed"), $"{path}: {r.Err}");
            if (r.Exit == 2) Assert.Single(r.Err.TrimEnd('\n').Split('\n'));
        }
    }

    [Fact]
    public void CorruptedLinkedImages() => Mutate("elf", File.ReadAllBytes(Fixtures.Build("tables-clean")), 1731, 120);

    [Theory]
    [InlineData("tables-clean")]
    [InlineData("alt-v6.3")]
    [InlineData("alt-v5.10")]
    public void CorruptedImages_BootSimulated(string fixture) =>
        Mutate("boot-" + fixture, File.ReadAllBytes(Fixtures.Build(fixture)), 1148, 80, "simulate", "--boot", "--cpu", "qemu64,3*32+16", "--keep-going");

    [Fact]
    public void CorruptedModules() => Mutate("ko", File.ReadAllBytes(Fixtures.Build("jump-module")), 1440, 100);

    [Theory]
    [InlineData("bzip2")]
    [InlineData("xz")]
    [InlineData("lz4")]
    public void CorruptedCompressedPayloads(string format) =>
        Mutate(format, BzImageMaker.Make(BzImageMaker.Payload(format, File.ReadAllBytes(Fixtures.Build("jump-seed")))), 2022, 60);

    [Fact]
    public void CorruptedBzImages() =>
        Mutate("bz", BzImageMaker.Make(BzImageMaker.Payload("gzip", File.ReadAllBytes(Fixtures.Build("jump-seed")))), 1925, 80);
}
