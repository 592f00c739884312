using System.Text;

namespace TextPoke.Cli;

/// <summary>
/// Makes untrusted text inert on a terminal: every character a terminal would act on — C0 controls other than newline
/// and tab (ESC, BEL, carriage return, backspace...), DEL, the C1 controls (U+0080..U+009F, which some terminals read as
/// CSI/OSC) and the bidirectional overrides (U+202A..U+202E, U+2066..U+2069) — is written as <c>\xNN</c> or
/// <c>\uNNNN</c>. Log lines, symbol, module and section names and DWARF file names all reach the output through it.
/// JSON needs nothing more: the serializer already escapes every control character.
/// </summary>
sealed class InertWriter(TextWriter inner) : TextWriter
{
    /// <summary>The writer underneath, for the carriage returns of a progress line (whose text is escaped first).</summary>
    public TextWriter Raw => inner;

    public override Encoding Encoding => inner.Encoding;
    public override IFormatProvider FormatProvider => inner.FormatProvider;
    [System.Diagnostics.CodeAnalysis.AllowNull]
    public override string NewLine { get => inner.NewLine; set => inner.NewLine = value; }

    public static bool IsActive(char c) =>
        c < 0x20 && c != '\n' && c != '\t' || c is >= (char)0x7f and <= (char)0x9f || c is >= '\u202a' and <= '\u202e' || c is >= '\u2066' and <= '\u2069';

    /// <summary>The text with every active character escaped (the same text when there is none).</summary>
    public static string Escape(string text)
    {
        int first = 0;
        while (first < text.Length && !IsActive(text[first])) first++;
        if (first == text.Length) return text;
        var sb = new StringBuilder(text.Length + 16).Append(text, 0, first);
        for (int i = first; i < text.Length; i++) Append(sb, text[i]);
        return sb.ToString();
    }

    static void Append(StringBuilder sb, char c)
    {
        if (!IsActive(c)) sb.Append(c);
        else if (c <= 0xff) sb.Append("\\x").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
        else sb.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
    }

    public override void Write(char value)
    {
        if (IsActive(value)) inner.Write(Escape(value.ToString()));
        else inner.Write(value);
    }

    public override void Write(string? value)
    {
        if (value != null) inner.Write(Escape(value));
    }

    public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));

    public override void WriteLine(string? value)
    {
        Write(value);
        inner.Write(NewLine);
    }

    public override void WriteLine() => inner.Write(NewLine);

    public override void Flush() => inner.Flush();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Flush();
        base.Dispose(disposing);
    }
}
