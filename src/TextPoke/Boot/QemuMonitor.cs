using TextPoke.Live;

namespace TextPoke.Boot;

/// <summary>
/// QEMU's human monitor on a Unix socket: stop the guest and copy ranges of its (virtual) memory out with memsave, the
/// way `boot --verify` reads a booted kernel. Every command waits for the monitor's prompt, so a memsave has completed
/// when it returns.
/// </summary>
public sealed class QemuMonitor : IDisposable
{
    const string Prompt = "(qemu) ";
    readonly UnixSocketText _socket;

    QemuMonitor(UnixSocketText socket) => _socket = socket;

    /// <summary>Connects (retrying while QEMU creates the socket) and reads the greeting up to the first prompt.</summary>
    public static QemuMonitor Connect(string path, TimeSpan timeout)
    {
        var monitor = new QemuMonitor(UnixSocketText.Connect(path, timeout, "the QEMU monitor"));
        monitor.ReadToPrompt();
        return monitor;
    }

    /// <summary>Runs one command and returns what the monitor printed before its next prompt.</summary>
    public string Command(string command)
    {
        _socket.Send(command + "\n");
        return ReadToPrompt();
    }

    string ReadToPrompt() =>
        _socket.Receive(text => text.IndexOf(Prompt, StringComparison.Ordinal) is var at and >= 0 ? (text[..at], at + Prompt.Length) : null);

    /// <summary>Where the kernel image is mapped: __START_KERNEL_map (physical = virtual - this + phys_base).</summary>
    public const ulong StartKernelMap = 0xffffffff80000000;

    /// <summary>
    /// Stops the guest's CPUs and copies each range of kernel memory out through files in <paramref name="folder"/>: by
    /// virtual address (memsave, through the page tables of the CPU the monitor looks at), or, where that CPU's tables do
    /// not map it (page-table isolation), by physical address (pmemsave) with phys_base 0, as a nokaslr boot has it.
    /// </summary>
    public MemorySnapshot Dump(IEnumerable<(ulong Start, ulong Length)> ranges, string folder)
    {
        Command("stop");
        var snapshot = new MemorySnapshot("QEMU guest memory (monitor memsave, guest stopped)");
        int i = 0;
        foreach (var (start, length) in ranges)
        {
            string file = Path.Combine(folder, $"memory-{i++}.bin");
            string answer = Command($"memsave 0x{start:x} {length} \"{file}\"");
            if (!Saved(file, length) && start >= StartKernelMap)
            {
                answer = Command($"pmemsave 0x{start - StartKernelMap:x} {length} \"{file}\"");
                snapshot = new MemorySnapshot("QEMU guest memory (monitor pmemsave at the kernel's physical address, guest stopped)");
            }
            if (!Saved(file, length))
                throw new IOException($"memsave of {length} bytes at 0x{start:x} failed: {answer.Trim().Split('\n').LastOrDefault()}");
            snapshot.Add(start, File.ReadAllBytes(file));
            File.Delete(file);
        }
        return snapshot;
    }

    static bool Saved(string file, ulong length) => File.Exists(file) && new FileInfo(file).Length == (long)length;

    public void Dispose() => _socket.Dispose();
}
