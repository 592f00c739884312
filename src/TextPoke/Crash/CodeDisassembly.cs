using System.Globalization;
using Iced.Intel;

namespace TextPoke.Crash;

/// <summary>One decoded instruction of a "Code:" line; Offset counts from the line's first byte, as branch targets do.</summary>
public sealed record CodeInstruction(int Offset, string Bytes, string Text, bool Faulting, bool Invalid);

/// <summary>
/// Disassembles an oops's "Code: .. .. &lt;xx&gt; .." line. The bytes after the marked (faulting) byte are decoded forward
/// from it; the bytes before it are resynchronised: every start offset is tried and the decoding that lands exactly on
/// the faulting byte with no invalid instruction and the most bytes covered wins (scripts/decodecode decodes from the
/// first byte and cannot resynchronise when the line starts mid-instruction).
/// </summary>
public static class CodeDisassembly
{
    public enum Syntax { Att, Intel }

    /// <summary>The bytes of a Code: line and the index of the faulting byte (marked &lt;xx&gt; or (xx)); null when unreadable.</summary>
    public static (byte[] Bytes, int Fault)? Parse(string code)
    {
        var text = code.StartsWith("Code: ", StringComparison.Ordinal) ? code[6..] : code;
        var bytes = new List<byte>();
        int fault = -1;
        foreach (var token in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var t = token;
            if (t.Length == 4 && (t[0] == '<' && t[3] == '>' || t[0] == '(' && t[3] == ')'))
            {
                if (fault >= 0) return null;
                fault = bytes.Count;
                t = t[1..3];
            }
            if (t.Length != 2 || !byte.TryParse(t, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b)) return null;
            bytes.Add(b);
        }
        return bytes.Count == 0 ? null : (bytes.ToArray(), fault < 0 ? 0 : fault);
    }

    public static List<CodeInstruction> Disassemble(string code, Syntax syntax = Syntax.Att)
    {
        if (Parse(code) is not { } parsed) return [];
        var (bytes, fault) = parsed;
        Formatter formatter = syntax == Syntax.Att ? new GasFormatter() : new IntelFormatter();
        formatter.Options.FirstOperandCharIndex = 8;
        formatter.Options.UppercaseHex = false;
        formatter.Options.BranchLeadingZeros = false;
        formatter.Options.HexPrefix = "0x";
        formatter.Options.HexSuffix = null;
        var result = new List<CodeInstruction>();
        int start = BestStart(bytes, fault);
        if (start > 0)
            result.Add(new CodeInstruction(0, string.Join(' ', bytes[..start].Select(x => x.ToString("x2", CultureInfo.InvariantCulture))),
                "(tail of an instruction cut off by the line)", false, false));
        Decode(bytes, start, fault, formatter, result);
        return result;
    }

    /// <summary>The earliest start from which decoding reaches the faulting byte exactly, without invalid instructions.</summary>
    public static int BestStart(byte[] bytes, int fault)
    {
        for (int s = 0; s < fault; s++)
            if (LandsOn(bytes, s, fault)) return s;
        return fault;
    }

    static bool LandsOn(byte[] bytes, int start, int fault)
    {
        var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(bytes, start, fault - start));
        decoder.IP = (ulong)start;
        while (decoder.IP < (ulong)fault)
        {
            var insn = decoder.Decode();
            if (insn.IsInvalid || insn.Code == Code.INVALID) return false;
        }
        return decoder.IP == (ulong)fault;
    }

    static void Decode(byte[] bytes, int start, int fault, Formatter formatter, List<CodeInstruction> result)
    {
        var output = new StringOutput();
        for (int at = start; at < bytes.Length;)
        {
            // One decoder per instruction: after an invalid byte decoding restarts at the next one.
            var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(bytes, at, bytes.Length - at));
            decoder.IP = (ulong)at;
            var insn = decoder.Decode();
            bool truncated = insn.IsInvalid && decoder.LastError == DecoderError.NoMoreBytes;
            int end = insn.IsInvalid ? (truncated ? bytes.Length : at + 1) : (int)decoder.IP;
            string text;
            if (truncated) text = "(truncated)";
            else if (insn.IsInvalid) text = "(bad)";
            else
            {
                formatter.Format(insn, output);
                text = output.ToStringAndReset();
            }
            result.Add(new CodeInstruction(at, string.Join(' ', bytes[at..end].Select(x => x.ToString("x2", CultureInfo.InvariantCulture))),
                text, at == fault, insn.IsInvalid));
            at = end;
        }
    }

    /// <summary>decodecode-style lines: "  2a:*\t0f 0b   \tud2   \t&lt;-- trapping instruction".</summary>
    public static IEnumerable<string> Format(IReadOnlyList<CodeInstruction> instructions)
    {
        int width = instructions.Count == 0 ? 0 : instructions.Max(i => i.Bytes.Length);
        foreach (var i in instructions)
        {
            yield return $"{i.Offset,4:x}:{(i.Faulting ? "*" : " ")} {i.Bytes.PadRight(width)}  {i.Text}{(i.Faulting ? "    <-- trapping instruction" : "")}";
        }
    }
}
