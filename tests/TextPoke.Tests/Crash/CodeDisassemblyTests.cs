using TextPoke.Crash;

namespace TextPoke.Tests.Crash;

/// <summary>Golden disassemblies of real "Code:" lines.</summary>
public class CodeDisassemblyTests
{
    // The Debian 6.1.0-53 jump_label BUG (tests/data/boot-logs): the line starts with the last byte of a call.
    const string MidInstruction = "Code: 82 e9 f5 3b 64 ff 48 c7 c3 38 86 31 83 41 56 45 89 e1 49 89 d8 4c 89 e9 4c 89 ea 4c 89 ee 48 c7 c7 e0 43 33 82 e8 " +
        "15 b9 00 00 <0f> 0b 53 48 c7 c6 d0 4d 33 82 48 89 fb 48 8d bf d0 00 00 00 e8 35";
    // The seed's line (ClangBuiltLinux #1731): starts on an instruction boundary.
    const string Seed = "Code: 5e 41 5f 5d e9 d1 66 f7 ff 48 c7 c7 22 63 cf b9 4c 89 fe 4c 89 fa 4c 89 f9 49 89 d8 45 89 e1 41 56 e8 d9 a3 0d 00 48 83 c4 " +
        "08 <0f> 0b 0f 0b 0f 0b 0f 0b 00 00 cc cc 00 00 cc cc 48 c7 c7 18 e1 25";

    [Fact]
    public void MidInstructionLine_ResynchronisesOntoTheFaultingByte()
    {
        var lines = CodeDisassembly.Format(CodeDisassembly.Disassemble(MidInstruction)).ToList();
        Assert.Equal([
            "   0:  82                    (tail of an instruction cut off by the line)",
            "   1:  e9 f5 3b 64 ff        jmp     0xffffffffff643bfb",
            "   6:  48 c7 c3 38 86 31 83  mov     $0xffffffff83318638,%rbx",
            "   d:  41 56                 push    %r14",
            "   f:  45 89 e1              mov     %r12d,%r9d",
            "  12:  49 89 d8              mov     %rbx,%r8",
            "  15:  4c 89 e9              mov     %r13,%rcx",
            "  18:  4c 89 ea              mov     %r13,%rdx",
            "  1b:  4c 89 ee              mov     %r13,%rsi",
            "  1e:  48 c7 c7 e0 43 33 82  mov     $0xffffffff823343e0,%rdi",
            "  25:  e8 15 b9 00 00        call    0xb93f",
            "  2a:* 0f 0b                 ud2    <-- trapping instruction",
            "  2c:  53                    push    %rbx",
            "  2d:  48 c7 c6 d0 4d 33 82  mov     $0xffffffff82334dd0,%rsi",
            "  34:  48 89 fb              mov     %rdi,%rbx",
            "  37:  48 8d bf d0 00 00 00  lea     0xd0(%rdi),%rdi",
            "  3e:  e8 35                 (truncated)",
        ], lines);
        // Decoding from the first byte, as decodecode does, would not land on the faulting byte.
        var parsed = CodeDisassembly.Parse(MidInstruction)!.Value;
        Assert.Equal(0x2a, parsed.Fault);
        Assert.Equal(1, CodeDisassembly.BestStart(parsed.Bytes, parsed.Fault));
    }

    [Fact]
    public void IntelSyntax()
    {
        var lines = CodeDisassembly.Format(CodeDisassembly.Disassemble(MidInstruction, CodeDisassembly.Syntax.Intel)).ToList();
        Assert.Contains("   6:  48 c7 c3 38 86 31 83  mov     rbx,0xffffffff83318638", lines);
        Assert.Contains("  37:  48 8d bf d0 00 00 00  lea     rdi,[rdi+0xd0]", lines);
    }

    [Fact]
    public void BoundaryLine_StartsAtTheFirstByte()
    {
        var insns = CodeDisassembly.Disassemble(Seed);
        Assert.Equal("pop     %rsi", insns[0].Text);
        var trap = Assert.Single(insns, i => i.Faulting);
        Assert.Equal(0x2a, trap.Offset);
        Assert.Equal("ud2", trap.Text);
    }

    [Theory]
    [InlineData("Code: Bad RIP value.")]
    [InlineData("Code: 48 <0f> <0b>")]
    [InlineData("Code: 4g 89")]
    public void UnreadableLines_GiveNothing(string line) => Assert.Empty(CodeDisassembly.Disassemble(line));
}
