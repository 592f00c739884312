namespace TextPoke.Cli;

/// <summary>
/// The one progress display of the command line: a single line redrawn in place on the writer it is given (standard
/// error). Whether to show it is decided once per process: only when standard error is a terminal and no CI variable
/// is set, so logs and pipes never receive carriage returns.
/// </summary>
sealed class ProgressLine : IDisposable
{
    public static bool Enabled { get; } = !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("CI") is null or "" or "false";

    readonly TextWriter _writer;
    readonly int _width;
    bool _done;

    ProgressLine(TextWriter writer)
    {
        _writer = writer is InertWriter inert ? inert.Raw : writer;
        _width = Math.Max(40, Console.IsErrorRedirected ? 100 : Console.WindowWidth - 1);
    }

    /// <summary>A progress line on <paramref name="writer"/>, or null when progress is not shown.</summary>
    public static ProgressLine? Start(TextWriter writer) => Enabled ? new ProgressLine(writer) : null;

    public void Show(string text)
    {
        lock (this)
        {
            if (_done) return;
            text = InertWriter.Escape(text);
            _writer.Write("\r" + (text.Length > _width ? text[.._width] : text.PadRight(_width)));
            _writer.Flush();
        }
    }

    public void Dispose()
    {
        lock (this)
        {
            if (_done) return;
            _done = true;
            _writer.Write("\r" + new string(' ', _width) + "\r");
            _writer.Flush();
        }
    }
}
