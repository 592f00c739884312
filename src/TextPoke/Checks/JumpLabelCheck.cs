using System.Buffers.Binary;
using TextPoke.Images;
using TextPoke.Messages;
using TextPoke.Images.Elf;
using TextPoke.Symbols;
using TextPoke.Tables;
using TextPoke.X86;

namespace TextPoke.Checks;

/// <summary>What a jump-label site holds.</summary>
public enum SiteState { Nop, Jump, Other, Unreadable }

/// <summary>One site with its decoded state. Size is 0 when the instruction is not 2 or 5 bytes long.</summary>
public readonly record struct JumpSite(JumpEntry Entry, int KeyIndex, int Size, SiteState State, bool? ExpectJump, bool InitText, int DecodedLength);

/// <summary>One static key and its sites.</summary>
public sealed record StaticKeyInfo(ulong Address, string Name, bool? InitialValue, string? Section, int Enabled, ulong TypeWord, bool External,
    bool InData = true)
{
    public int Sites { get; internal set; }
    public int NopSites { get; internal set; }
    public int JumpSites { get; internal set; }
    public int OtherSites { get; internal set; }
    public int BrokenSites { get; internal set; }
}

/// <summary>Counts for the summary.</summary>
public sealed record JumpTableStats(int Entries, int Keys, int Nop, int Jump, int Other, int TwoByte, int FiveByte, int InitText, int NopMarked, int Findings);

/// <summary>The result of checking __jump_table: everything the renderers, keys and sites commands need.</summary>
public sealed class JumpLabelReport
{
    public required string Image { get; init; }
    public TableBounds? Bounds { get; init; }
    public JumpLabelEra? Era { get; init; }
    public string? EraEvidence { get; init; }
    /// <summary>Why the table was not checked (absent, undecidable layout), or null.</summary>
    public string? Absent { get; init; }
    public TableStatus Status { get; init; } = TableStatus.Checked;
    public JumpSite[] Sites { get; init; } = [];
    public StaticKeyInfo[] Keys { get; internal set; } = [];
    public List<Finding> Findings { get; } = [];
    public JumpTableStats? Stats { get; internal set; }
    public string? Module { get; init; }
}

/// <summary>
/// Checks every jump_entry against the machine code the way the kernel will judge it (jump-labels.md, checker
/// invariants 1-9), and predicts the kernel's own message for each broken site.
/// </summary>
public static class JumpLabelCheck
{
    public const string TableName = "jump";

    /// <summary>
    /// Checks the image's __jump_table. <paramref name="externalKeys"/> resolves keys an object does not define (a
    /// module's keys in vmlinux) by name, so their sites are judged as jump_label_add_module will judge them.
    /// </summary>
    public static JumpLabelReport Run(KernelImage image, ImageSymbols symbols, Func<string, StaticKeyInfo?>? externalKeys = null)
    {
        var bounds = JumpTable.Locate(image, symbols);
        if (bounds == null)
        {
            if (SiteTables.CannotLocate(image, symbols, JumpTable.SectionName, JumpTable.StartSymbol, JumpTable.StopSymbol) is { } unknown)
                return new JumpLabelReport { Image = image.Path, Absent = unknown, Module = image.ModuleName, Status = TableStatus.NotChecked };
            // kernel/jump_label.c is built only with CONFIG_JUMP_LABEL: with its code in the symbols, the table exists and
            // only its bounds are missing (kallsyms without KALLSYMS_ALL names no data symbols).
            bool hasJumpLabels = !image.Elf.IsRelocatable && symbols.Names.Contains("jump_label_init");
            string why = hasJumpLabels
                ? $"not found, and cannot be ruled out: the kernel has jump labels (jump_label_init), but {JumpTable.StartSymbol}/{JumpTable.StopSymbol} " +
                    $"are not in {symbols.Describe()} (kallsyms without KALLSYMS_ALL: pass --system-map)"
                : $"no {JumpTable.SectionName} section, and {JumpTable.StartSymbol}/{JumpTable.StopSymbol} are not in {symbols.Describe()} (kernel without " +
                    $"CONFIG_JUMP_LABEL)";
            return new JumpLabelReport
            {
                Image = image.Path, Absent = why, Module = image.ModuleName, Status = hasJumpLabels ? TableStatus.NotChecked : TableStatus.Absent,
            };
        }

        JumpLabelReport Malformed(string message, string? absent = null)
        {
            var report = new JumpLabelReport
            {
                Image = image.Path, Bounds = bounds, Module = image.ModuleName, Absent = absent,
                Status = absent == null ? TableStatus.Checked : TableStatus.NotChecked,
            };
            report.Findings.Add(TableFinding(bounds, message));
            report.Stats = new JumpTableStats(0, 0, 0, 0, 0, 0, 0, 0, 0, report.Findings.Count);
            return report;
        }

        // Invariant 1: well-formed bounds.
        var stopSection = bounds.Length == 0 ? bounds.Section : image.SectionAt(bounds.Stop - 1);
        if (bounds.Stop < bounds.Start || bounds.Section == null || stopSection != bounds.Section || bounds.Start % 8 != 0)
        {
            string what = bounds.Stop < bounds.Start ? "ends before it starts"
                : bounds.Section == null ? "does not lie in any section"
                : stopSection != bounds.Section ? $"starts in {bounds.Section.Name} but ends in {stopSection?.Name ?? "no section"}"
                : "does not start on an 8-byte boundary";
            return Malformed($"the table [{bounds.Start:x16}, {bounds.Stop:x16}) {what}; the kernel would misparse every entry");
        }
        var (format, evidence) = JumpTable.ProbeFormat(image, bounds);
        if (format == null) return Malformed($"cannot decide the entry layout: {evidence}", $"layout could not be decided: {evidence}");

        var entries = JumpTable.ReadAll(image, bounds, format.Value);
        int count = entries.Length;
        var (era, eraEvidence) = JumpTable.DecideEra(image, format.Value, entries);
        var decoder = new InstructionDecoder();
        Span<byte> buffer = stackalloc byte[16];

        // Keys.
        var keyIndex = new Dictionary<(ulong, string?), int>();
        var keys = new List<StaticKeyInfo>();
        var sites = new JumpSite[count];
        var report = new JumpLabelReport
        {
            Image = image.Path, Bounds = bounds, Era = era, EraEvidence = $"{evidence}; {eraEvidence}", Sites = sites, Module = image.ModuleName,
        };
        int nop = 0, jump = 0, other = 0, two = 0, five = 0, init = 0, marked = 0;
        for (int i = 0; i < count; i++)
        {
            var e = entries[i];
            var keyId = (e.KeyResolved ? e.Key : 0, e.ExternalKey);
            if (!keyIndex.TryGetValue(keyId, out int k))
            {
                keyIndex[keyId] = k = keys.Count;
                var info = !e.KeyResolved && externalKeys?.Invoke(e.ExternalKey ?? "") is { } resolved ? resolved : ReadKey(image, symbols, e);
                keys.Add(info);
                CheckKey(report, info, e, PS(symbols, image, e.Code));
            }
            var key = keys[k];
            key.Sites++;
            if (e.NopMark) marked++;

            var codeSection = image.SectionAt(e.Code);
            bool inInit = codeSection != null && codeSection.Name.StartsWith(".init", StringComparison.Ordinal);
            if (inInit) init++;
            int n = codeSection is { IsExecutable: true } ? image.Read(e.Code, buffer) : 0;
            var site5 = buffer[..Math.Min(n, 5)].ToArray();
            // v5.14+: objtool's NOP mark is only emitted by arch_static_branch (NOP-type), so a marked site must start as
            // a NOP even when the key's value is unknown here (a module's key defined in vmlinux).
            bool? expectJump = key.InitialValue is { } v0 ? v0 ^ e.Branch : era.VariableLength && e.NopMark ? false : null;
            if (n == 0)
            {
                sites[i] = new JumpSite(e, k, 0, SiteState.Unreadable, expectJump, inInit, 0);
                key.BrokenSites++;
                report.Findings.Add(SiteOutsideText(image, symbols, e, key));
                continue;
            }
            var live = LiveRelocation(image, symbols, e, key, codeSection!);
            if (live != null)
            {
                sites[i] = new JumpSite(e, k, 5, SiteState.Nop, expectJump, inInit, 5);
                nop++; five++; key.NopSites++; key.BrokenSites++;
                report.Findings.Add(live);
                continue;
            }
            var insn = decoder.Decode(buffer[..n], e.Code);
            int size = era.VariableLength ? (insn.IsValid && insn.Length is 2 or 5 ? insn.Length : 0) : 5;
            if (size == 0 || n < size)
            {
                sites[i] = new JumpSite(e, k, 0, SiteState.Other, expectJump, inInit, insn.Length);
                key.OtherSites++; other++; key.BrokenSites++;
                report.Findings.Add(BadSize(image, symbols, e, key, insn, site5));
                continue;
            }
            if (size == 2) two++; else five++;
            var actual = buffer[..size];
            var nopBytes = X86Code.Nop(size);
            var (jmpUnion, fits) = X86Code.GenerateInstruction(size == 2 ? X86Code.Jmp8Opcode : X86Code.Jmp32Opcode, e.Code, e.Target);
            SiteState state = actual.SequenceEqual(nopBytes) || !era.VariableLength && size == 5 && IsOldEraNop5(actual) ? SiteState.Nop
                : actual.SequenceEqual(jmpUnion.AsSpan(0, size)) ? SiteState.Jump : SiteState.Other;
            sites[i] = new JumpSite(e, k, size, state, expectJump, inInit, insn.Length);
            switch (state)
            {
                case SiteState.Nop: nop++; key.NopSites++; break;
                case SiteState.Jump: jump++; key.JumpSites++; break;
                default: other++; key.OtherSites++; break;
            }
            var finding = JudgeSite(image, symbols, era, e, key, state, size, insn, site5, jmpUnion, fits, expectJump);
            if (finding != null) { key.BrokenSites++; report.Findings.Add(finding); }
        }
        report.Stats = new JumpTableStats(count, keys.Count, nop, jump, other, two, five, init, marked, report.Findings.Count);
        report.Keys = keys.ToArray();
        return report;
    }

    // P6_NOP5_ATOMIC (default) or K8 ideal NOP, for v4.14..v5.13 sites that the kernel may have been built with.
    static bool IsOldEraNop5(ReadOnlySpan<byte> site) => site.SequenceEqual((ReadOnlySpan<byte>)[0x0f, 0x1f, 0x44, 0x00, 0x00]);

    static string PS(ImageSymbols symbols, KernelImage image, ulong address) => symbols.Names.FormatPS(address, image.ModuleName);

    /// <summary>Reads a static key of a linked image by name (for resolving a module's external keys), or null.</summary>
    public static StaticKeyInfo? KeyByName(KernelImage image, ImageSymbols symbols, string name)
    {
        if (!symbols.TryFind(name, out ulong address, out _)) return null;
        var info = ReadKey(image, symbols, new JumpEntry(0, 0, 0, 0, address, 0, true, null));
        return info with { External = true };
    }

    static StaticKeyInfo ReadKey(KernelImage image, ImageSymbols symbols, JumpEntry e)
    {
        if (!e.KeyResolved)
            return new StaticKeyInfo(0, e.ExternalKey ?? "?", null, null, 0, 0, External: true);
        var section = image.SectionAt(e.Key);
        string name = symbols.Names.Lookup(e.Key) is { } hit
            ? hit.Offset == 0 ? hit.Symbol.Name : $"{hit.Symbol.Name}+0x{hit.Offset:x}"
            : $"0x{e.Key:x}";
        if (section == null || section.IsExecutable)
            return new StaticKeyInfo(e.Key, name, null, section?.Name, 0, 0, false, InData: false);
        Span<byte> b = stackalloc byte[16];
        int n = image.Read(e.Key, b);
        int enabled = n >= 4 ? BinaryPrimitives.ReadInt32LittleEndian(b) : 0;
        ulong type = n >= 16 ? BinaryPrimitives.ReadUInt64LittleEndian(b[8..]) : 0;
        // Invariant 8: on disk the enabled count is 0 or 1 and the type word equals it; otherwise the state is undefined.
        bool? initial = n >= 16 && enabled is 0 or 1 && type == (ulong)enabled ? enabled == 1 : null;
        return new StaticKeyInfo(e.Key, name, initial, section.Name, enabled, type, false);
    }

    // Invariants 2 (key placement) and 8 (key consistency), once per key.
    static void CheckKey(JumpLabelReport report, StaticKeyInfo key, JumpEntry e, string location)
    {
        if (key.External) return;
        if (!key.InData)
        {
            report.Findings.Add(new Finding
            {
                Table = TableName, Rule = "jump.key-outside-data", Severity = Severity.Bug,
                Title = "static key outside the image's data", Key = key.Name, KeyAddress = key.Address, Address = e.Code, Location = location,
                Explanation = $"entry {e.Index} names a key at {key.Address:x16}, which lies " +
                    $"{(key.Section == null ? "outside every section" : $"in {key.Section}, which is code")}. " +
                    "jump_label_init stores the site list in that word, so the kernel would corrupt whatever is there; the table entry itself is damaged.",
            });
            return;
        }
        if (key.Address % 8 != 0)
            report.Findings.Add(new Finding
            {
                Table = TableName, Rule = "jump.key-misaligned", Severity = Severity.Bug,
                Title = "static key not 8-byte aligned", Key = key.Name, KeyAddress = key.Address,
                Explanation = $"key {key.Name} at {key.Address:x16} is not 8-byte aligned, so the low bits of the entry's key field (branch, NOP mark) " +
                    $"would be misread.",
            });
        bool enabledOk = key.Enabled is 0 or 1;
        bool typeOk = key.TypeWord is 0 or 1;
        if (!enabledOk || !typeOk || key.Enabled != (int)key.TypeWord)
        {
            string detail = !enabledOk ? $"its enabled count is {key.Enabled}, not 0 or 1"
                : !typeOk ? $"its entries/type word is 0x{key.TypeWord:x} on disk, not JUMP_TYPE_FALSE (0) or JUMP_TYPE_TRUE (1)"
                : $"its enabled count says {key.Enabled} but its type word says {key.TypeWord}";
            report.Findings.Add(new Finding
            {
                Table = TableName, Rule = "jump.key-inconsistent", Severity = Severity.Bug,
                Title = "static key initialiser is inconsistent", Key = key.Name, KeyAddress = key.Address,
                Explanation = $"static_key {key.Name} at {key.Address:x16} ({key.Section}): {detail}. static_key_enable/disable will WARN_ON_ONCE and the " +
                    $"sites' state is undefined.",
            });
        }
    }

    static Finding TableFinding(TableBounds bounds, string what) => new()
    {
        Table = TableName, Rule = "jump.table-malformed", Severity = Severity.Bug, Title = "__jump_table is malformed",
        Address = bounds.Start, Explanation = $"{what} (bounds from {bounds.How}).",
    };

    static Finding SiteOutsideText(KernelImage image, ImageSymbols symbols, JumpEntry e, StaticKeyInfo key)
    {
        string where = PS(symbols, image, e.Code);
        return new Finding
        {
            Table = TableName, Rule = "jump.site-outside-text", Severity = Severity.Warning, Title = "jump site outside executable code",
            Address = e.Code, Location = where, Key = key.Name, KeyAddress = key.Address,
            KernelLines = [KernelMessages.CantPatch(where)],
            Explanation = $"entry {e.Index} (key {key.Name}) points at {e.Code:x16}, which is not in an executable section. " +
                "jump_label_can_update skips it with a WARN_ONCE when the key flips, so this branch never switches.",
        };
    }

    static int FlipType(bool? expectJump) => expectJump == true ? 0 : 1;

    static Finding BadSize(KernelImage image, ImageSymbols symbols, JumpEntry e, StaticKeyInfo key, DecodedInstruction insn, byte[] site5)
    {
        string where = PS(symbols, image, e.Code);
        string decoded = insn.IsValid ? $"decodes as a {insn.Length}-byte {insn.Mnemonic.ToString().ToLowerInvariant()}" : "does not decode as an instruction";
        return new Finding
        {
            Table = TableName, Rule = "jump.bad-size", Severity = Severity.Bug, Title = "site is neither a 2- nor a 5-byte instruction",
            Address = e.Code, Location = where, Key = key.Name, KeyAddress = key.Address, ActualBytes = X86Code.Hex(site5),
            KernelLines = [KernelMessages.Bug(KernelMessages.X86JumpLabelFile, KernelMessages.JumpEntrySizeBugLine)],
            Explanation = $"the site at {where} ({X86Code.Hex(site5)}) {decoded}. arch_jump_entry_size() hits BUG_ON(insn.length != 2 && insn.length != 5) " +
                $"the first time key {key.Name} changes state. The entry does not point at a jump-label instruction: the table or the code was damaged " +
                    $"after objtool ran.",
        };
    }

    static Finding? JudgeSite(KernelImage image, ImageSymbols symbols, JumpLabelEra era, JumpEntry e, StaticKeyInfo key, SiteState state, int size,
        DecodedInstruction insn, byte[] site5, byte[] jmpUnion, bool fits, bool? expectJump)
    {
        // Most sites are fine: their texts are built only for a finding.
        string? whereText = null, targetText = null, keyTextValue = null;
        string where() => whereText ??= PS(symbols, image, e.Code);
        string target() => targetText ??= PS(symbols, image, e.Target);
        string keyText() => keyTextValue ??= KeyText(key, e);
        int type = FlipType(expectJump);
        var nopPrinted = X86Code.NopAsPrinted(size).ToArray();
        // When the key flips away from its initial state, the kernel expects the initial instruction.
        var expectedPrinted = expectJump == true ? jmpUnion : nopPrinted;

        if (state == SiteState.Other)
        {
            string decoded = insn.IsValid ? $"a {insn.Length}-byte {insn.Mnemonic.ToString().ToLowerInvariant()}" + (insn.BranchTarget != 0
                ? $" to {PS(symbols, image, insn.BranchTarget)}" : "") : "no valid instruction";
            bool wrongTarget = insn.IsValid && insn.Flow == Iced.Intel.FlowControl.UnconditionalBranch && insn.BranchTarget != e.Target;
            return new Finding
            {
                Table = TableName, Rule = wrongTarget ? "jump.wrong-target" : "jump.unexpected-instruction", Severity = Severity.Bug,
                Title = wrongTarget ? "JMP to a different target than the entry's" : "site holds neither the NOP nor the JMP",
                Address = e.Code, Location = where(), Key = key.Name, KeyAddress = key.Address, Size = size, Type = type,
                ActualBytes = X86Code.Hex(site5), ExpectedBytes = X86Code.Hex(expectedPrinted),
                KernelLines = PatchFailure(era, where(), e.Code, site5, expectedPrinted, size, type),
                Explanation = $"the site holds {decoded}; the kernel only accepts the {size}-byte NOP ({X86Code.Hex(X86Code.Nop(size))}) or the JMP to the " +
                    $"entry's target {target()} " +
                    $"({X86Code.Hex(jmpUnion.AsSpan(0, size))}). {keyText()} The first flip of the key BUGs.",
            };
        }
        if (size == 2 && !fits)
            return new Finding
            {
                Table = TableName, Rule = "jump.target-out-of-range", Severity = Severity.Bug, Title = "2-byte site cannot reach its target",
                Address = e.Code, Location = where(), Key = key.Name, KeyAddress = key.Address, Size = size,
                ActualBytes = X86Code.Hex(site5),
                Explanation = $"the entry's target {target()} is {(long)(e.Target - e.Code - 2)} bytes away, beyond a JMP8's reach; text_gen_insn() " +
                    $"(arch/x86/include/asm/text-patching.h) hits BUG_ON when the key flips.",
            };
        if (!image.IsText(e.Target))
            return new Finding
            {
                Table = TableName, Rule = "jump.target-outside-text", Severity = Severity.Bug, Title = "jump target outside executable code",
                Address = e.Code, Location = where(), Key = key.Name, KeyAddress = key.Address,
                Explanation = $"entry {e.Index}'s target {e.Target:x16} is not in an executable section: enabling {key.Name} would jump into data.",
            };
        if (expectJump is { } wantJump && (state == SiteState.Jump) != wantJump)
        {
            bool objtool = e.NopMark && state == SiteState.Jump;
            string found = state == SiteState.Jump ? $"a {size}-byte JMP to {target()}" : $"a {size}-byte NOP";
            string expected = wantJump ? $"the {size}-byte JMP to {target()}" : $"a {size}-byte NOP";
            string path = wantJump
                ? $"until then the code falls through where it should jump, so the {(e.Branch ? "likely" : "unlikely")} block runs although the key says " +
                    $"otherwise"
                : "until then every pass through here takes the jump, so the branch the key selects runs although the key is off";
            string cause = objtool
                ? " The entry carries objtool's NOP mark (bit 1 of the key field): the compiler emitted a JMP on purpose and objtool should have rewritten " +
                    "it into a NOP of the same length at build time. It did not — the object was not processed by objtool (with Clang LTO one objtool " +
                    "failure on vmlinux.o leaves every site unpatched)."
                : state == SiteState.Jump
                    ? " There is no objtool NOP mark on this entry, so the image was changed after the build, or the key's initial value does not match the " +
                    "code."
                : " A NOP where a JMP belongs means the site or the key's initialiser was changed after the build.";
            return new Finding
            {
                Table = TableName, Rule = objtool ? "jump.objtool-not-run" : "jump.initial-state", Severity = Severity.Bug,
                Title = wantJump ? "NOP where the key's state requires a JMP" : "JMP where the key's state requires a NOP",
                Address = e.Code, Location = where(), Key = key.Name, KeyAddress = key.Address, Size = size, Type = type,
                ActualBytes = X86Code.Hex(site5), ExpectedBytes = X86Code.Hex(expectedPrinted),
                KernelLines = PatchFailure(era, where(), e.Code, site5, expectedPrinted, size, type),
                Explanation = $"{keyText()} So the site must hold {expected} until the key changes; it holds {found}. " +
                    $"{char.ToUpperInvariant(path[0])}{path[1..]}, " +
                    // What trips is the first change of the key away from its initial state (enabled = wantJump ^ branch): an off key's
                    // first enable, an on key's first disable, whichever branch the site is; the opposite operation does nothing.
                    $"and the first {(wantJump ^ e.Branch ? "static_key_disable/static_key_slow_dec" : "static_key_enable/static_key_slow_inc")} of " +
                        $"{key.Name} BUGs.{cause}",
            };
        }
        if (e.NopMark && expectJump == true)
            return new Finding
            {
                Table = TableName, Rule = "jump.mark-on-jump-site", Severity = Severity.Warning, Title = "objtool NOP mark on a JMP-type site",
                Address = e.Code, Location = where(), Key = key.Name, KeyAddress = key.Address,
                Explanation = $"entry {e.Index} carries objtool's NOP mark, but it is a JMP-type site: {keyText()} arch_static_branch_jump never sets the " +
                    $"mark, so objtool would NOP a site that must jump.",
            };
        return null;
    }

    // Invariant 7: in an unlinked object a 5-byte NOP must not carry a live PC32/PLT32 relocation at +1; the loader
    // would write a displacement into it. objtool sets that relocation to R_X86_64_NONE when it NOPs a jmp.
    static Finding? LiveRelocation(KernelImage image, ImageSymbols symbols, JumpEntry e, StaticKeyInfo key, ElfSection section)
    {
        if (!image.Elf.IsRelocatable) return null;
        ulong offset = e.Code - image.SectionAddress(section);
        if (image.RelocationAt(section, offset + 1) is not { } r || r.Type is not (ElfConstants.R_X86_64_PC32 or ElfConstants.R_X86_64_PLT32)) return null;
        var raw = image.Elf.SectionBytes(section);
        if (offset + 5 > (ulong)raw.Length || !raw.Slice((int)offset, 5).SequenceEqual(X86Code.Nop(5))) return null;
        string where = PS(symbols, image, e.Code);
        return new Finding
        {
            Table = TableName, Rule = "jump.live-relocation", Severity = Severity.Bug, Title = "live relocation inside a NOP site",
            Address = e.Code, Location = where, Key = key.Name, KeyAddress = key.Address, Size = 5, ActualBytes = X86Code.Hex(X86Code.Nop(5)),
            Explanation = $"the site holds the 5-byte NOP, but a {ElfConstants.RelocationName(r.Type)} against {r.Symbol} still applies at " +
                $"{where}+1: linking or module loading writes a displacement into the NOP, and the first flip of key {key.Name} then BUGs. " +
                "objtool sets that relocation to R_X86_64_NONE when it NOPs a jump; here it rewrote the bytes but left the relocation.",
        };
    }

    static string KeyText(StaticKeyInfo key, JumpEntry e)
    {
        if (key.InitialValue == null)
            return key.External
                ? $"Key {key.Name} is defined outside this object, so its state is not known here; the entry's objtool NOP mark says the site was built as " +
                    $"a NOP."
                : $"Key {key.Name} has no consistent initial value.";
        string macro = e.Branch ? "static_branch_likely" : "static_branch_unlikely";
        return $"Key {key.Name} is initially {(key.InitialValue.Value ? "on" : "off")} (static_key in {key.Section}) and this site is {macro} (branch bit " +
            $"{(e.Branch ? 1 : 0)}).";
    }

    static IReadOnlyList<string> PatchFailure(JumpLabelEra era, string where, ulong address, byte[] site5, byte[] expected5, int size, int type)
    {
        if (era.VariableLength)
            return [KernelMessages.UnexpectedOp(where, address, site5, expected5, size, type), KernelMessages.Bug(KernelMessages.X86JumpLabelFile,
                KernelMessages.JumpLabelPatchBugLine)];
        int? line = type == 1 ? era.EnableLine : era.DisableLine;
        var lines = new List<string> { KernelMessages.UnexpectedOpOld(where, address, site5, line ?? 0) };
        if (era.BugLine is { } bug) lines.Add(KernelMessages.Bug(KernelMessages.X86JumpLabelFile, bug));
        return lines;
    }
}

/// <summary>
/// How a user names a key. A key inside an array of keys is printed as the array's symbol plus its offset
/// (nf_hooks_needed+0xe0, element 0 as the bare symbol); C's element form is accepted too: NAME[i] is element i of an
/// array of struct static_key (16 bytes each), counted flat over every dimension (nf_hooks_needed[2][6] of a [13][8]
/// array is nf_hooks_needed[22]).
/// </summary>
public static class StaticKeyNames
{
    const int StructStaticKeySize = 16;

    /// <summary>The printed name for NAME[i]; any other name unchanged.</summary>
    public static string Canonical(string name)
    {
        var m = System.Text.RegularExpressions.Regex.Match(name, @"^(?<sym>[^\[\]\s]+)\[(?<i>\d{1,9})\]$");
        if (!m.Success) return name;
        long offset = long.Parse(m.Groups["i"].Value) * StructStaticKeySize;
        return offset == 0 ? m.Groups["sym"].Value : $"{m.Groups["sym"].Value}+0x{offset:x}";
    }

    /// <summary>Why NAME names no key, with a hint when it is an array of keys (names like NAME+0x...) or a multi-dimensional element.</summary>
    public static string NotFound(string name, IEnumerable<string> keyNames, string where)
    {
        string bare = name.Split('[', 2)[0];
        var elements = keyNames.Where(k => k == bare || k.StartsWith(bare + "+0x", StringComparison.Ordinal)).ToList();
        string hint = elements.Count > 1 || elements.Count == 1 && elements[0] != bare
            ? $"; {bare} is an array of keys ({elements.Count} with sites, e.g. {string.Join(", ", elements.Take(3))}): name one as {bare}[N] " +
              $"(counted flat, {StructStaticKeySize} bytes each) or {bare}+0xOFFSET"
            : "";
        return $"no static key named '{name}' in {where}{hint}";
    }
}
