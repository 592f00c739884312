using System.Text;

namespace TextPoke.Cli;

/// <summary>A writer that flushes another one before each write: standard error after a buffered standard output.</summary>
sealed class FlushFirstWriter(TextWriter inner, TextWriter first) : TextWriter
{
    public override Encoding Encoding => inner.Encoding;

    public override void Write(char value)
    {
        first.Flush();
        inner.Write(value);
    }

    public override void Write(string? value)
    {
        first.Flush();
        inner.Write(value);
    }

    public override void WriteLine(string? value)
    {
        first.Flush();
        inner.WriteLine(value);
    }

    public override void Flush()
    {
        first.Flush();
        inner.Flush();
    }
}
