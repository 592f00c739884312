using System.Text;

namespace TextPoke.Boot;

/// <summary>One member of a cpio archive.</summary>
public sealed record CpioEntry(string Path, uint Mode, byte[] Data, uint DevMajor = 0, uint DevMinor = 0)
{
    public const uint Directory = 0x4000, Regular = 0x8000, Symlink = 0xa000, CharDevice = 0x2000;

    public static CpioEntry Dir(string path) => new(path, Directory | 0x1ed, []);                 // 0755
    public static CpioEntry File(string path, byte[] data, bool executable = false) => new(path, Regular | (executable ? 0x1edu : 0x1a4u), data);
    public static CpioEntry Link(string path, string target) => new(path, Symlink | 0x1ff, Encoding.ASCII.GetBytes(target));
    public static CpioEntry Char(string path, uint major, uint minor) => new(path, CharDevice | 0x180, [], major, minor); // 0600
}

/// <summary>
/// Writes cpio "newc" archives (the format the kernel unpacks as an initramfs, Documentation/driver-api/early-userspace/
/// buffer-format.rst): a 110-byte ASCII header per member, name and data each padded to 4 bytes, a TRAILER!!! member.
/// Device nodes need no privileges to write, so /dev/console can be in the archive.
/// </summary>
public static class Cpio
{
    public static byte[] Write(IEnumerable<CpioEntry> entries)
    {
        var output = new MemoryStream();
        uint inode = 1;
        foreach (var e in entries) Member(output, e, inode++);
        Member(output, new CpioEntry("TRAILER!!!", 0, []), 0);
        while (output.Length % 512 != 0) output.WriteByte(0);
        return output.ToArray();
    }

    static void Member(Stream output, CpioEntry e, uint inode)
    {
        var name = Encoding.ASCII.GetBytes(e.Path.TrimStart('/') is { Length: > 0 } n ? n : ".");
        var header = new StringBuilder("070701");
        foreach (uint field in new uint[]
        {
            inode, e.Mode, 0 /* uid */, 0 /* gid */, (e.Mode & CpioEntry.Directory) != 0 ? 2u : 1u /* nlink */, 0 /* mtime */,
            (uint)e.Data.Length, 0, 0 /* dev major, minor */, e.DevMajor, e.DevMinor, (uint)name.Length + 1, 0 /* check */,
        })
            header.Append(field.ToString("x8"));
        output.Write(Encoding.ASCII.GetBytes(header.ToString()));
        output.Write(name);
        output.WriteByte(0);
        Pad(output);
        output.Write(e.Data);
        Pad(output);
    }

    static void Pad(Stream s)
    {
        while (s.Position % 4 != 0) s.WriteByte(0);
    }
}

/// <summary>The default initramfs: busybox, /init that mounts proc/sys/devtmpfs, prints a marker, runs commands, powers off.</summary>
public static class Initramfs
{
    /// <summary>Where Debian's busybox-static installs its static binary.</summary>
    public static readonly string[] BusyboxPaths = ["/bin/busybox", "/usr/bin/busybox"];

    public static string? FindBusybox() => BusyboxPaths.FirstOrDefault(System.IO.File.Exists);

    /// <summary>
    /// The /init script: the marker goes to the console only after the mounts succeeded. With <paramref name="hold"/> the
    /// guest stays up after the marker (for boot --verify, which reads its memory) instead of powering off.
    /// </summary>
    public static string InitScript(string marker, IReadOnlyList<string> commands, bool hold = false)
    {
        var sb = new StringBuilder();
        sb.Append("#!/bin/busybox sh\n");
        sb.Append("/bin/busybox --install -s /bin\n");
        sb.Append("export PATH=/bin\n");
        sb.Append("mount -t proc proc /proc\nmount -t sysfs sysfs /sys\nmount -t devtmpfs devtmpfs /dev 2>/dev/null\n");
        sb.Append("mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null\n");
        foreach (var c in commands) sb.Append($"echo 'textpoke-run: {c.Replace("'", "'\\''")}'\n{c}\n");
        sb.Append($"echo {marker}\n");
        sb.Append(hold ? "while true; do sleep 3600; done\n" : "poweroff -f\n");
        return sb.ToString();
    }

    /// <summary>Builds the archive from the machine's static busybox.</summary>
    public static byte[] Build(string busybox, string marker, IReadOnlyList<string> commands, bool hold = false) => Cpio.Write(
    [
        CpioEntry.Dir("bin"), CpioEntry.Dir("dev"), CpioEntry.Dir("proc"), CpioEntry.Dir("sys"), CpioEntry.Dir("tmp"),
        CpioEntry.Char("dev/console", 5, 1), CpioEntry.Char("dev/null", 1, 3),
        CpioEntry.File("bin/busybox", System.IO.File.ReadAllBytes(busybox), executable: true),
        CpioEntry.Link("bin/sh", "busybox"),
        CpioEntry.File("init", Encoding.ASCII.GetBytes(InitScript(marker, commands, hold)), executable: true),
    ]);
}
