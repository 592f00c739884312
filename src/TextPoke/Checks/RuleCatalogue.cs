using TextPoke.Messages;

namespace TextPoke.Checks;

/// <summary>
/// One check rule: its stable id, the table it belongs to, the severity its findings usually have (a finding may carry
/// another, e.g. smp.not-lock is a notice unless the byte is one the kernel rewrites), what it means in one line, and
/// what the kernel prints when it trips (empty when the kernel is silent).
/// </summary>
public sealed record RuleInfo(string Id, string Table, Severity Severity, string Summary, string KernelOutput);

/// <summary>
/// Every rule `check` can report, as data: SARIF lists them as the tool's rules, and a test holds the checkers, this
/// catalogue and docs/checks.md to the same set of ids.
/// </summary>
public static class RuleCatalogue
{
    const string AltBug = "kernel BUG at arch/x86/kernel/alternative.c:N!";
    // The kernel's own formats come from the message catalogue (v5.15..v6.12 for the jump-label line; bug_at's before).
    static readonly string UnexpectedOp = KernelMessages.JumpLabelUnexpectedOp.Format;

    public static readonly IReadOnlyList<RuleInfo> All =
    [
        new("jump.table-malformed", "jump", Severity.Bug,
            "__jump_table bounds are not in one section, not 8-aligned, or not a whole number of entries that decode to text", ""),
        new("jump.site-outside-text", "jump", Severity.Warning, "a jump-label site outside executable code", KernelMessages.JumpLabelCantPatch.Format),
        new("jump.target-outside-text", "jump", Severity.Bug, "a jump-label target outside executable code", ""),
        new("jump.key-outside-data", "jump", Severity.Bug, "a static key outside the image's data", ""),
        new("jump.key-misaligned", "jump", Severity.Bug, "a static key not 8-byte aligned (its low bits are the entry's flags)", ""),
        new("jump.bad-size", "jump", Severity.Bug, "a site that is neither a 2- nor a 5-byte instruction",
            "kernel BUG at arch/x86/kernel/jump_label.c:25!"),
        new("jump.unexpected-instruction", "jump", Severity.Bug, "a site holding neither the NOP nor the JMP of its size",
            UnexpectedOp),
        new("jump.wrong-target", "jump", Severity.Bug, "a JMP that does not go to its entry's target",
            UnexpectedOp),
        new("jump.target-out-of-range", "jump", Severity.Bug, "a 2-byte site that cannot reach its target", ""),
        new("jump.initial-state", "jump", Severity.Bug, "a site whose NOP/JMP disagrees with its key's initial state and branch",
            UnexpectedOp),
        new("jump.objtool-not-run", "jump", Severity.Bug, "a JMP on an entry carrying objtool's NOP mark: objtool never rewrote it",
            UnexpectedOp),
        new("jump.mark-on-jump-site", "jump", Severity.Warning, "objtool's NOP mark on a JMP-type site", ""),
        new("jump.live-relocation", "jump", Severity.Bug, "a live PC32/PLT32 relocation inside a NOP site of an unlinked object", ""),
        new("jump.key-inconsistent", "jump", Severity.Bug, "a static key whose enabled count and type word disagree or are not 0/1", ""),
        new("module.nonzero-relocation-target", "module", Severity.Bug, "a relocation target that is not zero in the file (6.1+ refuses the module)",
            "x86/modules: Skipping invalid relocation target, existing value is nonzero for type %d, loc %p, val %Lx"),
        new("module.unknown-relocation", "module", Severity.Bug, "a relocation type the x86-64 module loader does not know",
            "%s: Unknown rela relocation: %llu"),
        new("smp.not-lock", "smp_locks", Severity.Notice, "an .smp_locks entry on a byte other than the f0 LOCK prefix", ""),
        new("smp.outside-text", "smp_locks", Severity.Notice, "an .smp_locks entry outside text", ""),
        new("return.missing-thunk", "return_sites", Severity.Warning, "a return site that is not a jmp to __x86_return_thunk",
            KernelMessages.MissingReturnThunk.Format),
        new("return.undecodable", "return_sites", Severity.Warning, "a return site whose bytes do not decode", KernelMessages.MissingReturnThunk.Format),
        new("retpoline.not-a-thunk", "retpoline_sites", Severity.Warning, "a retpoline site whose call or jump does not go to a register thunk", ""),
        new("retpoline.bad-instruction", "retpoline_sites", Severity.Warning, "a retpoline site that is not a CALL/JMP/Jcc rel32", ""),
        new("retpoline.rsp", "retpoline_sites", Severity.Bug, "a retpoline site through %rsp", AltBug),
        new("mcount.missing", "mcount", Severity.Warning, "ftrace built in, but __mcount_loc is empty (objtool stopped early)",
            KernelMessages.FtraceNoFunctions),
        new("mcount.not-fentry", "mcount", Severity.Warning, "an __mcount_loc entry on neither call __fentry__ nor a 5-byte NOP",
            KernelMessages.FtraceBugHeader),
        new("mcount.outside-text", "mcount", Severity.Warning, "an __mcount_loc entry outside text", KernelMessages.FtraceBugHeader),
        new("static_call.unexpected-insn", "static_calls", Severity.Bug, "a static-call site holding an instruction the patcher refuses",
            KernelMessages.StaticCallUnexpectedInsn.Format),
        new("ex.outside-text", "ex_table", Severity.Bug, "an exception-table entry whose instruction or fixup is outside text", ""),
        new("ex.unsorted", "ex_table", Severity.Bug, "an exception table not sorted by instruction address (the fault lookup misses entries)", ""),
        new("bug.not-ud2", "bug_table", Severity.Warning, "a bug-table entry not on a ud2", ""),
        new("orc.missing", "orc", Severity.Warning, "the ORC unwinder built in, but its table is empty (objtool stopped early)",
            KernelMessages.OrcBadOrMissing),
        new("orc.count-mismatch", "orc", Severity.Warning, ".orc_unwind_ip and .orc_unwind have different entry counts",
            KernelMessages.OrcCorrupt),
        new("orc.unsorted", "orc", Severity.Warning, "an ORC table not sorted by ip", KernelMessages.OrcCorrupt),
        new("alt.out-of-range", "alt", Severity.Bug, "an alternative entry whose pointers decode outside the image", ""),
        new("alt.bad-pointer", "alt", Severity.Bug, "an alternative pointing outside text or .altinstr_replacement", ""),
        new("alt.replacement-too-long", "alt", Severity.Bug, "a replacement longer than the original", AltBug),
        new("alt.split-instruction", "alt", Severity.Bug, "an original range that ends inside an instruction", ""),
        new("alt.padding-too-long", "alt", Severity.Bug, "a <=v5.12 padding length larger than the original (optimize_nops writes before the site)", ""),
        new("alt.bad-padding", "alt", Severity.Warning, "<=v5.12 padding that is not 0x90", ""),
        new("paravirt.bad-length", "paravirt", Severity.Bug, "a paravirt site shorter than 5 or longer than MAX_PATCH_LEN bytes", AltBug),
        new("paravirt.not-a-pv-call", "paravirt", Severity.Bug, "a paravirt site that is not an indirect call through pv_ops[type]", AltBug),
        new("paravirt.outside-text", "paravirt", Severity.Bug, "a paravirt site outside text", ""),
        new("call_sites.bad-site", "call_sites", Severity.Warning, "a .call_sites entry not on an e8 rel32 call", ""),
        new("ibt_endbr_seal.bad-site", "ibt_endbr_seal", Severity.Warning, "an .ibt_endbr_seal entry not on an ENDBR64/ENDBR32", ""),
        new("cfi_sites.bad-site", "cfi_sites", Severity.Warning, "a .cfi_sites entry not on b8 <hash32> and eleven 0x90", ""),
    ];

    static readonly Dictionary<string, RuleInfo> ById = All.ToDictionary(r => r.Id, StringComparer.Ordinal);

    /// <summary>The rule of an id, or null for an id the catalogue does not know.</summary>
    public static RuleInfo? Find(string id) => ById.GetValueOrDefault(id);
}
