using System.Buffers.Binary;
using System.Text;
using Iced.Intel;

namespace TextPoke.X86;

/// <summary>The kernel's x86-64 NOPs, instruction builders and byte formatting.</summary>
public static class X86Code
{
    /// <summary>
    /// arch/x86/kernel/alternative.c (x86nops[]), v5.15..v6.12: the packed NOP1..NOP8 array that x86_nops[n] points into.
    /// Because it is packed, "%5ph" of x86_nops[2] prints NOP2 and the first three bytes of NOP3: "66 90 0f 1f 00".
    /// </summary>
    public static ReadOnlySpan<byte> PackedNops =>
    [
        0x90,                                           // NOP1
        0x66, 0x90,                                     // NOP2
        0x0f, 0x1f, 0x00,                               // NOP3
        0x0f, 0x1f, 0x40, 0x00,                         // NOP4
        0x0f, 0x1f, 0x44, 0x00, 0x00,                   // NOP5
        0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00,             // NOP6
        0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00,       // NOP7
        0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00, // NOP8
    ];

    static int NopOffset(int size) => size * (size - 1) / 2;

    /// <summary>x86_nops[size]: the NOP of that length (1..8), as the kernel writes it.</summary>
    public static ReadOnlySpan<byte> Nop(int size) =>
        size is >= 1 and <= 8 ? PackedNops.Slice(NopOffset(size), size) : throw new ArgumentOutOfRangeException(nameof(size));

    /// <summary>The five bytes "%5ph" prints for x86_nops[size] (it reads past the NOP into the packed array).</summary>
    public static ReadOnlySpan<byte> NopAsPrinted(int size) => PackedNops.Slice(NopOffset(size), 5);

    public const byte Jmp8Opcode = 0xeb, Jmp32Opcode = 0xe9, CallOpcode = 0xe8;

    /// <summary>
    /// arch/x86/include/asm/text-patching.h (text_gen_insn), v5.6..v6.12: union text_poke_insn {u8 text[5]; struct {u8
    /// opcode; s32 disp;}}. Returns the five bytes of the union (what "%5ph" prints) and whether a JMP8 displacement
    /// fits in a signed byte (the kernel BUG_ONs otherwise).
    /// </summary>
    public static (byte[] Union, bool Fits) GenerateInstruction(byte opcode, ulong address, ulong destination)
    {
        int size = opcode switch { Jmp8Opcode => 2, Jmp32Opcode or CallOpcode => 5, 0xcc => 1, _ => throw new ArgumentException($"opcode {opcode:x2}") };
        long disp = unchecked((long)destination - (long)(address + (ulong)size));
        var union = new byte[5];
        union[0] = opcode;
        int disp32 = unchecked((int)disp);
        if (size > 1) BinaryPrimitives.WriteInt32LittleEndian(union.AsSpan(1), disp32);
        bool fits = size == 2 ? disp is >= sbyte.MinValue and <= sbyte.MaxValue : disp is >= int.MinValue and <= int.MaxValue;
        return (union, fits);
    }

    /// <summary>Formats bytes like the kernel's "%*ph": lowercase hex separated by spaces.</summary>
    public static string Hex(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length * 3);
        for (int i = 0; i < bytes.Length; i++)
        {
            if (i > 0) sb.Append(' ');
            sb.Append(bytes[i].ToString("x2"));
        }
        return sb.ToString();
    }

    /// <summary>Parses hex bytes ("eb 0d", "eb0d", "0xeb,0x0d").</summary>
    public static byte[]? ParseHex(string text)
    {
        var clean = new StringBuilder();
        foreach (var token in text.Split([' ', ',', ':', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            var t = token.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? token[2..] : token;
            if (t.Length % 2 != 0 && token.StartsWith("0x", StringComparison.OrdinalIgnoreCase)) t = "0" + t;
            clean.Append(t);
        }
        if (clean.Length == 0 || clean.Length % 2 != 0) return null;
        try { return Convert.FromHexString(clean.ToString()); }
        catch (FormatException) { return null; }
    }
}

/// <summary>One decoded instruction: what the kernel's insn decoder and the jump-label checks need.</summary>
public readonly record struct DecodedInstruction(int Length, bool IsValid, Mnemonic Mnemonic, FlowControl Flow, ulong BranchTarget, bool IsNop,
    Instruction Raw);

/// <summary>Decodes single instructions at an address with Iced, reusing one decoder buffer (no allocation per call).</summary>
public sealed class InstructionDecoder
{
    readonly byte[] _buffer = new byte[16];
    readonly ByteArrayCodeReader _reader;
    readonly Iced.Intel.Decoder _decoder;

    public InstructionDecoder()
    {
        _reader = new ByteArrayCodeReader(_buffer);
        _decoder = Iced.Intel.Decoder.Create(64, _reader, 0, DecoderOptions.None);
    }

    /// <summary>Decodes the instruction that starts with <paramref name="bytes"/> (at most 15 are read) at <paramref name="address"/>.</summary>
    public DecodedInstruction Decode(ReadOnlySpan<byte> bytes, ulong address)
    {
        int n = Math.Min(bytes.Length, 15);
        bytes[..n].CopyTo(_buffer);
        _buffer.AsSpan(n).Clear();
        _reader.Position = 0;
        _decoder.IP = address;
        _decoder.Decode(out var instruction);
        bool valid = !instruction.IsInvalid && instruction.Length <= n;
        bool isNop = valid && (instruction.Mnemonic == Mnemonic.Nop);
        ulong target = valid && instruction.FlowControl is FlowControl.UnconditionalBranch or FlowControl.ConditionalBranch or FlowControl.Call
            && instruction.Op0Kind is OpKind.NearBranch64 ? instruction.NearBranch64 : 0;
        return new DecodedInstruction(valid ? instruction.Length : 0, valid, instruction.Mnemonic, instruction.FlowControl, target, isNop, instruction);
    }
}
