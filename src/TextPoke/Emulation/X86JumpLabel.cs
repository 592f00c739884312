using TextPoke.Messages;
using TextPoke.Tables;
using TextPoke.X86;

namespace TextPoke.Emulation;

/// <summary>enum jump_label_type (include/linux/jump_label.h): the state a site is being switched to.</summary>
public enum JumpLabelType { Nop = 0, Jmp = 1 }

/// <summary>The outcome of asking the x86 patcher to switch one site.</summary>
public readonly record struct PatchOutcome(bool Ok, int Size, byte[] NewBytes, string[] KernelLines, string? BugFile, int BugLine, string Function);

/// <summary>
/// arch/x86/kernel/jump_label.c for each era, as data plus one decision function:
/// v5.15..v6.12: arch_jump_entry_size decodes the site (BUG_ON at line 25 unless 2 or 5 bytes); __jump_label_patch
/// expects the NOP when switching to JMP and text_gen_insn(JMP8/JMP32) when switching to NOP, else pr_crit + BUG() at 73.
/// v4.14..v5.13: always 5 bytes; expects the default/ideal NOP5 or the E9; bug_at(ip, __LINE__).
/// </summary>
public static class X86JumpLabel
{
    public const string File = KernelMessages.X86JumpLabelFile;

    /// <summary>Decides what __jump_label_patch does for <paramref name="site"/> (the bytes at the site, at least 15).</summary>
    public static PatchOutcome Patch(JumpLabelEra era, InstructionDecoder decoder, ReadOnlySpan<byte> site, ulong code, ulong target, JumpLabelType type,
        string location)
    {
        var site5 = site[..Math.Min(5, site.Length)].ToArray();
        int size;
        if (era.VariableLength)
        {
            var insn = decoder.Decode(site, code);
            size = insn.IsValid ? insn.Length : 0;
            if (size is not (2 or 5))
                return new PatchOutcome(false, size, [], [], File, KernelMessages.JumpEntrySizeBugLine, "arch_jump_entry_size");
        }
        else size = 5;

        var (jmp, fits) = X86Code.GenerateInstruction(size == 2 ? X86Code.Jmp8Opcode : X86Code.Jmp32Opcode, code, target);
        if (!fits)
            return new PatchOutcome(false, size, [], [], "arch/x86/include/asm/text-patching.h", 0, "text_gen_insn");
        var nop = X86Code.Nop(size).ToArray();
        // v4.14..v5.13 also accepts the P6 NOP5 written at build time when switching to JMP.
        var expect = type == JumpLabelType.Jmp ? nop : jmp[..size];
        if (!site[..size].SequenceEqual(expect))
        {
            if (era.VariableLength)
            {
                var printed = type == JumpLabelType.Jmp ? X86Code.NopAsPrinted(size).ToArray() : jmp;
                return new PatchOutcome(false, size, [], [KernelMessages.UnexpectedOp(location, code, site5, printed, size, (int)type)],
                    File, KernelMessages.JumpLabelPatchBugLine, "__jump_label_patch");
            }
            int? line = type == JumpLabelType.Jmp ? era.EnableLine : era.DisableLine;
            return new PatchOutcome(false, size, [], [KernelMessages.UnexpectedOpOld(location, code, site5, line ?? 0)], File, era.BugLine ?? 0, "bug_at");
        }
        return new PatchOutcome(true, size, type == JumpLabelType.Jmp ? jmp[..size] : nop, [], null, 0, "__jump_label_patch");
    }
}
