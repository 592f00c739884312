
namespace TextPoke.Boot;

/// <summary>
/// QEMU's GDB stub (remote serial protocol) on a Unix socket, used for one thing: writing bytes into a booted guest's
/// memory (`boot --inject`), through its page tables but regardless of page protection, as a debugger would — a hook or a
/// flipped site planted for `--verify` to find. Attaching stops the guest; detaching lets it run on.
/// </summary>
public sealed class GdbStub : IDisposable
{
    readonly UnixSocketText _socket;

    GdbStub(UnixSocketText socket) => _socket = socket;

    public static GdbStub Connect(string path, TimeSpan timeout)
    {
        var stub = new GdbStub(UnixSocketText.Connect(path, timeout, "QEMU's GDB stub"));
        stub.Request("?"); // the stop reason: attaching stopped the guest
        return stub;
    }

    /// <summary>Sends one packet and returns the stub's reply packet (its data).</summary>
    public string Request(string data)
    {
        int sum = 0;
        foreach (char ch in data) sum += ch;
        _socket.Send($"${data}#{sum & 0xff:x2}");
        return Next();
    }

    // The next packet: $data#cc (acknowledged with '+'; the stub's own '+' acknowledgements are skipped).
    string Next()
    {
        var reply = _socket.Receive(text =>
        {
            int start = text.IndexOf('$');
            int end = start >= 0 ? text.IndexOf('#', start) : -1;
            return end >= 0 && end + 2 < text.Length ? (text[(start + 1)..end], end + 3) : null;
        });
        _socket.Send("+");
        return reply;
    }

    /// <summary>Writes <paramref name="bytes"/> at a guest virtual address.</summary>
    public void Write(ulong address, ReadOnlySpan<byte> bytes)
    {
        string reply = Request($"M{address:x},{bytes.Length:x}:{Convert.ToHexStringLower(bytes)}");
        while (reply.StartsWith('T') || reply.StartsWith('S')) reply = Next(); // a late stop notification, then the answer
        if (reply != "OK") throw new IOException($"writing {bytes.Length} bytes at 0x{address:x} through the GDB stub failed ({reply})");
    }

    /// <summary>Detaches, letting the guest run on.</summary>
    public void Detach() => Request("D");

    public void Dispose() => _socket.Dispose();
}
