using System.Buffers.Binary;
using TextPoke.Images;
using TextPoke.Messages;
using TextPoke.Symbols;
using TextPoke.Tables;
using TextPoke.X86;

namespace TextPoke.Checks;

/// <summary>A self-patching table textpoke knows (read by <see cref="PatchTables"/>), and how to check it (null: known, not read yet).</summary>
public sealed record TableDefinition(TableDescriptor Table, Func<TableContext, TableBounds, TableReport>? Check, Func<TableContext, TableBounds,
    Finding?>? WhenEmpty = null)
{
    public string Name => Table.Name;
    public string Title => Table.Title;
    public string? StartSymbol => Table.StartSymbol;
    public string? StopSymbol => Table.StopSymbol;
    public string? Section => Table.Section;
    public string Kernels => Table.Kernels;
}

/// <summary>What every table check shares: the image, its names, one decoder, the image's __bug_table.</summary>
/// <param name="listSites">
/// Keep every site with its state, target and note in <see cref="TableReport.Sites"/> (sites --table, the explainers);
/// a check only counts states, and skips the per-site notes (thousands of strings on a distro kernel).
/// </param>
public sealed class TableContext(KernelImage image, ImageSymbols symbols, bool listSites = true)
{
    public bool ListSites { get; } = listSites;
    readonly Lazy<BugTable?> _bugs = new(() => BugTable.Read(image, symbols));
    public KernelImage Image { get; } = image;
    public ImageSymbols Symbols { get; } = symbols;
    public InstructionDecoder Decoder { get; } = new();
    public BugTable? Bugs => _bugs.Value;
    public string PS(ulong address) => Symbols.Names.FormatPS(address, Image.ModuleName);
    public ulong? Symbol(string name) => Symbols.TryFind(name, out ulong a, out _) ? a : null;

    /// <summary>"kernel BUG at FILE:LINE!" for a BUG() of a source file, from the image's __bug_table (the highest line).</summary>
    public string? BugLine(string file) =>
        Bugs?.Entries.Where(b => b.File == file && !b.IsWarning).OrderByDescending(b => b.Line).Select(b => KernelMessages.Bug(file, b.Line)).FirstOrDefault();

    /// <summary>
    /// The name a branch at <paramref name="site"/> goes to: in an unlinked object the symbol of the relocation on its
    /// displacement (the thunks and __fentry__ are undefined in a module), else the symbol at the target.
    /// </summary>
    public string? TargetName(ulong site, int displacementOffset, ulong target)
    {
        if (Image.Elf.IsRelocatable && Image.SectionAt(site) is { } section
            && Image.RelocationAt(section, site - Image.SectionAddress(section) + (ulong)displacementOffset) is { } r)
            return r.Symbol;
        return target == 0 ? null : Symbols.Names.Lookup(target) is { Offset: 0 } hit ? hit.Symbol.Name : null;
    }

    readonly byte[] _buffer = new byte[16];

    /// <summary>Decodes the instruction at an address. The returned bytes are a buffer reused by the next call.</summary>
    public (DecodedInstruction Insn, byte[] Bytes) Decode(ulong address)
    {
        Array.Clear(_buffer);
        int n = Image.Read(address, _buffer);
        return (n == 0 ? default : Decoder.Decode(_buffer.AsSpan(0, n), address), _buffer);
    }
}

/// <summary>
/// The kernel's self-patching tables besides __jump_table (patch-tables.md), each with its layout, its invariants and
/// the kernel's own words when they break. Tables textpoke does not read yet are listed, never skipped silently.
/// </summary>
public static class SiteTables
{
    /// <summary>Why a table is absent when the image has neither its section nor its start/stop symbols.</summary>
    public const string AbsentText = "absent from this image (no section, no start/stop symbols)";

    public static readonly IReadOnlyList<TableDefinition> All =
    [
        new(PatchTables.SmpLocks, SmpLocks),
        new(PatchTables.ReturnSites, ReturnSites),
        new(PatchTables.RetpolineSites, RetpolineSites),
        new(PatchTables.Mcount, Mcount, McountMissing),
        new(PatchTables.StaticCalls, StaticCalls),
        new(PatchTables.ExceptionTable, ExceptionTable),
        new(PatchTables.BugTable, Bugs),
        new(PatchTables.Orc, Orc, OrcMissing),
        new(PatchTables.Alternatives, Alternatives),
        new(PatchTables.Paravirt, Paravirt),
        new(PatchTables.CallSites, CallSites),
        new(PatchTables.EndbrSeal, EndbrSeal),
        new(PatchTables.CfiSites, CfiSites),
    ];

    public static TableReport Run(TableDefinition table, TableContext context)
    {
        var bounds = PatchTables.Locate(context.Image, context.Symbols, table.Table);
        if (bounds == null)
            return CannotLocate(context.Image, context.Symbols, table.Section, table.StartSymbol, table.StopSymbol) is { } why
                ? new TableReport { Name = table.Name, Title = table.Title, Absent = why, Status = TableStatus.NotChecked }
                : new TableReport { Name = table.Name, Title = table.Title, Absent = AbsentText,
                    Status = TableStatus.Absent };
        if (table.Check == null)
            return new TableReport
            {
                Name = table.Name, Title = table.Title, Bounds = bounds, Status = TableStatus.NotChecked,
                Absent = $"present ({bounds.Length} bytes) but not read by this version of textpoke",
            };
        if (bounds.Length == 0)
        {
            var empty = new TableReport
            {
                Name = table.Name, Title = table.Title, Bounds = bounds, Layout = "empty", Evidence = "start and stop are equal", Status = TableStatus.Empty,
            };
            if (table.WhenEmpty?.Invoke(context, bounds) is { } finding) empty.Findings.Add(finding);
            return empty;
        }
        return table.Check(context, bounds);
    }

    static TableReport Report(TableDescriptor table, TableBounds bounds, string layout, string evidence, int entries) =>
        new() { Name = table.Name, Title = table.Title, Bounds = bounds, Layout = layout, Evidence = evidence, Entries = entries };

    static TableReport Unreadable(TableDescriptor table, TableBounds bounds, string why) =>
        new() { Name = table.Name, Title = table.Title, Bounds = bounds, Absent = $"layout could not be decided: {why}", Status = TableStatus.NotChecked };

    /// <summary>The table's entries, or the report that says why they could not be read.</summary>
    static EntryTable? Entries(TableContext c, TableBounds b, TableDescriptor table, out TableReport? unreadable)
    {
        var entries = EntryTable.Read(c.Image, b, table, out var why);
        unreadable = entries == null ? Unreadable(table, b, why!) : null;
        return entries;
    }

    // Tables that a linked x86 vmlinux merges into another output section (include/asm-generic/vmlinux.lds.h:
    // JUMP_TABLE_DATA in .data..ro_after_init, MCOUNT_REC in .init.data, STATIC_CALL_DATA in .rodata); every other
    // table is an output section of its own (arch/x86/kernel/vmlinux.lds.S, EXCEPTION_TABLE, BUG_TABLE, ORC_UNWIND_TABLE).
    static readonly string[] MergedWhenLinked = ["__jump_table", "__mcount_loc", ".static_call_sites"];

    /// <summary>
    /// Why a table that was not found may still be in the image, or null when not finding it means the kernel has none.
    /// A linked image without any symbols (a stripped vmlinuz whose kallsyms could not be recovered) cannot show a table
    /// that lives inside another section: its absence proves nothing. An unlinked object keeps every table in its own
    /// section, and so does a linked image for the tables not merged, so there a missing section is a missing table.
    /// </summary>
    public static string? CannotLocate(KernelImage image, ImageSymbols symbols, string? section, string? start, string? stop)
    {
        if (image.Elf.IsRelocatable || symbols.Names.Source != SymbolSource.None) return null;
        if (image.Elf.Sections.Any(s => s.IsAllocated) && section != null && !MergedWhenLinked.Contains(section)) return null;
        return $"not found, and cannot be ruled out: no {section ?? start} section and no symbols to find {start}/{stop} " +
            "(stripped image without kallsyms; pass --system-map)";
    }

    // --- .smp_locks: s32 rel32 to a LOCK prefix (arch/x86/include/asm/alternative.h LOCK_PREFIX_HERE) ------------------
    static TableReport SmpLocks(TableContext c, TableBounds b)
    {
        if (Entries(c, b, PatchTables.SmpLocks, out var unreadable) is not { } table) return unreadable!;
        var r = Report(PatchTables.SmpLocks, b, "s32 rel32, 4 bytes", "one layout in every version", 0);
        int entries = 0;
        Span<byte> one = stackalloc byte[1];
        for (int i = 0; i < table.Count; i++)
        {
            if (Rel32Sites.IsPadding(table, i)) continue; // page padding
            entries++;
            ulong site = Rel32Sites.Site(table, i);
            bool text = c.Image.IsText(site);
            int n = text ? c.Image.Read(site, one) : 0;
            string state = n == 1 && one[0] == 0xf0 ? "lock" : "other";
            r.Count(state);
            if (c.ListSites) r.Sites.Add(new TableSite(site, state));
            if (state == "lock") continue;
            // alternatives_smp_unlock() turns f0 into 3e on a uniprocessor machine and alternatives_smp_lock() 3e back into
            // f0 when CPUs come up; any other byte is left alone. An entry on 3e is acted on (made a LOCK): a warning.
            // Any other byte is never touched, so the kernel behaves, only slower on one CPU: a notice. (Seen in Debian
            // 6.12: `66 f0 41 0f b1` — the operand-size prefix emitted before the LOCK the entry was meant for.)
            bool actedOn = n == 1 && one[0] == 0x3e;
            r.Findings.Add(new Finding
            {
                Table = "smp_locks", Rule = text ? "smp.not-lock" : "smp.outside-text", Severity = actedOn ? Severity.Warning : Severity.Notice,
                Title = text ? "lock site is not a LOCK prefix" : "lock site outside kernel text", Address = site, Location = c.PS(site),
                ActualBytes = n == 1 ? X86Code.Hex(one) : null, ExpectedBytes = "f0",
                Explanation = !text ? "the entry points outside kernel text; alternatives_smp_unlock skips it: nothing changes."
                    : actedOn ? "the entry points at 3e (DS), not f0: when a second CPU comes up, alternatives_smp_lock() turns that byte into a LOCK " +
                        "prefix, changing whatever instruction holds it."
                    : $"the entry points at {X86Code.Hex(one)}, not f0. alternatives_smp_unlock/lock only switch f0 (LOCK) and 3e (DS), so this " +
                        "entry is ignored: the LOCK it was meant for (often the next byte, after an operand-size prefix the assembler put first) " +
                        "stays a LOCK on a one-CPU machine. Slower, never wrong.",
            });
        }
        r.Entries = entries;
        return r;
    }

    // --- .return_sites: JMP32 to __x86_return_thunk (arch/x86/kernel/alternative.c apply_returns, v5.19..v6.12) ---------
    static TableReport ReturnSites(TableContext c, TableBounds b)
    {
        if (Entries(c, b, PatchTables.ReturnSites, out var unreadable) is not { } table) return unreadable!;
        bool judge = c.Image.Elf.IsRelocatable || c.Symbol("__x86_return_thunk") != null;
        var r = Report(PatchTables.ReturnSites, b, "s32 rel32, 4 bytes", judge ? "one layout in every version"
            : "no __x86_return_thunk symbol: targets not judged", table.Count);
        for (int i = 0; i < table.Count; i++)
        {
            ulong site = Rel32Sites.Site(table, i);
            var (insn, raw) = c.Decode(site);
            // apply_returns looks at insn.opcode.bytes[0] after prefixes: Clang's `cs jmp __x86_return_thunk` (2e e9) is a JMP32 too.
            bool jmp32 = insn.IsValid && insn.Raw.Code == Iced.Intel.Code.Jmp_rel32_64;
            ulong dest = jmp32 ? insn.BranchTarget : 0;
            bool trampoline = raw.AsSpan(5, 3).SequenceEqual((ReadOnlySpan<byte>)[0x0f, 0xb9, 0xcc]); // __static_call_fixup
            bool toThunk = jmp32 && c.TargetName(site, insn.Length - 4, dest) == "__x86_return_thunk";
            string state = !insn.IsValid ? "undecodable" : toThunk ? "jmp thunk" : trampoline ? "static call trampoline" : "other";
            r.Count(state);
            if (c.ListSites) r.Sites.Add(new TableSite(site, state, dest == 0 ? null : dest));
            if (state is "jmp thunk" or "static call trampoline" || !judge) continue;
            r.Findings.Add(new Finding
            {
                Table = "return_sites", Rule = insn.IsValid ? "return.missing-thunk" : "return.undecodable", Severity = Severity.Warning,
                Title = insn.IsValid ? "return site does not jump to __x86_return_thunk" : "return site does not decode",
                Address = site, Location = c.PS(site), ActualBytes = X86Code.Hex(raw.AsSpan(0, 5)),
                KernelLines = insn.IsValid ? [KernelMessages.ReturnThunk(c.PS(site), dest == 0 ? "0x0" : c.PS(dest), raw.AsSpan(0, 5))] : [],
                Explanation = "apply_returns() expects a JMP to __x86_return_thunk at every .return_sites entry (objtool records each `ret` it turned into " +
                    "that jump). " +
                    "This one is skipped with a WARN_ONCE, so the return stays unpatched: on CPUs that need the return-thunk mitigation (retbleed) this " +
                        "return is unprotected, and without it the thunk is not replaced by a plain ret.",
            });
        }
        return r;
    }

    // --- .retpoline_sites: CALL/JMP/Jcc to __x86_indirect_thunk_array + 32*reg (apply_retpolines, v5.16..v6.12) -------------
    // arch/x86/include/asm/GEN-for-each-reg.h order: the thunk array is indexed by register number.
    static readonly string[] ThunkRegisters = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

    static TableReport RetpolineSites(TableContext c, TableBounds b)
    {
        if (Entries(c, b, PatchTables.RetpolineSites, out var unreadable) is not { } table) return unreadable!;
        ulong? array = c.Symbol("__x86_indirect_thunk_array") ?? c.Symbol("__x86_indirect_thunk_rax");
        bool judgeThunks = array != null || c.Image.Elf.IsRelocatable;
        var r = Report(PatchTables.RetpolineSites, b, "s32 rel32, 4 bytes",
            judgeThunks ? "one layout in every version" : "no __x86_indirect_thunk_array symbol: targets not judged", table.Count);
        for (int i = 0; i < table.Count; i++)
        {
            ulong site = Rel32Sites.Site(table, i);
            var (insn, raw) = c.Decode(site);
            int op = raw[0] == 0x2e ? 1 : 0; // -mindirect-branch-cs-prefix
            bool shape = insn.IsValid && (raw[op] is 0xe8 or 0xe9 || raw[op] == 0x0f && raw[op + 1] is >= 0x80 and <= 0x8f);
            long reg = shape && array is { } a ? ((long)insn.BranchTarget - (long)a) : -1;
            if (shape && c.Image.Elf.IsRelocatable)
            {
                // __x86_indirect_thunk_<reg> by name: the thunks are undefined in a module.
                string? name = c.TargetName(site, op + (raw[op] == 0x0f ? 2 : 1), insn.BranchTarget);
                int index = name != null && name.StartsWith("__x86_indirect_thunk_", StringComparison.Ordinal) ? Array.IndexOf(ThunkRegisters,
                    name["__x86_indirect_thunk_".Length..]) : -1;
                reg = index < 0 ? -1 : index * 32;
            }
            bool thunk = reg >= 0 && reg % 32 == 0 && reg / 32 <= 15 && reg / 32 != 4;
            string state = thunk ? $"thunk r{reg / 32}" : "other";
            r.Count(thunk ? (raw[op] == 0xe8 ? "call thunk" : "jmp thunk") : "other");
            if (c.ListSites) r.Sites.Add(new TableSite(site, state, insn.BranchTarget == 0 ? null : insn.BranchTarget));
            if (thunk || !judgeThunks) continue;
            bool rsp = reg == 4 * 32;
            r.Findings.Add(new Finding
            {
                Table = "retpoline_sites", Rule = rsp ? "retpoline.rsp" : shape ? "retpoline.not-a-thunk" : "retpoline.bad-instruction",
                Severity = rsp ? Severity.Bug : Severity.Warning,
                Title = rsp ? "retpoline site through %rsp" : shape ? "retpoline site does not target an indirect thunk"
                    : "retpoline site is not a CALL, JMP or Jcc",
                Address = site, Location = c.PS(site), ActualBytes = X86Code.Hex(raw.AsSpan(0, 6)),
                KernelLines = rsp ? [c.BugLine("arch/x86/kernel/alternative.c") ?? "kernel BUG at arch/x86/kernel/alternative.c!"] : [],
                Explanation = rsp ? "the thunk for %rsp: apply_retpolines hits BUG_ON(reg == 4)."
                    : shape ? $"the branch goes to {c.PS(insn.BranchTarget)}, not one of the 16 __x86_indirect_thunk_<reg> entries; patch_retpoline() " +
                        $"WARN_ON_ONCEs and leaves the site unpatched (the retpoline choice for this CPU is not applied here)."
                    : "apply_retpolines() accepts only CALL, JMP or Jcc rel32 here; anything else is skipped with a WARN_ON_ONCE, so this indirect branch " +
                        "is not converted.",
            });
        }
        return r;
    }

    // --- __mcount_loc: u64 addresses of `call __fentry__` or NOP5 (ftrace_process_locs, ftrace_make_nop) -----------------
    static TableReport Mcount(TableContext c, TableBounds b)
    {
        if (Entries(c, b, PatchTables.Mcount, out var unreadable) is not { } table) return unreadable!;
        ulong? fentry = c.Symbol("__fentry__");
        bool judge = fentry != null || c.Image.Elf.IsRelocatable;
        var r = Report(PatchTables.Mcount, b, "u64 absolute, 8 bytes", judge ? "one layout in every version" : "no __fentry__ symbol: calls not judged", 0);
        int entries = 0;
        var nop5 = X86Code.Nop(5).ToArray();
        var raw = new byte[5];
        for (int i = 0; i < table.Count; i++)
        {
            ulong site = McountSites.Site(table, i);
            if (site == 0) continue; // link padding
            entries++;
            Array.Clear(raw);
            int n = c.Image.IsText(site) ? c.Image.Read(site, raw) : 0;
            ulong target = n == 5 && raw[0] == X86Code.CallOpcode ? site + 5 + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(raw.AsSpan(1)) : 0;
            bool call = n == 5 && raw[0] == X86Code.CallOpcode && (target == fentry || c.TargetName(site, 1, target) == "__fentry__");
            string state = n < 5 ? "outside text" : call ? "call __fentry__" : raw.AsSpan().SequenceEqual(nop5) ? "nop5" : "other";
            r.Count(state);
            if (c.ListSites) r.Sites.Add(new TableSite(site, state, target == 0 ? null : target));
            if (state is "call __fentry__" or "nop5" || !judge) continue;
            var expected = fentry is { } f ? X86Code.GenerateInstruction(X86Code.CallOpcode, site, f).Union : nop5;
            r.Findings.Add(new Finding
            {
                Table = "mcount", Rule = n < 5 ? "mcount.outside-text" : "mcount.not-fentry", Severity = Severity.Warning,
                Title = n < 5 ? "ftrace site outside kernel text" : "ftrace site is neither a call to __fentry__ nor a NOP",
                Address = site, Location = c.PS(site), ActualBytes = n == 5 ? X86Code.Hex(raw) : null, ExpectedBytes = X86Code.Hex(expected),
                KernelLines = n < 5 ? [] : KernelMessages.FtraceBug(site, c.PS(site), raw, expected),
                Explanation = "ftrace_init turns every __mcount_loc site into a NOP, first checking that it holds the call to __fentry__ the compiler " +
                    "emitted. " +
                    "This one holds something else: ftrace_bug() prints this, ftrace is disabled for the whole kernel, and the bytes the table points at " +
                        "are the wrong ones (the function moved, or the record is stale).",
            });
        }
        r.Entries = entries;
        return r;
    }

    const string ObjtoolStopped = "objtool generates this table; with Clang LTO it runs once, on vmlinux.o, and through v6.14 an error it reports only as " +
        "a warning (\"can't find switch jump table\", \"can't find jump dest instruction\", ...) ends its run early while the build goes on — " +
        "jump-label NOPs already written, ORC, __mcount_loc and static-call tables never created. Look for \"objtool:\" warnings in the build log.";

    // An ORC-unwinder kernel (it reserves .orc_lookup) with no ORC entries: unwind_init() disables the unwinder.
    static Finding? OrcMissing(TableContext c, TableBounds b) =>
        c.Image.Elf.Section(".orc_lookup") == null && c.Symbol("orc_lookup") == null || c.Image.Elf.IsRelocatable ? null : new Finding
        {
            Table = "orc", Rule = "orc.missing", Severity = Severity.Warning, Title = "ORC unwinder built in, but the ORC table is empty",
            Address = b.Start, KernelLines = [KernelMessages.OrcBadOrMissing],
            Explanation = "the kernel was built with CONFIG_UNWINDER_ORC (it reserves .orc_lookup) but .orc_unwind_ip and .orc_unwind are empty: " +
                "unwind_init() " +
                "disables the unwinder, so every stack trace is a guess and live patching cannot work. " + ObjtoolStopped,
        };

    // A kernel with ftrace (ftrace_init) and __fentry__ whose __mcount_loc is empty: ftrace finds nothing to trace.
    static Finding? McountMissing(TableContext c, TableBounds b) =>
        c.Symbol("ftrace_init") == null || c.Symbol("__fentry__") == null || c.Image.Elf.IsRelocatable ? null : new Finding
        {
            Table = "mcount", Rule = "mcount.missing", Severity = Severity.Warning, Title = "ftrace built in, but __mcount_loc is empty",
            Address = b.Start, KernelLines = [KernelMessages.FtraceNoFunctions],
            Explanation = "the kernel has ftrace (ftrace_init, __fentry__) but no recorded call sites: ftrace_init() finds nothing, and no function can be " +
                "traced or live-patched. " + ObjtoolStopped,
        };

    // --- .static_call_sites: {s32 addr; s32 key} with TAIL in the key's low bit (__static_call_validate, v5.10..v6.12) -------
    static TableReport StaticCalls(TableContext c, TableBounds b)
    {
        if (Entries(c, b, PatchTables.StaticCalls, out var unreadable) is not { } table) return unreadable!;
        var r = Report(PatchTables.StaticCalls, b, "{s32 addr; s32 key}, 8 bytes", "one layout since v5.10", table.Count);
        var nop5 = X86Code.Nop(5).ToArray();
        ReadOnlySpan<byte> xor5rax = [0x2e, 0x2e, 0x2e, 0x31, 0xc0];
        var raw = new byte[8];
        for (int i = 0; i < table.Count; i++)
        {
            var (site, key, tail, _) = StaticCallSite.Read(table, i);
            Array.Clear(raw);
            int n = c.Image.IsText(site) ? c.Image.Read(site, raw) : 0;
            bool ok = n >= 5 && (tail
                ? raw[0] is 0xe9 or 0xc3 || raw[0] == 0x0f && raw[1] is >= 0x80 and <= 0x8f
                : raw[0] == 0xe8 || raw.AsSpan(0, 5).SequenceEqual(nop5) || raw.AsSpan(0, 5).SequenceEqual(xor5rax));
            string state = n < 5 ? "outside text" : ok ? (tail ? "tail " : "") + raw[0] switch { 0xe8 => "call", 0xe9 => "jmp", 0xc3 => "ret", 0x0f => "jcc",
                _ => "nop" } : "other";
            r.Count(state);
            if (c.ListSites) r.Sites.Add(new TableSite(site, state, null, $"key {c.PS(key)}"));
            if (ok) continue;
            var lines = new List<string> { KernelMessages.StaticCallInsn(n > 0 ? raw[0] : (byte)0, c.PS(site)) };
            if (c.BugLine("arch/x86/kernel/static_call.c") is { } bug) lines.Add(bug);
            r.Findings.Add(new Finding
            {
                Table = "static_calls", Rule = "static_call.unexpected-insn", Severity = Severity.Bug,
                Title = $"static call site is not a {(tail ? "JMP, RET or Jcc" : "CALL or NOP")}", Address = site, Location = c.PS(site),
                ActualBytes = n >= 5 ? X86Code.Hex(raw.AsSpan(0, 5)) : null, KernelLines = lines,
                Explanation = $"static_call_init() patches every site at boot and __static_call_validate() accepts only " +
                    $"{(tail ? "a JMP32, RET or Jcc (tail call)" : "a CALL, the 5-byte NOP or `xor %eax,%eax` (cs-prefixed)")} here; anything else BUGs " +
                    $"during boot.",
            });
        }
        return r;
    }

    // --- __ex_table: {insn, fixup, handler|data}, sorted by insn (sorttable; search_extable's bsearch) ----------------------
    static TableReport ExceptionTable(TableContext c, TableBounds b)
    {
        if (Entries(c, b, PatchTables.ExceptionTable, out var unreadable) is not { } table) return unreadable!;
        int count = table.Count;
        // <=5.15.0 the third field is a rel32 to an ex_handler_* function; 5.16+ (and later 5.15.y) it is type/reg/flags/imm data.
        bool old = ExceptionEntry.HandlerLayout(c.Image, table, out var evidence);
        var r = Report(PatchTables.ExceptionTable, b, old ? "{insn, fixup, handler} rel32, 12 bytes (<= v5.15.0)"
            : "{insn, fixup} rel32 + data, 12 bytes (v5.16+)",
            evidence, count);
        ulong previous = 0;
        for (int i = 0; i < count; i++)
        {
            var (insn, fixup, _) = ExceptionEntry.Read(table, i);
            bool inText = c.Image.IsText(insn), fixupText = c.Image.IsText(fixup);
            r.Count(inText && fixupText ? "ok" : "outside text");
            if (c.ListSites) r.Sites.Add(new TableSite(insn, inText ? "insn" : "outside text", fixup));
            if (!inText || !fixupText)
                r.Findings.Add(new Finding
                {
                    Table = "ex_table", Rule = "ex.outside-text", Severity = Severity.Bug, Title = "exception table entry outside kernel text",
                    Address = insn, Location = c.PS(insn),
                    Explanation = $"entry {i}: the faulting instruction {(inText ? "" : $"{insn:x16} ")}and its fixup " +
                        $"{(fixupText ? "" : $"{fixup:x16} ")}must both be kernel text; a fault there cannot be fixed up and becomes an oops.",
                });
            // Modules' tables are sorted at load (sort_extable in load_module); vmlinux's by scripts/sorttable at build.
            if (i > 0 && insn < previous && !c.Image.Elf.IsRelocatable && r.Findings.All(f => f.Rule != "ex.unsorted"))
                r.Findings.Add(new Finding
                {
                    Table = "ex_table", Rule = "ex.unsorted", Severity = Severity.Bug, Title = "exception table is not sorted",
                    Address = insn, Location = c.PS(insn),
                    Explanation = $"entry {i} ({c.PS(insn)}) comes after {c.PS(previous)}: search_exception_tables() does a binary search, so a fault at a " +
                        $"misplaced entry's instruction finds no fixup and a recoverable fault (a user access, an MSR read) becomes an oops. " +
                        $"scripts/sorttable did not run on this image.",
                });
            previous = insn;
        }
        return r;
    }

    // --- __bug_table: each entry on the ud2 of its BUG()/WARN() (report_bug, find_bug) ---------------------------------------
    static TableReport Bugs(TableContext c, TableBounds b)
    {
        var table = c.Bugs;
        if (table == null) return Unreadable(PatchTables.BugTable, b, $"{b.Length} bytes: neither 12-byte (DEBUG_BUGVERBOSE) nor 8-byte entries decode");
        var r = Report(PatchTables.BugTable, b,
            table.Format switch { BugEntryFormat.FieldRelative => "12 bytes, field-relative (v5.19+)", BugEntryFormat.EntryRelative =>
                "12 bytes, entry-relative (<= v5.18)", _ => "8 bytes, no file/line" },
            "file pointers land on NUL-terminated paths", table.Entries.Count);
        var one = new byte[2];
        foreach (var e in table.Entries)
        {
            int n = c.Image.IsText(e.Address) ? c.Image.Read(e.Address, one) : 0;
            bool ud2 = n == 2 && one[0] == 0x0f && one[1] is 0x0b or 0xb9;
            string state = ud2 ? (e.IsWarning ? "warn" : "bug") : "other";
            r.Count(state);
            if (c.ListSites) r.Sites.Add(new TableSite(e.Address, state, null, e.File == null ? null : $"{e.File}:{e.Line}"));
            if (ud2) continue;
            r.Findings.Add(new Finding
            {
                Table = "bug_table", Rule = "bug.not-ud2", Severity = Severity.Warning, Title = "bug table entry is not on a ud2",
                Address = e.Address, Location = c.PS(e.Address), ActualBytes = n == 2 ? X86Code.Hex(one) : null, ExpectedBytes = "0f 0b",
                Explanation = $"the entry for {(e.File == null ? "a BUG/WARN" : $"{e.File}:{e.Line}")} points at {(n == 2 ? X86Code.Hex(one) : "no text")}, " +
                    $"not a ud2: report_bug() never finds it, so the real {(e.IsWarning ? "WARN" : "BUG")} reports as a bare \"invalid opcode\" oops " +
                    $"without file and line.",
            });
        }
        return r;
    }

    // --- ORC: .orc_unwind_ip (s32 rel32) and .orc_unwind (6-byte entries), same count, sorted by ip (unwind_init) ------------
    static TableReport Orc(TableContext c, TableBounds b)
    {
        // Modules are sorted at load (unwind_module_init), so there only the sizes matter: no need to relocate the table.
        bool sortedOnDisk = !c.Image.Elf.IsRelocatable && !(c.Image.Version is { } v && (v.Major < 5 || v.Major == 5 && v.Minor < 6));
        string? problem = null;
        var ipBytes = sortedOnDisk ? SiteArray.Bytes(c.Image, b, out problem) : new byte[b.Length <= int.MaxValue ? (int)b.Length : 0];
        var unwind = PatchTables.Locate(c.Image, c.Symbols, PatchTables.OrcUnwind);
        if (ipBytes == null) return Unreadable(PatchTables.Orc, b, problem!);
        var header = c.Image.Elf.Section(".orc_header");
        string layout = header != null ? "v6.4+ (.orc_header)" : "v4.14..v6.3 (no .orc_header)";
        int count = ipBytes.Length / 4;
        var r = Report(PatchTables.Orc, b, layout + ", 4-byte ip + 6-byte entry", header != null ? "an .orc_header section is present"
            : "no .orc_header section", count);
        if (ipBytes.Length % 4 != 0 || unwind == null || unwind.Length != (ulong)count * 6)
        {
            r.Findings.Add(new Finding
            {
                Table = "orc", Rule = "orc.count-mismatch", Severity = Severity.Warning, Title = ".orc_unwind_ip and .orc_unwind disagree",
                KernelLines = [KernelMessages.OrcBadOrMissing],
                Explanation = $"{count} ip entries but {(unwind == null ? "no .orc_unwind" : $"{unwind.Length / 6.0:0.#} unwind entries")}: unwind_init() " +
                    $"disables the ORC unwinder, so every stack trace falls back to guessing.",
            });
            return r;
        }
        // Sorted at build time by scripts/sorttable since v5.6; before that, and for modules, at load.
        ulong previous = 0;
        for (int i = 0; i < count && sortedOnDisk; i++)
        {
            ulong ip = SiteArray.Rel32(ipBytes, b.Start, 4 * i);
            if (i > 0 && ip < previous)
            {
                r.Findings.Add(new Finding
                {
                    Table = "orc", Rule = "orc.unsorted", Severity = Severity.Warning, Title = "ORC table is not sorted by ip",
                    Address = ip, Location = c.PS(ip), KernelLines = [KernelMessages.OrcCorrupt],
                    Explanation = $"entry {i} ({c.PS(ip)}) comes after {c.PS(previous)}: since v5.6 the table is sorted at build time and the kernel " +
                        $"binary-searches it; unwind_init() finds a lookup block whose search fails and disables the unwinder.",
                });
                break;
            }
            previous = ip;
        }
        r.Count("entries");
        r.Counts["entries"] = count;
        return r;
    }

    // --- .altinstructions: struct alt_instr per era (patch-tables.md §1), decided from the bytes -----------------------------
    const int MaxPatchLen = AltTable.MaxPatchLen;

    static TableReport Alternatives(TableContext c, TableBounds b)
    {
        if (AltTable.Read(c.Image, c.Symbols, b, out var why) is not { } table)
            return Unreadable(PatchTables.Alternatives, b, why!);
        var layout = table.Layout;
        ulong rStart = table.ReplacementStart, rEnd = table.ReplacementEnd;
        int entries = table.Count;
        var r = Report(PatchTables.Alternatives, b, layout.Name, $"{table.Score}% of sampled entries validate", entries);
        var decoder = c.Decoder;
        var code = new byte[MaxPatchLen + 16];
        // A broken entry: counted, reported, and not judged further.
        void Broken(Finding finding)
        {
            r.Count("broken");
            r.Findings.Add(finding);
        }
        for (int i = 0; i < entries; i++)
        {
            var e = table[i];
            string where = c.PS(e.Instr);
            if (c.ListSites) r.Sites.Add(new TableSite(e.Instr, $"feature {e.Feature >> 5}*32+{e.Feature & 31}, {e.InstrLen}/{e.ReplLen} bytes", e.Repl));
            if (e.InstrLen > MaxPatchLen || e.Feature >= table.FeatureLimit)
            {
                Broken(new Finding { Table = "alt", Rule = "alt.out-of-range", Severity = Severity.Bug, Title = e.InstrLen > MaxPatchLen
                        ? "alternative longer than MAX_PATCH_LEN" : "alternative feature number out of range",
                    Address = e.Instr, Location = where, KernelLines = [c.BugLine("arch/x86/kernel/alternative.c")
                        ?? "kernel BUG at arch/x86/kernel/alternative.c!"],
                    Explanation = $"entry {i}: instrlen {e.InstrLen}, feature {e.Feature} (limit {table.FeatureLimit}, " + (table.Words is { } w
                        ? $"NCAPINTS {w.CapInts} + NBUGINTS {w.BugInts} from the image's x86_cap_flags/x86_bug_flags" : $"the {layout.EraName} layout's era") +
                        "); apply_alternatives() BUG_ONs on it at boot." });
                continue;
            }
            if (!c.Image.IsText(e.Instr) || e.Repl < rStart || e.Repl + (ulong)e.ReplLen > rEnd)
            {
                Broken(new Finding { Table = "alt", Rule = "alt.bad-pointer", Severity = Severity.Bug,
                    Title = "alternative points outside text or .altinstr_replacement",
                    Address = e.Instr, Location = where,
                    Explanation = $"entry {i}: the original code ({e.Instr:x16}) must be kernel text and the replacement ({e.Repl:x16}, {e.ReplLen} bytes) " +
                        $"inside .altinstr_replacement; the boot patcher would copy garbage over code." });
                continue;
            }
            if (e.ReplLen > e.InstrLen && !(layout.Flags32 && e.InstrLen == 6 && e.ReplLen == 5))
            {
                Broken(new Finding { Table = "alt", Rule = "alt.replacement-too-long", Severity = Severity.Bug, Title = "replacement longer than the original",
                    Address = e.Instr, Location = where,
                    Explanation = $"entry {i}: a {e.ReplLen}-byte replacement for {e.InstrLen} bytes at {where}: when the feature is present, " +
                        $"apply_alternatives() copies it whole and overwrites the instruction after the site." });
                continue;
            }
            // The original range must be whole instructions (code plus 0x90 padding): a patch must not cut one in half.
            int n = c.Image.Read(e.Instr, code.AsSpan(0, e.InstrLen + 15));
            int at = 0;
            while (at < e.InstrLen)
            {
                var insn = decoder.Decode(code.AsSpan(at, Math.Max(0, n - at)), e.Instr + (ulong)at);
                if (!insn.IsValid) break;
                at += insn.Length;
            }
            if (at != e.InstrLen)
            {
                Broken(new Finding { Table = "alt", Rule = "alt.split-instruction", Severity = Severity.Bug, Title = "alternative ends inside an instruction",
                    Address = e.Instr, Location = where, ActualBytes = X86Code.Hex(code.AsSpan(0, Math.Min(n, e.InstrLen + 4))),
                    Explanation = $"entry {i}: the {e.InstrLen} bytes at {where} do not end on an instruction boundary (the instructions there end at " +
                        $"+{at}); patching them overwrites half an instruction and the CPU then executes the rest as garbage." });
                continue;
            }
            if (layout.PadLen && e.PadLen > e.InstrLen)
            {
                Broken(new Finding { Table = "alt", Rule = "alt.padding-too-long", Severity = Severity.Bug, Title = "alternative padding longer than the site",
                    Address = e.Instr, Location = where,
                    Explanation = $"entry {i}: padlen {e.PadLen} exceeds instrlen {e.InstrLen}: optimize_nops() (<= v5.12) writes {e.PadLen} NOPs from " +
                        $"instr + instrlen - padlen, {e.PadLen - e.InstrLen} bytes before the site, over the code in front of it." });
                continue;
            }
            if (layout.PadLen && e.PadLen > 0 && code.AsSpan(e.InstrLen - e.PadLen, e.PadLen).IndexOfAnyExcept((byte)0x90) >= 0)
            {
                Broken(new Finding { Table = "alt", Rule = "alt.bad-padding", Severity = Severity.Warning, Title = "alternative padding is not 0x90",
                    Address = e.Instr, Location = where,
                        Explanation = $"entry {i}: the last {e.PadLen} bytes should be the assembler's 0x90 padding; optimize_nops() would skip them." });
                continue;
            }
            r.Count("ok");
        }
        return r;
    }

    // --- .parainstructions: {u64 instr; u8 type; u8 len; u16 clobbers} per 16 bytes (apply_paravirt, v4.19..v6.7) -----------
    static TableReport Paravirt(TableContext c, TableBounds b)
    {
        if (Entries(c, b, PatchTables.Paravirt, out var unreadable) is not { } table) return unreadable!;
        ulong? pvOps = c.Symbol("pv_ops");
        var r = Report(PatchTables.Paravirt, b, "16 bytes {u64 instr; u8 type; u8 len; u16 clobbers}",
            pvOps == null ? "no pv_ops symbol: call slots not judged" : "one layout in v5.x..v6.7", table.Count);
        var raw = new byte[32];
        for (int at = 0; at < table.Count; at++)
        {
            var (site, type, len, _) = ParavirtSite.Read(table, at);
            int n = c.Image.IsText(site) ? c.Image.Read(site, raw) : 0;
            var insn = n > 0 ? c.Decoder.Decode(raw.AsSpan(0, n), site) : default;
            ulong slot = pvOps is { } p ? p + 8UL * (ulong)type : 0;
            bool throughSlot = insn.IsValid && insn.Raw.Op0Kind == Iced.Intel.OpKind.Memory
                && (insn.Raw.IsIPRelativeMemoryOperand ? insn.Raw.IPRelativeMemoryAddress : insn.Raw.MemoryDisplacement64) == slot;
            // <= v5.10's paravirt_patch_default() patches the iret and usergs_sysret64 operations with a JMP (their sites are
            // `jmp *pv_ops+slot`), every other one with a CALL: which one the slot's operation gets decides the right site.
            bool jmpOp = pvOps != null && c.Image.TryReadU64(slot, out ulong op)
                && c.Symbols.Names.Lookup(op) is { Offset: 0 } f && f.Symbol.Name is "native_iret" or "native_usergs_sysret64";
            bool callSlot = throughSlot && insn.Mnemonic == (jmpOp ? Iced.Intel.Mnemonic.Jmp : Iced.Intel.Mnemonic.Call);
            string state = n == 0 ? "outside text" : !callSlot ? "other" : jmpOp ? "jmp pv_ops slot (iret)" : "call pv_ops slot";
            r.Count(state);
            if (c.ListSites) r.Sites.Add(new TableSite(site, state, slot == 0 ? null : slot, $"type {type}, len {len}"));
            string? problemText = n == 0 ? "the site is not kernel text"
                : len > MaxPatchLen ? $"len {len} exceeds MAX_PATCH_LEN: BUG_ON(p->len > MAX_PATCH_LEN)"
                : len < 5 ? $"len {len}: the patched call is 5 bytes, so apply_paravirt() hits BUG_ON(used > p->len)"
                : pvOps != null && !callSlot ? $"the site is not an indirect {(jmpOp ? "jmp" : "call")} through pv_ops slot {type} ({c.PS(slot)}), so the " +
                    "patch replaces other code"
                : insn.IsValid && insn.Length > len ? $"the call is {insn.Length} bytes but the entry covers {len}" : null;
            if (problemText == null) continue;
            r.Findings.Add(new Finding
            {
                Table = "paravirt", Rule = len < 5 || len > MaxPatchLen ? "paravirt.bad-length" : n == 0 ? "paravirt.outside-text" : "paravirt.not-a-pv-call",
                Severity = Severity.Bug, Title = "paravirt site does not match its entry", Address = site, Location = c.PS(site),
                ActualBytes = n > 0 ? X86Code.Hex(raw.AsSpan(0, Math.Min(len, n))) : null,
                KernelLines = len < 5 || len > MaxPatchLen ? [c.BugLine("arch/x86/kernel/alternative.c") ?? "kernel BUG at arch/x86/kernel/alternative.c!"]
                    : [],
                Explanation = $"entry {at}: {problemText}. apply_paravirt() rewrites every entry at boot.",
            });
        }
        return r;
    }

    // --- .call_sites (v6.2+): direct calls (callthunks_patch_builtin_calls) ------------------------------------------------
    static TableReport CallSites(TableContext c, TableBounds b) => CheckRel32Sites(c, b, PatchTables.CallSites, (raw, n) => n >= 5
        && raw[0] == X86Code.CallOpcode,
        "direct call", "call site is not a direct CALL",
            "callthunks_patch_builtin_calls() retargets every entry to its call-depth accounting thunk; a site that is not `e8 rel32` is skipped with a " +
            "WARN, or, worse, patched as if it were a call.");

    // --- .ibt_endbr_seal (v5.18+): ENDBR64/ENDBR32 of functions whose address is never taken (apply_seal_endbr) ------------
    static TableReport EndbrSeal(TableContext c, TableBounds b) => CheckRel32Sites(c, b, PatchTables.EndbrSeal,
        (raw, n) => n >= 4 && raw[0] == 0xf3 && raw[1] == 0x0f && raw[2] == 0x1e && raw[3] is 0xfa or 0xfb,
        "endbr", "sealed site is not an ENDBR",
            "apply_seal_endbr() poisons each entry's ENDBR (66 0f 1f 00) and WARN_ON_ONCEs on anything else, which it leaves alone: the function stays a " +
            "valid indirect-branch target.");

    // --- .cfi_sites (v6.2+, Clang kCFI/FineIBT): each __cfi_<fn> preamble is `mov $hash, %eax` + 11 NOPs ---------------------
    static TableReport CfiSites(TableContext c, TableBounds b) => CheckRel32Sites(c, b, PatchTables.CfiSites,
        (raw, n) => n >= 16 && raw[0] == 0xb8 && raw.AsSpan(5, 11).IndexOfAnyExcept((byte)0x90) < 0,
        "kcfi preamble", "CFI site is not a kCFI preamble",
            "__apply_fineibt() rewrites each preamble (b8 <hash> + 11 x 90) for FineIBT; with anything else the hash check is wrong and indirect calls to " +
            "this function fault.");

    static TableReport CheckRel32Sites(TableContext c, TableBounds b, TableDescriptor descriptor, Func<byte[], int, bool> valid, string state,
        string findingTitle,
        string explanation)
    {
        if (Entries(c, b, descriptor, out var unreadable) is not { } table) return unreadable!;
        string name = descriptor.Name;
        var r = Report(descriptor, b, "s32 rel32, 4 bytes", "one layout since the table appeared", table.Count);
        var raw = new byte[16];
        for (int i = 0; i < table.Count; i++)
        {
            ulong site = Rel32Sites.Site(table, i);
            Array.Clear(raw);
            int n = c.Image.IsText(site) ? c.Image.Read(site, raw) : 0;
            bool ok = valid(raw, n);
            r.Count(ok ? state : "other");
            if (c.ListSites) r.Sites.Add(new TableSite(site, ok ? state : "other"));
            if (ok) continue;
            r.Findings.Add(new Finding
            {
                Table = name, Rule = $"{name}.bad-site", Severity = Severity.Warning, Title = findingTitle, Address = site, Location = c.PS(site),
                ActualBytes = n > 0 ? X86Code.Hex(raw.AsSpan(0, Math.Min(n, 5))) : null, Explanation = explanation,
            });
        }
        return r;
    }
}
