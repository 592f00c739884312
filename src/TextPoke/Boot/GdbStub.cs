using System.Net.Sockets;
using System.Text;

namespace TextPoke.Boot;

/// <summary>
/// QEMU's GDB stub (remote serial protocol) on a Unix socket, used for one thing: writing bytes into a booted guest's
/// memory (`boot --inject`), through its page tables but regardless of page protection, as a debugger would — a hook or a
/// flipped site planted for `--verify` to find. Attaching stops the guest; detaching lets it run on.
/// </summary>
public sealed class GdbStub : IDisposable
{
    readonly Socket _socket;
    readonly TimeSpan _timeout;
    readonly StringBuilder _received = new();

    GdbStub(Socket socket, TimeSpan timeout)
    {
        _socket = socket;
        _timeout = timeout;
    }

    public static GdbStub Connect(string path, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                socket.Connect(new UnixDomainSocketEndPoint(path));
                var stub = new GdbStub(socket, timeout);
                stub.Request("?"); // the stop reason: attaching stopped the guest
                return stub;
            }
            catch (SocketException) when (DateTime.UtcNow < until)
            {
                socket.Dispose();
                Thread.Sleep(100);
            }
        }
    }

    /// <summary>Sends one packet and returns the stub's reply packet (its data).</summary>
    public string Request(string data)
    {
        int sum = 0;
        foreach (char ch in data) sum += ch;
        _socket.Send(Encoding.ASCII.GetBytes($"${data}#{sum & 0xff:x2}"));
        return Next();
    }

    string Next()
    {
        var buffer = new byte[4096];
        var until = DateTime.UtcNow + _timeout;
        while (true)
        {
            var text = _received.ToString();
            int start = text.IndexOf('$');
            int end = start >= 0 ? text.IndexOf('#', start) : -1;
            if (end >= 0 && end + 2 < text.Length)
            {
                _received.Remove(0, end + 3);
                _socket.Send("+"u8.ToArray());
                return text[(start + 1)..end];
            }
            var left = until - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"QEMU's GDB stub did not answer within {_timeout.TotalSeconds:0} s");
            _socket.ReceiveTimeout = (int)Math.Max(1, left.TotalMilliseconds);
            int n;
            try { n = _socket.Receive(buffer); }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut) { continue; }
            if (n == 0) throw new IOException("QEMU's GDB stub closed its socket");
            _received.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
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
