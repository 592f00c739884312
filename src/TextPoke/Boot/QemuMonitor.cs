using System.Net.Sockets;
using System.Text;
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
    readonly Socket _socket;
    readonly StringBuilder _received = new();
    readonly TimeSpan _timeout;

    QemuMonitor(Socket socket, TimeSpan timeout)
    {
        _socket = socket;
        _timeout = timeout;
    }

    /// <summary>Connects (retrying while QEMU creates the socket) and reads the greeting up to the first prompt.</summary>
    public static QemuMonitor Connect(string path, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                socket.Connect(new UnixDomainSocketEndPoint(path));
                var monitor = new QemuMonitor(socket, timeout);
                monitor.ReadToPrompt();
                return monitor;
            }
            catch (SocketException) when (DateTime.UtcNow < until)
            {
                socket.Dispose();
                Thread.Sleep(100);
            }
        }
    }

    /// <summary>Runs one command and returns what the monitor printed before its next prompt.</summary>
    public string Command(string command)
    {
        _socket.Send(Encoding.ASCII.GetBytes(command + "\n"));
        return ReadToPrompt();
    }

    string ReadToPrompt()
    {
        var buffer = new byte[4096];
        var until = DateTime.UtcNow + _timeout;
        while (true)
        {
            var text = _received.ToString();
            int at = text.IndexOf(Prompt, StringComparison.Ordinal);
            if (at >= 0)
            {
                _received.Remove(0, at + Prompt.Length);
                return text[..at];
            }
            var left = until - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"the QEMU monitor did not answer within {_timeout.TotalSeconds:0} s");
            _socket.ReceiveTimeout = (int)Math.Max(1, left.TotalMilliseconds);
            int n;
            try { n = _socket.Receive(buffer); }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut) { continue; }
            if (n == 0) throw new IOException("the QEMU monitor closed its socket");
            _received.Append(Encoding.ASCII.GetString(buffer, 0, n).Replace("\r", ""));
        }
    }

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
