using System.Buffers.Binary;
using Iced.Intel;
using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Messages;
using TextPoke.Symbols;
using TextPoke.Tables;
using TextPoke.X86;

namespace TextPoke.Emulation;

public enum BootEventKind { Bug, Warning, Note }

/// <summary>Something the emulated boot printed or that the emulation wants said: a BUG (boot ends), a WARN, a note.</summary>
public sealed record BootEvent(string Step, BootEventKind Kind, ulong Address, string Location, IReadOnlyList<string> KernelLines, string Explanation);

/// <summary>One write of the emulated boot: text_poke_early(Address, New) over Old.</summary>
public sealed record BootPatch(string Step, ulong Address, byte[] Old, byte[] New, string? Key = null);

/// <summary>One patching step of the boot (static_call_init, apply_alternatives, ...) and what it did.</summary>
public sealed class BootStep
{
    public required string Name { get; init; }
    /// <summary>The kernel function that does it.</summary>
    public required string Function { get; init; }
    public int Sites { get; internal set; }
    /// <summary>Sites whose bytes changed.</summary>
    public int Changed { get; internal set; }
    /// <summary>Why the step did nothing (table absent, not this era, SMP boot), or null when it ran.</summary>
    public string? Skipped { get; internal set; }
}

/// <summary>
/// Boot-time self-patching of an x86-64 kernel image for a described CPU, in the kernel's order (patch-tables.md §0):
/// static_call_init (setup_arch), ftrace_init, then alternative_instructions — v5.13+: paravirt, retpolines, returns,
/// alternatives, seal_endbr, SMP locks; ≤v5.12: alternatives, SMP locks, paravirt. Each step reads the bytes the
/// previous steps left, and every BUG_ON, BUG, WARN and ftrace_bug the kernel would hit is reported in its words.
/// </summary>
public sealed class BootPatcher
{
    const string AltFile = "arch/x86/kernel/alternative.c";
    const int MaxPatchLen = AltTable.MaxPatchLen;

    readonly KernelImage _image;
    readonly ImageSymbols _symbols;
    readonly CpuModel _cpu;
    readonly CpuFeatureNames _names;
    readonly Dictionary<int, byte[]> _sections = new();
    readonly InstructionDecoder _decoder = new();
    readonly Lazy<BugTable?> _bugs;
    readonly HashSet<int> _early;

    public List<BootStep> Steps { get; } = [];
    public List<BootEvent> Events { get; } = [];
    public List<BootPatch> Patches { get; } = [];
    public bool KeepGoing { get; init; }
    /// <summary>A BUG stopped the boot (unless KeepGoing).</summary>
    public bool Halted { get; private set; }
    /// <summary>"≤v5.12", "v5.13..v6.2" or "v6.3+", from the .altinstructions layout; null when there is none.</summary>
    public string? Era { get; private set; }
    /// <summary>The .altinstructions era, or null when the image has none.</summary>
    public AltEra? AltEra { get; private set; }
    public string NopSet { get; private set; } = "P6 (x86_nops)";
    // <= v5.12 (and Debian's 5.10 with its backports): the NOPs arch_init_ideal_nops() chose, index n = n bytes, 9 = NOP5_ATOMIC;
    // null in later eras (one NOP set, x86_nops).
    byte[][]? _idealNops;
    /// <summary>The 5-byte NOP ftrace, static calls and jump labels write: ideal_nops[NOP_ATOMIC5] (&lt;= v5.12) or P6 NOP5.</summary>
    public byte[] Nop5Atomic => _idealNops?[9] ?? X86Code.Nop(5).ToArray();
    public int Bugs => Events.Count(e => e.Kind == BootEventKind.Bug);
    public int Warnings => Events.Count(e => e.Kind == BootEventKind.Warning);

    BootPatcher(KernelImage image, ImageSymbols symbols, CpuModel cpu, CpuFeatureNames names)
    {
        _image = image;
        _symbols = symbols;
        _cpu = cpu;
        _names = names;
        _bugs = new(() => BugTable.Read(image, symbols));
        // Features cpu_select_mitigations() sets in check_bugs(), after static_call_init() ran in setup_arch().
        _early = new HashSet<int>(cpu.Features);
        foreach (var late in new[] { "X86_FEATURE_RETHUNK", "X86_FEATURE_UNRET", "X86_FEATURE_SRSO", "X86_FEATURE_SRSO_ALIAS", "X86_FEATURE_RETPOLINE",
                     "X86_FEATURE_RETPOLINE_LFENCE", "X86_FEATURE_INDIRECT_THUNK_ITS", "X86_FEATURE_CALL_DEPTH" })
            if (names.Find(late) is { } bit) _early.Remove(bit);
    }

    /// <summary>Runs the whole boot-time patching of a vmlinux (or the ELF inside a bzImage).</summary>
    /// <summary>The image's __jump_table as checked by the emulated jump_label_init (kernels with ideal_nops), or null.</summary>
    public Checks.JumpLabelReport? JumpReport { get; private set; }

    public static BootPatcher Run(KernelImage image, ImageSymbols symbols, CpuModel cpu, CpuFeatureNames names, bool keepGoing = false,
        ulong? returnThunk = null)
    {
        if (image.Elf.IsRelocatable)
            throw new ImageFormatException(image.Path, "simulate --boot needs a linked kernel (vmlinux or bzImage); modules are patched at load, not at boot");
        var p = new BootPatcher(image, symbols, cpu, names) { KeepGoing = keepGoing, ReturnThunkOverride = returnThunk };
        p.RunAll();
        return p;
    }

    void RunAll()
    {
        var alt = PatchTables.Locate(_image, _symbols, PatchTables.Alternatives);
        AltTable? altTable = null;
        string? altWhy = null;
        if (alt != null && alt.Length > 0) altTable = AltTable.Read(_image, _symbols, alt, out altWhy);
        AltEra = altTable?.Layout.Era;
        Era = altTable?.Layout.EraName;
        if (Symbol("ideal_nops") != null)
        {
            // arch_init_ideal_nops() runs in setup_arch() before jump_label_init(); its tables are in the image.
            bool p6 = _cpu.IdealNopsAreP6(_names);
            _idealNops = ReadNopTable(p6 ? "p6_nops" : "k8_nops") ?? BuiltInNops(p6);
            NopSet = $"{(p6 ? "P6" : "K8")} (ideal_nops: arch_init_ideal_nops for {_cpu.Vendor} family 0x{_cpu.Family:x} model 0x{_cpu.ModelNumber:x})";
        }
        else if (AltEra == Tables.AltEra.V6_3On) NopSet = "P6, up to 11 bytes (x86_nops)";
        if (_idealNops != null) Step("jump_label", "jump_label_init", JumpLabelInit);

        Step("static_calls", "static_call_init", StaticCalls);
        Step("ftrace", "ftrace_init", Ftrace);
        if (AltEra == Tables.AltEra.UpToV5_12)
        {
            Step("alternatives", "apply_alternatives", s => Alternatives(s, alt, altTable, altWhy));
            Step("smp_locks", "alternatives_smp_unlock", SmpLocks);
            Step("paravirt", "apply_paravirt", Paravirt);
            return;
        }
        if (Has("X86_FEATURE_CALL_DEPTH"))
            Note("alternatives", 0, "",
                "X86_FEATURE_CALL_DEPTH is set: call-depth tracking (callthunks_patch_builtin_calls) is not emulated; .call_sites are left as built");
        if (PatchTables.Locate(_image, _symbols, PatchTables.CfiSites) is { Length: > 0 })
            Note("alternatives", 0, "", "kCFI/FineIBT hashes are re-randomised at boot (get_random_u32); __apply_fineibt is not emulated");
        Step("paravirt", "apply_paravirt", Paravirt);
        Step("retpolines", "apply_retpolines", Retpolines);
        Step("returns", "apply_returns", Returns);
        Step("alternatives", "apply_alternatives", s => Alternatives(s, alt, altTable, altWhy));
        Step("seal_endbr", "apply_ibt_endbr", SealEndbr);
        Step("smp_locks", "alternatives_smp_unlock", SmpLocks);
        Step("runtime_const", "runtime_const_init", RuntimeConsts);
    }

    // v6.11+: runtime_const_init() writes each constant's value into its sites. A value the init code loads as an
    // immediate (Debian 6.12's USER_PTR_MAX = TASK_SIZE_MAX, stored into its variable and patched in
    // arch_cpu_finalize_init) follows from the image and is written; one computed at boot (the dentry hash table's address
    // and shift depend on memory size) cannot be known here: its placeholders stay, and verify explains the live values.
    void RuntimeConsts(BootStep step)
    {
        var constants = RuntimeConst.Read(_image, _symbols);
        if (constants.Count == 0) { step.Skipped = "no runtime constants in this image (v6.11+)"; return; }
        var values = RuntimeConstValues(constants);
        var unknown = new List<string>();
        Span<byte> bytes = stackalloc byte[8];
        foreach (var constant in constants)
        {
            step.Sites += constant.Sites.Count;
            if (!values.TryGetValue(constant.Name, out ulong value)) { unknown.Add(constant.Name); continue; }
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
            foreach (ulong site in constant.Sites) Poke(step, site, bytes[..constant.Length]);
            Note("runtime_const", 0, "", $"runtime_const_{(constant.Pointer ? "ptr" : "shift")}({constant.Name}) = 0x{value:x} " +
                $"(an immediate of the init code): {constant.Sites.Count} sites");
        }
        if (unknown.Count > 0)
            Note("runtime_const", 0, "", $"{string.Join(", ", unknown.Order(StringComparer.Ordinal))}: computed at boot (memory size, " +
                "allocations), known only at run time; the image's placeholders are kept here, and verify explains the live values");
    }

    // The value of each runtime constant that the init code sets from an immediate: a movabs/mov of a constant into a
    // register, then either stored into the constant's variable or followed (within 8 instructions) by the address of
    // its __start_runtime_* table, where runtime_const_init() begins. Exactly one such immediate per constant, or none.
    Dictionary<string, ulong> RuntimeConstValues(List<RuntimeConst> constants)
    {
        var byVariable = new Dictionary<ulong, string>();
        var byTable = constants.ToDictionary(c => c.Start, c => c.Name);
        foreach (var c in constants) if (Symbol(c.Name) is { } v) byVariable.TryAdd(v, c.Name);
        var candidates = new Dictionary<string, HashSet<ulong>>();
        foreach (var section in _image.Elf.Sections)
        {
            if (!section.IsExecutable || !section.HasFileBytes || !section.Name.StartsWith(".init", StringComparison.Ordinal)) continue;
            ulong start = _image.SectionAddress(section);
            var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(_image.SectionContents(section).ToArray()), start);
            var immediate = new Dictionary<Register, (ulong Value, int At)>();
            int counter = 0;
            while (decoder.IP < start + section.Size)
            {
                decoder.Decode(out var insn);
                counter++;
                if (insn.IsInvalid) { immediate.Clear(); continue; }
                // The table's address first: its own mov $__start_runtime_..., %rax is not the value.
                for (int i = 0; i < insn.OpCount; i++)
                    if (insn.GetOpKind(i) is OpKind.Immediate32to64 or OpKind.Immediate64 && byTable.TryGetValue(insn.GetImmediate(i), out var table)
                        && immediate.Values.Where(v => counter - v.At <= 8 && v.Value > 0xffff_ffff).OrderBy(v => counter - v.At).FirstOrDefault() is
                            { At: > 0 } recent)
                        Add(table, recent.Value);
                if (insn.Mnemonic == Mnemonic.Mov && insn.Op0Kind == OpKind.Register && insn.Op1Kind is OpKind.Immediate64 or OpKind.Immediate32to64)
                    immediate[insn.Op0Register.GetFullRegister()] = (insn.GetImmediate(1), counter);
                else if (insn.Mnemonic == Mnemonic.Mov && insn.IsIPRelativeMemoryOperand && insn.Op0Kind == OpKind.Memory && insn.Op1Kind == OpKind.Register
                    && byVariable.TryGetValue(insn.IPRelativeMemoryAddress, out var name))
                    Add(name, immediate.TryGetValue(insn.Op1Register.GetFullRegister(), out var v) ? v.Value : null);
                else if (insn.FlowControl != FlowControl.Next) immediate.Clear();
            }
        }
        return candidates.Where(c => c.Value.Count == 1 && !c.Value.Contains(ulong.MaxValue)).ToDictionary(c => c.Key, c => c.Value.Single());

        void Add(string name, ulong? value)
        {
            if (!candidates.TryGetValue(name, out var set)) candidates[name] = set = [];
            set.Add(value ?? ulong.MaxValue);
        }
    }

    void Step(string name, string function, Action<BootStep> run)
    {
        var step = new BootStep { Name = name, Function = function };
        Steps.Add(step);
        if (Halted) { step.Skipped = "not reached: the boot stopped at a BUG"; return; }
        run(step);
    }

    // --- memory ------------------------------------------------------------------------------------------------------

    /// <summary>Bytes at an address as the emulated kernel sees them now (patched sections are copied on first write).</summary>
    public int Read(ulong address, Span<byte> destination)
    {
        destination.Clear();
        var section = _image.SectionAt(address);
        if (section == null || !section.HasFileBytes) return 0;
        if (!_sections.TryGetValue(section.Index, out var copy)) return _image.Read(address, destination);
        ulong offset = address - _image.SectionAddress(section);
        int n = (int)Math.Min((ulong)destination.Length, (ulong)copy.Length - offset);
        copy.AsSpan((int)offset, n).CopyTo(destination);
        return n;
    }

    byte[] ReadBytes(ulong address, int length)
    {
        var bytes = new byte[length];
        Read(address, bytes);
        return bytes;
    }

    /// <summary>text_poke_early: records the write when it changes something. False when the address has no file bytes.</summary>
    bool Poke(BootStep step, ulong address, ReadOnlySpan<byte> bytes, string? key = null)
    {
        var section = _image.SectionAt(address);
        if (section == null || !section.HasFileBytes) return false;
        ulong offset = address - _image.SectionAddress(section);
        if (offset + (ulong)bytes.Length > section.Size) return false;
        if (!_sections.TryGetValue(section.Index, out var copy))
            _sections[section.Index] = copy = _image.SectionContents(section).ToArray();
        var old = copy.AsSpan((int)offset, bytes.Length);
        if (old.SequenceEqual(bytes)) return true;
        // One site may be written twice (the replacement, then optimize_nops): count it once.
        if (Patches.Count == 0 || Patches[^1].Address != address || Patches[^1].Step != step.Name) step.Changed++;
        Patches.Add(new BootPatch(step.Name, address, old.ToArray(), bytes.ToArray(), key));
        bytes.CopyTo(old);
        return true;
    }

    /// <summary>The patched ELF (the decompressed payload for a bzImage), for --emit.</summary>
    public byte[] PatchedElf()
    {
        var bytes = _image.ElfImage.ToArray();
        foreach (var (index, copy) in _sections)
        {
            var section = _image.Elf.Sections[index];
            copy.CopyTo(bytes.AsSpan((int)section.Offset));
        }
        return bytes;
    }

    // --- helpers -----------------------------------------------------------------------------------------------------

    bool Has(string feature) => _names.Find(feature) is { } bit && _cpu.Has(bit);
    bool HasEarly(string feature) => _names.Find(feature) is { } bit && _early.Contains(bit);
    ulong? Symbol(string name) => _symbols.TryFind(name, out ulong a, out _) ? a : null;
    string PS(ulong address) => _symbols.Names.FormatPS(address, null);

    DecodedInstruction Decode(ReadOnlySpan<byte> bytes, ulong address) => _decoder.Decode(bytes, address);

    /// <summary>A table's entries, or null with the step marked skipped (absent, or not whole entries).</summary>
    EntryTable? Table(BootStep step, TableDescriptor descriptor, string absent)
    {
        var b = PatchTables.Locate(_image, _symbols, descriptor);
        if (b == null || b.Length == 0) { step.Skipped = absent; return null; }
        var table = EntryTable.Read(_image, b, descriptor, out var problem);
        if (table == null) { step.Skipped = $"table unreadable: {problem}"; return null; }
        return table;
    }

    DecodedInstruction DecodeAt(ulong address)
    {
        Span<byte> buffer = stackalloc byte[16];
        int n = Read(address, buffer);
        return n == 0 ? default : Decode(buffer[..n], address);
    }

    /// <summary>"kernel BUG at FILE:LINE!" of the n-th BUG in a function, from the image's __bug_table.</summary>
    string BugLine(string file, string function, int nth = 0)
    {
        var lines = _bugs.Value?.In(file, function, _symbols.Names).Where(b => !b.IsWarning).Select(b => b.Line).Distinct().Order().ToList() ?? [];
        return lines.Count > nth ? KernelMessages.Bug(file, lines[nth]) : lines.Count > 0 ? KernelMessages.Bug(file, lines[^1])
            : $"kernel BUG in {function}() ({file})";
    }

    string WarnLine(string file, string function)
    {
        var line = _bugs.Value?.In(file, function, _symbols.Names).Where(b => b.IsWarning).Select(b => b.Line).Order().FirstOrDefault() ?? 0;
        return line > 0 ? ConsoleLines.Warning(0, 0, file, line, function) : $"WARNING in {function}() ({file})";
    }

    void Bug(string step, ulong address, string[] lines, string explanation)
    {
        Events.Add(new BootEvent(step, BootEventKind.Bug, address, address == 0 ? "" : PS(address), lines, explanation));
        if (!KeepGoing) Halted = true;
    }

    void Warn(string step, ulong address, string[] lines, string explanation) =>
        Events.Add(new BootEvent(step, BootEventKind.Warning, address, address == 0 ? "" : PS(address), lines, explanation));

    void Note(string step, ulong address, string location, string explanation) =>
        Events.Add(new BootEvent(step, BootEventKind.Note, address, location, [], explanation));

    /// <summary>add_nops: the era's NOP set, longest first (ASM_NOP_MAX 8, or 11 from v6.3).</summary>
    void AddNops(Span<byte> buffer)
    {
        int max = AltEra == Tables.AltEra.V6_3On ? 11 : 8;
        while (buffer.Length > 0)
        {
            int n = Math.Min(buffer.Length, max);
            NopBytes(n).CopyTo(buffer);
            buffer = buffer[n..];
        }
    }

    byte[] NopBytes(int n)
    {
        if (_idealNops != null && n <= 8) return _idealNops[n];
        if (n <= 8) return X86Code.Nop(n).ToArray();
        // v6.3+: BYTES_NOP9 = 2e + NOP8, NOP10 = 66 + NOP9, NOP11 = 66 + NOP10.
        return [.. Enumerable.Repeat((byte)0x66, n - 9), 0x2e, .. X86Code.Nop(8)];
    }

    // k8_nops[] / p6_nops[] (<= v5.12): ASM_NOP_MAX + 2 pointers, entry n to an n-byte NOP, entry 9 to NOP5_ATOMIC.
    byte[][]? ReadNopTable(string symbol)
    {
        if (Symbol(symbol) is not { } table) return null;
        var nops = new byte[10][];
        nops[0] = [];
        for (int n = 1; n <= 9; n++)
        {
            int length = n == 9 ? 5 : n;
            if (!_image.TryReadU64(table + 8UL * (ulong)n, out ulong at) || at == 0) return null;
            nops[n] = new byte[length];
            if (_image.Read(at, nops[n]) != length || !_decoder.Decode(nops[n], at).IsValid) return null;
        }
        return nops;
    }

    // The same tables as v5.10's arch/x86/include/asm/nops.h writes them, for an image whose tables cannot be read.
    static byte[][] BuiltInNops(bool p6)
    {
        static byte[] K(int m) => m == 1 ? [0x90] : [.. Enumerable.Repeat((byte)0x66, m - 1), 0x90];
        var nops = new byte[10][];
        nops[0] = [];
        for (int n = 1; n <= 8; n++)
            nops[n] = p6 ? X86Code.Nop(n).ToArray()
                : n switch { <= 4 => K(n), 5 => [.. K(3), .. K(2)], 6 => [.. K(3), .. K(3)], 7 => [.. K(4), .. K(3)], _ => [.. K(4), .. K(4)] };
        nops[9] = p6 ? X86Code.Nop(5).ToArray() : [0x66, .. K(4)]; // K8_NOP5_ATOMIC is 0x66 + K8_NOP4
        return nops;
    }

    // --- jump_label_init (<= v5.12: kernel/jump_label.c, arch/x86/kernel/jump_label.c) -------------------------------

    /// <summary>
    /// setup_arch() → jump_label_init(): every entry whose key's initial state makes it a NOP goes through
    /// arch_jump_label_transform_static(). When the ideal NOP5 is not the NOP the compiler wrote (STATIC_KEY_INIT_NOP, P6's
    /// 0f 1f 44 00 00) — K8 NOPs, qemu64 included — each such site must still hold that NOP: __jump_label_set_jump_code()
    /// compares it (init) and BUGs otherwise, long before the console is up, then it writes the ideal NOP.
    /// </summary>
    void JumpLabelInit(BootStep step)
    {
        var report = JumpReport = Checks.JumpLabelCheck.Run(_image, _symbols);
        if (report.Era == null || report.Bounds == null) { step.Skipped = report.Absent ?? "no __jump_table"; return; }
        if (report.Era.VariableLength) { step.Skipped = "2/5-byte jump-label era: jump_label_init patches nothing"; return; }
        var defaultNop = X86Code.Nop(5).ToArray();
        if (Nop5Atomic.AsSpan().SequenceEqual(defaultNop))
        {
            step.Skipped = "the ideal NOP5 is the compiler's NOP (JL_STATE_NO_UPDATE): jump_label_init leaves every site as built";
            return;
        }
        var sites = report.Sites.Select(site => (site.Entry, Key: report.Keys[site.KeyIndex])).ToList();
        // jump_label_sort_entries: by key address, then by code address.
        sites.Sort((a, b) => a.Key.Address != b.Key.Address ? a.Key.Address.CompareTo(b.Key.Address) : a.Entry.Code.CompareTo(b.Entry.Code));
        Span<byte> bytes = stackalloc byte[5];
        int line = report.Era.InitLine ?? 0;
        foreach (var (entry, key) in sites)
        {
            if (Halted) return;
            bool jump = (key.InitialValue ?? false) ^ entry.Branch; // jump_label_type()
            if (jump) continue;
            step.Sites++;
            Read(entry.Code, bytes);
            if (!bytes.SequenceEqual(defaultNop))
            {
                Bug(step.Name, entry.Code,
                    [KernelMessages.UnexpectedOpOld(PS(entry.Code), entry.Code, bytes.ToArray(), line),
                        KernelMessages.Bug(X86JumpLabel.File, report.Era.BugLine ?? 0)],
                    $"jump_label_init() (setup_arch, before the console exists) rewrites every site of a disabled branch to the ideal NOP, " +
                    $"and first checks that it holds the compiler's NOP (0f 1f 44 00 00); this site of {key.Name} holds {X86Code.Hex(bytes)}. " +
                    "The machine stops silently: the report is only in the log buffer (log_buf). On a CPU whose ideal NOP is the compiler's " +
                    "(P6 NOPs: most Intel CPUs, AMD after family 0xf) the check is skipped and the same site BUGs later, when the key changes.");
                continue;
            }
            Poke(step, entry.Code, Nop5Atomic);
        }
    }

    static void Rel32(Span<byte> buffer, byte opcode, ulong at, ulong destination)
    {
        buffer[0] = opcode;
        BinaryPrimitives.WriteInt32LittleEndian(buffer[1..], unchecked((int)((long)destination - (long)(at + 5))));
    }

    // --- static_call_init (kernel/static_call_inline.c, arch/x86/kernel/static_call.c) -------------------------------

    static readonly byte[] Xor5Rax = [0x2e, 0x2e, 0x2e, 0x31, 0xc0];
    static readonly byte[] RetInsn = [0xc3, 0xcc, 0xcc, 0xcc, 0xcc];

    void StaticCalls(BootStep step)
    {
        if (Table(step, PatchTables.StaticCalls, "no .static_call_sites in this image") is not { } table) return;
        // __static_call_init sorts by key address (static_call_sort_entries), then transforms every site.
        var sites = new List<(ulong Site, ulong Key, bool Tail)>(table.Count);
        for (int i = 0; i < table.Count; i++)
        {
            var entry = StaticCallSite.Read(table, i);
            sites.Add((entry.Site, entry.Key, entry.Tail));
        }
        sites.Sort((x, y) => x.Key != y.Key ? x.Key.CompareTo(y.Key) : x.Site.CompareTo(y.Site));
        ulong? return0 = Symbol("__static_call_return0"), staticCallReturn = Symbol("__static_call_return"), returnThunk = Symbol("__x86_return_thunk");
        string bug = BugLine("arch/x86/kernel/static_call.c", "__static_call_validate");
        Span<byte> site = stackalloc byte[6];
        Span<byte> code = stackalloc byte[6];
        foreach (var (address, key, tail) in sites)
        {
            if (Halted) return;
            step.Sites++;
            Read(address, site);
            _image.TryReadU64(key, out ulong func);
            byte op = site[0];
            bool jcc = op == 0x0f && (site[1] & 0xf0) == 0x80;
            bool valid = tail ? op is 0xe9 or 0xc3 || jcc : op == 0xe8 || site[..5].SequenceEqual(X86Code.Nop(5)) || site[..5].SequenceEqual(Xor5Rax);
            if (!valid)
            {
                Bug(step.Name, address, [$"unexpected static_call insn opcode 0x{op:x} at {PS(address)}", bug],
                    $"static_call_init() validates every site before patching it; a {(tail ? "tail-call" : "call")} site must hold " +
                        $"{(tail ? "JMP32, RET or Jcc.d32" : "CALL, the 5-byte NOP or the cs-prefixed xor %eax,%eax")}, and this one holds " +
                        $"{X86Code.Hex(site[..5])}. The kernel BUGs in setup_arch(), before the console is even up on most machines.");
                continue;
            }
            int size = 5;
            if (!tail)
            {
                if (func == 0) Nop5Atomic.CopyTo(code);
                else if (func == return0) Xor5Rax.CopyTo(code);
                else Rel32(code, 0xe8, address, func);
            }
            else if (jcc)
            {
                ulong destination = func != 0 ? func : HasEarly("X86_FEATURE_RETHUNK") && returnThunk is { } t ? t : staticCallReturn ?? 0;
                code[0] = 0x0f;
                code[1] = site[1];
                BinaryPrimitives.WriteInt32LittleEndian(code[2..], unchecked((int)((long)destination - (long)(address + 6))));
                size = 6;
            }
            else if (func != 0) Rel32(code, 0xe9, address, func);
            else if (HasEarly("X86_FEATURE_RETHUNK") && returnThunk is { } thunk) Rel32(code, 0xe9, address, thunk);
            else RetInsn.CopyTo(code);
            Poke(step, address, code[..size], _symbols.Names.Lookup(key) is { Offset: 0 } k ? k.Symbol.Name : null);
        }
    }

    // --- ftrace_init (kernel/trace/ftrace.c, arch/x86/kernel/ftrace.c) ------------------------------------------------

    void Ftrace(BootStep step)
    {
        if (Table(step, PatchTables.Mcount, "no __mcount_loc in this image") is not { } table) return;
        var sites = new List<ulong>(table.Count);
        for (int i = 0; i < table.Count; i++)
            if (McountSites.Site(table, i) is var a and not 0) sites.Add(a);
        sites.Sort(); // ftrace_process_locs sorts (or, with BUILDTIME_MCOUNT_SORT, finds it sorted)
        ulong? fentry = Symbol("__fentry__");
        Span<byte> site = stackalloc byte[5];
        Span<byte> call = stackalloc byte[5];
        // CC_USING_NOP_MCOUNT builds (objtool --mnop) hold NOPs and ftrace_init leaves them; otherwise every site must be the call.
        bool anyCall = false, anyNop = false;
        foreach (var a in sites)
        {
            Read(a, site);
            anyCall |= site[0] == 0xe8;
            anyNop |= site.SequenceEqual(X86Code.Nop(5));
        }
        if (!anyCall && anyNop)
        {
            step.Sites = sites.Count;
            step.Skipped = "every site is already the 5-byte NOP: built with CC_USING_NOP_MCOUNT, so ftrace_init leaves the sites alone";
            return;
        }
        if (fentry == null) { step.Skipped = "no __fentry__ symbol to compare the calls with"; return; }
        foreach (var a in sites)
        {
            step.Sites++;
            Read(a, site);
            Rel32(call, 0xe8, a, fentry.Value);
            if (!site.SequenceEqual(call))
            {
                // ftrace_make_nop -> ftrace_modify_code_direct -> -EINVAL -> ftrace_bug(); ftrace is disabled, boot goes on.
                Warn(step.Name, a, ["------------[ ftrace bug ]------------", "ftrace failed to modify ", $"[<{a:x16}>] {PS(a)}",
                        $" actual:   {string.Join(":", site.ToArray().Select(x => x.ToString("x2")))}"],
                    $"ftrace_init() turns every `call __fentry__` into the 5-byte NOP and first checks the call is there; this site holds " +
                        $"{X86Code.Hex(site)}. ftrace_bug() disables ftrace for the rest of the boot, and the remaining sites are left as they are.");
                return;
            }
            Poke(step, a, Nop5Atomic);
        }
    }

    // --- apply_paravirt (arch/x86/kernel/alternative.c, paravirt.c) ---------------------------------------------------

    void Paravirt(BootStep step)
    {
        if (Table(step, PatchTables.Paravirt, "no .parainstructions in this image (v6.8+ patches pv calls as alternatives)") is not { } table) return;
        if (Symbol("pv_ops") is not { } pvOps)
        {
            step.Skipped = "no pv_ops symbol: the call targets cannot be read (<=v5.x pv_*_ops tables are not emulated)";
            return;
        }
        ulong? paravirtBug = Symbol("paravirt_BUG"), paravirtNop = Symbol("_paravirt_nop");
        // <= v5.10: pv_ops.init.patch (slot 0) is native_patch(), which writes the native instructions of the operations in
        // NativePatches before falling back to paravirt_patch_default().
        bool nativePatch = _image.TryReadU64(pvOps, out ulong patcher) && _symbols.Names.Lookup(patcher) is { Offset: 0, Symbol.Name: "native_patch" };
        if (nativePatch) Note(step.Name, 0, "", "pv_ops.init.patch is native_patch (<= v5.10): native operations are written inline");
        var buffer = new byte[MaxPatchLen + 1];
        for (int at = 0; at < table.Count && !Halted; at++)
        {
            var (site, type, len, _) = ParavirtSite.Read(table, at);
            step.Sites++;
            if (len > MaxPatchLen)
            {
                Bug(step.Name, site, [BugLine(AltFile, "apply_paravirt", 0)], $"entry {at}: len {len} > MAX_PATCH_LEN: BUG_ON(p->len > MAX_PATCH_LEN).");
                continue;
            }
            _image.TryReadU64(pvOps + 8UL * (ulong)type, out ulong opfunc);
            int used;
            string? operation = nativePatch && opfunc != 0 && _symbols.Names.Lookup(opfunc) is { Offset: 0 } f ? f.Symbol.Name : null;
            if (opfunc != 0 && opfunc == paravirtNop) used = 0;
            else if (operation != null && NativePatches.TryGetValue(operation, out var native))
            {
                if (native.Length > len)
                {
                    Bug(step.Name, site, [BugLine("arch/x86/kernel/paravirt.c", "paravirt_patch_insns", 0)],
                        $"entry {at}: the native code of {operation} is {native.Length} bytes, the site {len}: BUG_ON(insn_len > len).");
                    continue;
                }
                native.CopyTo(buffer, 0);
                used = native.Length;
            }
            else
            {
                ulong target = opfunc != 0 ? opfunc : paravirtBug ?? 0;
                // <= v5.10: paravirt_patch_default() jumps to the iret and usergs_sysret64 operations instead of calling them.
                Rel32(buffer, operation is "native_iret" or "native_usergs_sysret64" ? X86Code.Jmp32Opcode : X86Code.CallOpcode, site, target);
                used = 5;
            }
            if (used > len)
            {
                Bug(step.Name, site, [BugLine(AltFile, "apply_paravirt", 1)],
                    $"entry {at}: the site is {len} bytes but the patched call to {PS(opfunc)} needs 5: BUG_ON(used > p->len).");
                continue;
            }
            AddNops(buffer.AsSpan(used, len - used));
            Poke(step, site, buffer.AsSpan(0, len));
        }
    }

    /// <summary>
    /// v5.10's arch/x86/kernel/paravirt_patch.c: the native code native_patch() writes for an operation, keyed by the
    /// function the operation's pv_ops slot holds (which is how native_patch's type cases line up with the slots on bare
    /// metal and under KVM/TCG), plus _paravirt_ident_64 from paravirt_patch_default().
    /// </summary>
    static readonly Dictionary<string, byte[]> NativePatches = new()
    {
        ["native_irq_disable"] = [0xfa],                                   // cli
        ["native_irq_enable"] = [0xfb],                                    // sti
        ["native_restore_fl"] = [0x57, 0x9d],                              // push %rdi; popfq
        ["native_save_fl"] = [0x9c, 0x58],                                 // pushf; pop %rax
        ["native_read_cr2"] = [0x0f, 0x20, 0xd0],                          // mov %cr2, %rax
        ["__native_read_cr3"] = [0x0f, 0x20, 0xd8],                        // mov %cr3, %rax
        ["native_read_cr3_noinline"] = [0x0f, 0x20, 0xd8],
        ["native_write_cr3"] = [0x0f, 0x22, 0xdf],                         // mov %rdi, %cr3
        ["native_wbinvd"] = [0x0f, 0x09],                                  // wbinvd
        ["native_usergs_sysret64"] = [0x0f, 0x01, 0xf8, 0x48, 0x0f, 0x07], // swapgs; sysretq
        ["native_swapgs"] = [0x0f, 0x01, 0xf8],                            // swapgs
        ["__raw_callee_save___native_queued_spin_unlock"] = [0xc6, 0x07, 0x00], // movb $0, (%rdi)
        ["__raw_callee_save___native_vcpu_is_preempted"] = [0x31, 0xc0],         // xor %eax, %eax
        ["_paravirt_ident_64"] = [0x48, 0x89, 0xf8],                       // mov %rdi, %rax
    };

    // --- apply_retpolines (v5.15+) -------------------------------------------------------------------------------------

    void Retpolines(BootStep step)
    {
        if (Table(step, PatchTables.RetpolineSites, "no .retpoline_sites in this image") is not { } table) return;
        ulong? array = Symbol("__x86_indirect_thunk_array") ?? Symbol("__x86_indirect_thunk_rax");
        if (array == null) { step.Skipped = "no __x86_indirect_thunk_array symbol"; return; }
        bool keep = Has("X86_FEATURE_RETPOLINE") && !Has("X86_FEATURE_RETPOLINE_LFENCE");
        bool its = Has("X86_FEATURE_INDIRECT_THUNK_ITS");
        ulong? itsArray = Symbol("__x86_indirect_its_thunk_array");
        if (its) Note(step.Name, 0, "",
            "X86_FEATURE_INDIRECT_THUNK_ITS: branches in the lower half of a cache line go to ITS thunks the kernel allocates at boot; textpoke points them " +
            "at the static __x86_indirect_its_thunk_array");
        string firstWarn = WarnLine(AltFile, "apply_retpolines");
        int warned = 0;
        string[] WarnOnce() => warned++ == 0 ? [firstWarn] : []; // WARN_ON_ONCE: the kernel prints the first
        Span<byte> site = stackalloc byte[16];
        Span<byte> code = stackalloc byte[16];
        for (int entry = 0; entry < table.Count && !Halted; entry++)
        {
            ulong address = Rel32Sites.Site(table, entry);
            step.Sites++;
            int n = Read(address, site);
            var insn = n == 0 ? default : Decode(site[..n], address);
            if (!insn.IsValid)
            {
                Warn(step.Name, address, WarnOnce(),
                    $"the retpoline site at {PS(address)} does not decode ({X86Code.Hex(site[..Math.Min(n, 6)])}): WARN_ON_ONCE(ret < 0), site skipped.");
                continue;
            }
            int len = insn.Length;
            int opAt = len == 6 && site[0] == 0x2e ? 1 : 0;
            byte op1 = site[opAt], op2 = site[opAt + 1];
            bool isJcc = op1 == 0x0f && op2 is >= 0x80 and <= 0x8f;
            if (op1 is not (0xe8 or 0xe9) && !isJcc)
            {
                Warn(step.Name, address, WarnOnce(),
                    $"the retpoline site at {PS(address)} is not a CALL, JMP or Jcc ({X86Code.Hex(site[..len])}): WARN_ON_ONCE(1), site skipped.");
                continue;
            }
            ulong target = insn.BranchTarget;
            long diff = (long)target - (long)array.Value;
            long reg = diff / 32; // (retpoline_thunk_t *) arithmetic: 32-byte thunks
            if ((reg & ~0xfL) != 0)
            {
                Warn(step.Name, address, WarnOnce(),
                    $"the retpoline site at {PS(address)} branches to {PS(target)}, not to an __x86_indirect_thunk_* " +
                    "(WARN_ON_ONCE(reg & ~0xf)), site skipped.");
                continue;
            }
            if (reg == 4)
            {
                Bug(step.Name, address, [BugLine(AltFile, "patch_retpoline")],
                    $"the retpoline site at {PS(address)} is an indirect branch through %rsp: BUG_ON(reg == 4).");
                continue;
            }
            if (keep) continue; // X86_FEATURE_RETPOLINE without LFENCE: the thunk calls stay.
            int i = 0;
            byte op = op1;
            if (isJcc)
            {
                code[i++] = (byte)(0x70 + ((op2 & 0xf) ^ 1));
                code[i++] = (byte)(len - 2);
                op = 0xe9;
            }
            if (Has("X86_FEATURE_RETPOLINE_LFENCE")) { code[i++] = 0x0f; code[i++] = 0xae; code[i++] = 0xe8; }
            int r = (int)reg;
            if (its && itsArray is { } itsBase && ((address + (ulong)i + 1 + (ulong)(r / 8)) & 0x20) == 0)
            {
                // emit_its_trampoline: CALL/JMP to the ITS thunk (static copy).
                if (isJcc) { i = 0; code[i++] = 0x0f; code[i++] = op2; BinaryPrimitives.WriteInt32LittleEndian(code[i..], unchecked((int)((long)(itsBase
                    + 32UL * (ulong)r) - (long)(address + 6)))); i += 4; }
                else { if (len == 6) code[i++] = 0x2e; Rel32(code[i..], op, address + (ulong)i, itsBase + 32UL * (ulong)r); i += 5; }
            }
            else
            {
                if (r >= 8) { code[i++] = 0x41; r -= 8; }
                code[i++] = 0xff;
                code[i++] = (byte)((op == 0xe8 ? 0x10 : 0x20) | 0xc0 | r);
                if (op == 0xe9 && i < len) code[i++] = 0xcc;
            }
            while (i < len) code[i++] = 0x90;
            if (i != len) continue;
            OptimizeNops(code[..len]);
            Poke(step, address, code[..len]);
        }
    }

    // --- apply_returns (v5.19+, backported) ----------------------------------------------------------------------------

    /// <summary>x86_return_thunk as the running kernel chose it (verify reads it from live memory); null: decided from the features.</summary>
    public ulong? ReturnThunkOverride { get; init; }

    // x86_return_thunk: set by the retbleed, SRSO and ITS mitigations. ITS's aligned thunks (its_apply_mitigation) select
    // its_return_thunk on a CPU with X86_BUG_ITS, but force X86_FEATURE_INDIRECT_THUNK_ITS only without retpolines.
    ulong? ReturnThunk()
    {
        if (ReturnThunkOverride is { } chosen) return chosen;
        string name = Has("X86_FEATURE_SRSO_ALIAS") ? "srso_alias_return_thunk" : Has("X86_FEATURE_SRSO") ? "srso_return_thunk"
            : Has("X86_FEATURE_UNRET") ? "retbleed_return_thunk"
            : Has("X86_FEATURE_INDIRECT_THUNK_ITS") || Has("X86_BUG_ITS") && Has("X86_FEATURE_RETHUNK") ? "its_return_thunk" : "__x86_return_thunk";
        return Symbol(name) ?? (name == "retbleed_return_thunk" ? Symbol("zen_untrain_ret") : null) ?? Symbol("__x86_return_thunk");
    }

    bool WantsRethunkAt(ulong address, ulong? thunk) =>
        Has("X86_FEATURE_RETHUNK") && (thunk != Symbol("its_return_thunk") || (address & 0x20) == 0);

    void Returns(BootStep step)
    {
        if (Table(step, PatchTables.ReturnSites, "no .return_sites in this image") is not { } table) return;
        ulong? returnThunk = Symbol("__x86_return_thunk");
        if (returnThunk == null) { step.Skipped = "no __x86_return_thunk symbol"; return; }
        ulong? selected = ReturnThunk();
        string warn = WarnLine(AltFile, "apply_returns");
        Span<byte> site = stackalloc byte[16];
        Span<byte> code = stackalloc byte[16];
        ReadOnlySpan<byte> trampolineSignature = [0x0f, 0xb9, 0xcc];
        bool warnedReturn = false;
        for (int entry = 0; entry < table.Count; entry++)
        {
            ulong address = Rel32Sites.Site(table, entry);
            step.Sites++;
            int n = Read(address, site);
            var insn = n == 0 ? default : Decode(site[..n], address);
            if (!insn.IsValid)
            {
                Warn(step.Name, address, [warn], $"the return site at {PS(address)} does not decode: WARN_ON_ONCE(ret < 0), site skipped.");
                continue;
            }
            int prefixes = 0;
            while (prefixes < insn.Length - 1 && site[prefixes] is 0x2e or 0x3e) prefixes++;
            byte op = site[prefixes]; // insn.opcode.bytes[0]: Clang's `cs jmp __x86_return_thunk` is a JMP32 too
            ulong dest = op == 0xe9 ? insn.BranchTarget : 0;
            // __static_call_fixup: a static-call trampoline (signature 0f b9 cc at +5) is made a RET (or the return thunk).
            if (n >= 8 && site.Slice(5, 3).SequenceEqual(trampolineSignature))
            {
                if (op == 0xc3 || dest == returnThunk)
                {
                    if (WantsRethunkAt(address, selected)) Rel32(code, 0xe9, address, selected!.Value); else RetInsn.CopyTo(code);
                    Poke(step, address, code[..5]);
                }
                continue;
            }
            if (dest != returnThunk)
            {
                // WARN_ONCE: the kernel prints the first; every site is reported here.
                Warn(step.Name, address, warnedReturn ? [] : [warn,
                    $"missing return thunk: {PS(address)}-{(dest == 0 ? "0x0" : PS(dest))}: {X86Code.Hex(site[..5])}"],
                    $"objtool listed {PS(address)} as a return site, but it is " +
                        $"{(op == 0xe9 ? $"a jump to {PS(dest)}" : $"not a JMP32 ({X86Code.Hex(site[..Math.Min(insn.Length, 5)])})")}, not `jmp " +
                        $"__x86_return_thunk`; apply_returns() WARNs once and leaves it, so this return is not mitigated.");
                warnedReturn = true;
                continue;
            }
            int len = insn.Length, i;
            if (WantsRethunkAt(address, selected)) { Rel32(code, 0xe9, address, selected!.Value); i = 5; }
            else { code[0] = 0xc3; i = 1; }
            while (i < len) code[i++] = 0xcc;
            Poke(step, address, code[..len]);
        }
    }

    // --- apply_alternatives --------------------------------------------------------------------------------------------

    void Alternatives(BootStep step, TableBounds? b, AltTable? table, string? why)
    {
        if (b == null || b.Length == 0) { step.Skipped = "no .altinstructions in this image"; return; }
        if (table == null) { step.Skipped = $"layout could not be decided: {why}"; return; }
        var layout = table.Layout;
        int count = table.Count;
        var entries = new AltEntry[count];
        for (int i = 0; i < count; i++) entries[i] = table[i];
        if (AltEra == Tables.AltEra.V6_3On)
        {
            // Nested ALTERNATIVE_2 (v6.11+): consecutive entries for one site all get the longest instrlen.
            for (int i = 0; i < count;)
            {
                int j = i, max = 0;
                while (j < count && entries[j].Instr == entries[i].Instr) max = Math.Max(max, entries[j++].InstrLen);
                for (int k = i; k < j; k++) entries[k] = entries[k] with { InstrLen = max };
                i = j;
            }
        }
        var buffer = new byte[MaxPatchLen + 16];
        var repl = new byte[MaxPatchLen + 16];
        for (int i = 0; i < count && !Halted; i++)
        {
            var a = entries[i];
            step.Sites++;
            if (a.InstrLen > MaxPatchLen)
            {
                Bug(step.Name, a.Instr, [BugLine(AltFile, "apply_alternatives", 0)],
                    $"entry {i}: instrlen {a.InstrLen} exceeds the {MaxPatchLen}-byte buffer: BUG_ON(a->instrlen > sizeof(insn_buff)).");
                continue;
            }
            if (a.Feature >= _names.Limit)
            {
                Bug(step.Name, a.Instr, [BugLine(AltFile, "apply_alternatives", 1)],
                    $"entry {i}: feature {a.Feature >> 5}*32+{a.Feature & 31} is beyond (NCAPINTS + NBUGINTS) * 32 = {_names.Limit}: BUG_ON(feature >= ...).");
                continue;
            }
            bool present = _cpu.Has(a.Feature);
            bool patch = present != a.Not;
            var instrBytes = buffer.AsSpan(0, a.InstrLen);
            Read(a.Instr, instrBytes);
            Read(a.Repl, repl.AsSpan(0, a.ReplLen));
            if (!patch)
            {
                if (AltEra == Tables.AltEra.UpToV5_12)
                {
                    if (a.PadLen > a.InstrLen)
                    {
                        Bug(step.Name, a.Instr, [],
                            $"entry {i}: padlen {a.PadLen} exceeds instrlen {a.InstrLen}: optimize_nops() writes NOPs before the site, over other code.");
                        continue;
                    }
                    // optimize_nops(a, instr): only when the first padlen bytes at instr are 0x90.
                    if (a.PadLen > 1 && instrBytes[..a.PadLen].IndexOfAnyExcept((byte)0x90) < 0)
                    {
                        AddNops(instrBytes[(a.InstrLen - a.PadLen)..]);
                        Poke(step, a.Instr, instrBytes);
                    }
                }
                else
                {
                    OptimizeNops(instrBytes);
                    Poke(step, a.Instr, instrBytes);
                }
                continue;
            }
            var insn = buffer.AsSpan(0, Math.Max(a.InstrLen, a.ReplLen));
            repl.AsSpan(0, a.ReplLen).CopyTo(insn);
            int size = a.ReplLen;
            if (AltEra == Tables.AltEra.V6_3On)
            {
                if (a.DirectCall && !DirectCall(step, a, insn, ref size)) continue;
                for (; size < a.InstrLen; size++) insn[size] = 0x90;
                ApplyRelocation(insn[..a.InstrLen], a.Instr, a.Repl, a.ReplLen);
                OptimizeNops(insn[..size]);
                Poke(step, a.Instr, insn[..size]);
                continue;
            }
            if (a.ReplLen == 5 && insn[0] == 0xe8)
                BinaryPrimitives.WriteInt32LittleEndian(insn[1..], unchecked(BinaryPrimitives.ReadInt32LittleEndian(insn[1..])
                    + (int)(long)(a.Repl - a.Instr)));
            if (a.ReplLen > 0 && repl[0] is 0xeb or 0xe9) RecomputeJump(a, insn);
            if (AltEra == Tables.AltEra.UpToV5_12)
            {
                if (a.InstrLen > a.ReplLen) { AddNops(insn[a.ReplLen..a.InstrLen]); size = a.InstrLen; }
                Poke(step, a.Instr, insn[..size]);
                continue;
            }
            for (; size < a.InstrLen; size++) insn[size] = 0x90;
            Poke(step, a.Instr, insn[..size]);
            Span<byte> after = buffer.AsSpan(0, a.InstrLen);
            Read(a.Instr, after);
            OptimizeNops(after);
            Poke(step, a.Instr, after);
        }
    }

    // recompute_jump (<=v6.2): a 5-byte JMP replacement is re-aimed from the original site, as JMP8 + 3-byte NOP if it fits.
    void RecomputeJump(AltEntry a, Span<byte> insn)
    {
        if (a.ReplLen != 5) return;
        int oDispl = BinaryPrimitives.ReadInt32LittleEndian(insn[1..]);
        long target = (long)a.Repl + a.ReplLen + oDispl;
        long nDispl = target - (long)a.Instr;
        bool two = nDispl >= 0 ? nDispl - 2 <= 127 : ((nDispl - 2) & 0xff) == nDispl - 2;
        if (two)
        {
            insn[0] = 0xeb;
            insn[1] = unchecked((byte)(sbyte)(nDispl - 2));
            AddNops(insn.Slice(2, 3));
        }
        else
        {
            insn[0] = 0xe9;
            BinaryPrimitives.WriteInt32LittleEndian(insn[1..], unchecked((int)(nDispl - 5)));
        }
    }

    // alt_replace_call (v6.8+): `call *disp(%rip)` becomes a direct call to the pv_ops slot's function.
    bool DirectCall(BootStep step, AltEntry a, Span<byte> insn, ref int size)
    {
        Span<byte> site = stackalloc byte[6];
        Read(a.Instr, site);
        if (a.InstrLen != 6 || site[0] != 0xff || site[1] != 0x15)
        {
            Bug(step.Name, a.Instr, ["ALT_FLAG_DIRECT_CALL set for a non-indirect call", BugLine(AltFile, "alt_replace_call", 0)],
                $"the site at {PS(a.Instr)} is {X86Code.Hex(site)}, not the 6-byte `call *disp(%rip)` a pv call alternative must be.");
            return false;
        }
        if (a.ReplLen != 5 || insn[0] != 0xe8)
        {
            Bug(step.Name, a.Instr, ["ALT_FLAG_DIRECT_CALL set for unrecognized replacement", BugLine(AltFile, "alt_replace_call", 1)],
                $"the replacement for {PS(a.Instr)} is not a 5-byte CALL.");
            return false;
        }
        ulong slot = a.Instr + 6 + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(site[2..]);
        _image.TryReadU64(slot, out ulong target);
        ulong bug = Symbol("BUG_func") ?? 0;
        if (target == 0) target = bug;
        // "(BUG_func - .) + (target - BUG_func) := target - .": the replacement's call is re-aimed; apply_relocation rebases it.
        BinaryPrimitives.WriteInt32LittleEndian(insn[1..], unchecked(BinaryPrimitives.ReadInt32LittleEndian(insn[1..]) + (int)(long)(target - bug)));
        size = target == Symbol("nop_func") ? 0 : 5;
        return true;
    }

    // apply_relocation (v6.3+): branches and RIP-relative operands that leave the replacement are re-based onto the site.
    void ApplyRelocation(Span<byte> buffer, ulong instr, ulong repl, int replLen)
    {
        long delta = (long)repl - (long)instr;
        bool Outside(ulong target) => target < repl || target >= repl + (ulong)replLen;
        for (int at = 0; at < buffer.Length;)
        {
            var insn = Decode(buffer[at..], repl + (ulong)at);
            if (!insn.IsValid) return;
            var raw = insn.Raw;
            var decoder = Decoder.Create(64, new ByteArrayCodeReader(buffer[at..].ToArray()));
            decoder.IP = repl + (ulong)at;
            var offsets = decoder.GetConstantOffsets(decoder.Decode());
            if (raw.IsIPRelativeMemoryOperand && offsets.HasDisplacement && Outside(raw.IPRelativeMemoryAddress))
            {
                var d = buffer.Slice(at + offsets.DisplacementOffset, 4);
                BinaryPrimitives.WriteInt32LittleEndian(d, unchecked((int)(BinaryPrimitives.ReadInt32LittleEndian(d) + delta)));
            }
            else if (BranchDisplacementSize(buffer[at..(at + insn.Length)]) is var dispSize and > 0 && Outside(insn.BranchTarget))
            {
                long newDisp = (long)insn.BranchTarget - (long)(instr + (ulong)at + (ulong)insn.Length);
                if (dispSize == 4) BinaryPrimitives.WriteInt32LittleEndian(buffer.Slice(at + insn.Length - 4), unchecked((int)newDisp));
                else if (newDisp is >= sbyte.MinValue and <= sbyte.MaxValue) buffer[at + insn.Length - 1] = unchecked((byte)(sbyte)newDisp);
                else Note("alternatives", instr, PS(instr),
                    $"a rel8 branch in the replacement for {PS(instr)} no longer reaches its target from the site (the kernel BUGs in apply_relocation)");
                if (buffer[at] == 0xe9 && insn.Length == 5 && newDisp + 3 is >= sbyte.MinValue and <= sbyte.MaxValue)
                {
                    buffer[at] = 0xeb;
                    buffer[at + 1] = unchecked((byte)(sbyte)(newDisp + 3));
                    buffer.Slice(at + 2, 3).Fill(0xcc);
                }
            }
            at += insn.Length;
        }
    }

    // The size of a relative branch's displacement: 4 for CALL/JMP32/Jcc.d32, 1 for JMP8/Jcc.d8, 0 for anything else.
    static int BranchDisplacementSize(ReadOnlySpan<byte> insn)
    {
        int p = 0;
        while (p < insn.Length && insn[p] is 0x2e or 0x3e or 0x66 or 0xf2 or 0xf3) p++;
        if (p >= insn.Length) return 0;
        return insn[p] switch
        {
            0xe8 or 0xe9 => 4,
            0x0f when p + 1 < insn.Length && insn[p + 1] is >= 0x80 and <= 0x8f => 4,
            0xeb or (>= 0x70 and <= 0x7f) => 1,
            _ => 0,
        };
    }

    /// <summary>
    /// optimize_nops: runs of single-byte 0x90 (v5.13..v6.2), or any run of NOP instructions (v6.3+), become the
    /// era's long NOPs; v6.3+ turns runs longer than 11 bytes into a JMP over int3s (add_nop).
    /// </summary>
    void OptimizeNops(Span<byte> buffer)
    {
        for (int i = 0; i < buffer.Length;)
        {
            var insn = Decode(buffer[i..], 0);
            if (!insn.IsValid) return;
            int next = i + insn.Length;
            bool v63 = AltEra == Tables.AltEra.V6_3On;
            if (v63 ? insn.IsNop : insn.Length == 1 && buffer[i] == 0x90)
            {
                if (v63 && next == buffer.Length) return; // "Has the NOP already been optimized?"
                int end = next;
                while (end < buffer.Length && buffer[end] == 0x90) end++;
                int run = end - i;
                if (run > 1 || v63)
                {
                    if (v63 && run > 11)
                    {
                        buffer[i] = 0xeb;
                        buffer[i + 1] = (byte)(run - 2);
                        buffer.Slice(i + 2, run - 2).Fill(0xcc);
                    }
                    else AddNops(buffer.Slice(i, run));
                }
                next = end;
            }
            i = next;
        }
    }

    // --- apply_ibt_endbr (v5.18+) --------------------------------------------------------------------------------------

    void SealEndbr(BootStep step)
    {
        if (Table(step, PatchTables.EndbrSeal, "no .ibt_endbr_seal in this image (built without X86_KERNEL_IBT)") is not { } table) return;
        string warn = WarnLine(AltFile, "apply_ibt_endbr");
        bool warned = false;
        ReadOnlySpan<byte> poison = [0x66, 0x0f, 0x1f, 0x00];
        Span<byte> site = stackalloc byte[4];
        for (int i = 0; i < table.Count; i++)
        {
            ulong address = Rel32Sites.Site(table, i);
            step.Sites++;
            int n = Read(address, site);
            bool endbr = n == 4 && site[0] == 0xf3 && site[1] == 0x0f && site[2] == 0x1e && site[3] is 0xfa or 0xfb;
            if (!endbr)
            {
                Warn(step.Name, address, warned ? [] : [warn],
                    $"the seal site at {PS(address)} holds {X86Code.Hex(site[..n])}, not ENDBR64: WARN_ON_ONCE(!is_endbr(endbr)), site " +
                        $"skipped{(warned ? " (the kernel prints the warning only for the first)" : "")}.");
                warned = true;
                continue;
            }
            Poke(step, address, poison);
        }
    }

    // --- alternatives_smp_unlock (UP boot only) ------------------------------------------------------------------------

    void SmpLocks(BootStep step)
    {
        if (Table(step, PatchTables.SmpLocks, "no .smp_locks in this image") is not { } table) return;
        int sites = 0;
        for (int i = 0; i < table.Count; i++) if (!Rel32Sites.IsPadding(table, i)) sites++;
        if (!_cpu.Uniprocessor) { step.Sites = sites; step.Skipped = "SMP boot: the LOCK prefixes stay (use --up for a one-CPU boot)"; return; }
        ulong text = Symbol("_text") ?? 0, etext = Symbol("_etext") ?? ulong.MaxValue;
        Span<byte> one = stackalloc byte[1];
        for (int i = 0; i < table.Count; i++)
        {
            if (Rel32Sites.IsPadding(table, i)) continue;
            ulong address = Rel32Sites.Site(table, i);
            step.Sites++;
            if (address < text || address >= etext) continue;
            if (Read(address, one) == 1 && one[0] == 0xf0) Poke(step, address, [0x3e]);
        }
    }
}
