using System.Diagnostics;
using TextPoke.Images;

namespace TextPoke.Boot;

/// <summary>How to run QEMU for one boot.</summary>
public sealed record QemuOptions(string Kernel, string Initrd, string Append, int MemoryMb = 1024, int Cpus = 1, string Accelerator = "tcg",
    string Binary = "qemu-system-x86_64", string? MonitorSocket = null, string? Cpu = null, string? GdbSocket = null);

/// <summary>The QEMU command line for x86_64 and the probe that decides between KVM and TCG.</summary>
public static class Qemu
{
    /// <summary>console on the serial port; panic=-1 reboots at once on a panic and -no-reboot turns that into an exit; oops=panic ends a kworker oops
    /// too.</summary>
    public const string DefaultAppend = "console=ttyS0 panic=-1 oops=panic";

    public static List<string> Arguments(QemuOptions o)
    {
        var args = new List<string>
        {
            "-kernel", o.Kernel, "-initrd", o.Initrd, "-append", o.Append,
            "-no-reboot", "-nographic", "-m", o.MemoryMb.ToString(), "-smp", o.Cpus.ToString(),
            "-accel", o.Accelerator,
        };
        if (o.Cpu != null) args.AddRange(["-cpu", o.Cpu]);
        else if (o.Accelerator == "kvm") args.AddRange(["-cpu", "host"]);
        if (o.MonitorSocket != null) args.AddRange(["-monitor", $"unix:{o.MonitorSocket},server,nowait"]);
        if (o.GdbSocket != null) args.AddRange(["-gdb", $"unix:{o.GdbSocket},server,nowait"]);
        return args;
    }

    /// <summary>
    /// Whether KVM can actually run a guest here: /dev/kvm may exist on hosts where creating a vCPU fails (QEMU aborts at
    /// once with an MSR error). QEMU is started paused with KVM; alive after the grace period means usable.
    /// </summary>
    public static (bool Usable, string Reason) ProbeKvm(string binary = "qemu-system-x86_64", int graceMilliseconds = 1000)
    {
        if (!File.Exists("/dev/kvm")) return (false, "no /dev/kvm");
        var psi = new ProcessStartInfo(binary) { RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = true,
            UseShellExecute = false };
        foreach (var a in new[] { "-accel", "kvm", "-cpu", "host", "-S", "-nodefaults", "-display", "none", "-machine", "q35", "-monitor",
            "none" }) psi.ArgumentList.Add(a);
        Process? p;
        try { p = Process.Start(psi); }
        catch (System.ComponentModel.Win32Exception e) { return (false, $"{binary} cannot be started: {e.Message}"); }
        if (p == null) return (false, $"{binary} cannot be started");
        using (p)
        {
            var stderr = p.StandardError.ReadToEndAsync();
            if (p.WaitForExit(graceMilliseconds))
            {
                string first = stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.Trim() ?? $"exit code {p.ExitCode}";
                return (false, first);
            }
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return (true, "KVM works");
        }
    }

    /// <summary>
    /// Checks that QEMU can boot this file directly: a bzImage, or an ELF vmlinux carrying the PVH entry note
    /// (XEN_ELFNOTE_PHYS32_ENTRY). Throws <see cref="ImageFormatException"/> otherwise.
    /// </summary>
    public static string Bootable(string path)
    {
        using var image = KernelImage.Open(path);
        return Bootable(image);
    }

    public static string Bootable(KernelImage image)
    {
        string path = image.Path;
        if (image.Kind == ImageKind.BzImage) return "bzImage";
        if (image.Kind != ImageKind.Vmlinux)
            throw new ImageFormatException(path, $"a {image.Describe()} cannot be booted; give a bzImage or an ELF vmlinux");
        if (!image.Elf.Notes().Any(n => n.Owner == "Xen" && n.Type == 18))
            throw new ImageFormatException(path,
                "this ELF has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY), so QEMU cannot boot it directly; give the bzImage");
        return "ELF vmlinux (PVH)";
    }
}
