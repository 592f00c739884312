using System.Net.Sockets;
using System.Text;

namespace TextPoke.Boot;

/// <summary>
/// A text conversation with QEMU over a Unix socket (its monitor, its GDB stub): connect, retrying while QEMU creates
/// the socket, and read until a complete answer has arrived, within a deadline.
/// </summary>
sealed class UnixSocketText : IDisposable
{
    readonly Socket _socket;
    readonly TimeSpan _timeout;
    readonly StringBuilder _received = new();
    readonly string _peer;

    UnixSocketText(Socket socket, TimeSpan timeout, string peer)
    {
        _socket = socket;
        _timeout = timeout;
        _peer = peer;
    }

    public static UnixSocketText Connect(string path, TimeSpan timeout, string peer)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                socket.Connect(new UnixDomainSocketEndPoint(path));
                return new UnixSocketText(socket, timeout, peer);
            }
            catch (SocketException) when (DateTime.UtcNow < until)
            {
                socket.Dispose();
                Thread.Sleep(100);
            }
        }
    }

    public void Send(string text) => _socket.Send(Encoding.ASCII.GetBytes(text));

    /// <summary>
    /// Reads until <paramref name="complete"/> finds an answer in what has been received: it returns the answer and how
    /// many characters it used (they are consumed), or null to wait for more.
    /// </summary>
    public string Receive(Func<string, (string Answer, int Used)?> complete)
    {
        var buffer = new byte[4096];
        var until = DateTime.UtcNow + _timeout;
        while (true)
        {
            if (complete(_received.ToString()) is { } found)
            {
                _received.Remove(0, found.Used);
                return found.Answer;
            }
            var left = until - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"{_peer} did not answer within {_timeout.TotalSeconds:0} s");
            _socket.ReceiveTimeout = (int)Math.Max(1, left.TotalMilliseconds);
            int n;
            try { n = _socket.Receive(buffer); }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut) { continue; }
            if (n == 0) throw new IOException($"{_peer} closed its socket");
            _received.Append(Encoding.ASCII.GetString(buffer, 0, n).Replace("\r", ""));
        }
    }

    public void Dispose() => _socket.Dispose();
}
