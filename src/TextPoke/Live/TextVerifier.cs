using System.Buffers.Binary;
using Iced.Intel;
using TextPoke.Checks;
using TextPoke.Emulation;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tables;
using TextPoke.X86;

namespace TextPoke.Live;

/// <summary>What a differing range of live text is.</summary>
public enum RangeVerdict
{
    /// <summary>A mechanism that rewrites text after boot put these bytes there, and its live state says they are right.</summary>
    Explained,
    /// <summary>A patch site, holding one of its valid states, but not the one its live state (key, CPUs online) requires.</summary>
    Inconsistent,
    /// <summary>No mechanism accounts for these bytes: a broken patch, a stuck half-written site, or somebody's hook.</summary>
    Unexplained,
}

/// <summary>One range of kernel text where live memory differs from the emulated boot, and what textpoke makes of it.</summary>
public sealed record DifferingRange(ulong Address, int Length, string Location, RangeVerdict Verdict, string Mechanism, string Detail,
    byte[] Live, byte[] Expected, IReadOnlyList<string> LiveCode, IReadOnlyList<string> ExpectedCode);

/// <summary>The verdict on a live kernel's text.</summary>
public sealed record VerifyResult(string Image, string Memory, ulong Slide, string Cpu, string CpuSource, bool Uniprocessor, ulong TextStart,
    ulong TextEnd, long BytesCompared, long BytesUnreadable, int DifferingBytes, IReadOnlyList<DifferingRange> Ranges, IReadOnlyList<string> Notes)
{
    /// <summary>The features the emulated boot ran with (X86_FEATURE_/X86_BUG_ names of the image's era).</summary>
    public IReadOnlyList<string> Features { get; init; } = [];

    public int Explained => Ranges.Count(r => r.Verdict == RangeVerdict.Explained);
    public int Inconsistent => Ranges.Count(r => r.Verdict == RangeVerdict.Inconsistent);
    public int Unexplained => Ranges.Count(r => r.Verdict == RangeVerdict.Unexplained);

    /// <summary>Explained ranges by mechanism, most first.</summary>
    public IReadOnlyList<(string Mechanism, int Ranges)> ByMechanism => Ranges.Where(r => r.Verdict == RangeVerdict.Explained)
        .GroupBy(r => r.Mechanism).Select(g => (g.Key, g.Count())).OrderByDescending(g => g.Item2).ThenBy(g => g.Key, StringComparer.Ordinal).ToList();
}

/// <summary>
/// Compares a running kernel's text with what the image becomes after the boot-time patching for the CPU the kernel
/// really has (its boot_cpu_data, read from live memory), and explains every differing range by the mechanisms that
/// rewrite text after boot, each judged by its live state: jump labels by their key's enabled count, static calls and
/// their trampolines by the key's current function, ftrace sites by the call the tracer put there, .smp_locks by the
/// CPUs online, 6.11+ runtime constants by their variable's live value, KASLR by the slide.
/// </summary>
public static class TextVerifier
{
    enum SiteKind : byte { Jump, StaticCall, Trampoline, Ftrace, SmpLock, RuntimePtr, RuntimeShift }

    readonly record struct Site(ulong Start, int Length, SiteKind Kind, int Index);

    sealed class Context
    {
        public required KernelImage Image;
        public required ImageSymbols Symbols;
        public required IKernelMemory Memory;
        public required ulong Slide;
        public required BootPatcher Boot;
        public required bool Uniprocessor;
        public required int? OnlineCpus;
        public JumpLabelReport? Jumps;
        public readonly List<(ulong Key, bool Tail)> StaticCalls = [];
        public readonly List<(ulong Key, string Name)> Trampolines = [];
        public readonly List<string> RuntimeNames = [];
        public readonly InstructionDecoder Decoder = new();
        public ulong? Return0, ReturnThunk;

        public ulong? Symbol(string name) => Symbols.TryFind(name, out ulong a, out _) ? a : null;
        public string PS(ulong address) => Symbols.Names.FormatPS(address, null);

        public bool LiveU64(ulong imageAddress, out ulong value) => Memory.TryReadU64(imageAddress + Slide, out value);
        public bool LiveS32(ulong imageAddress, out int value) => Memory.TryReadS32(imageAddress + Slide, out value);
    }

    /// <summary>
    /// Verifies <paramref name="memory"/> against <paramref name="image"/>. <paramref name="slide"/> is the KASLR offset
    /// (live address minus image address). <paramref name="cpu"/> overrides the CPU read from live memory.
    /// </summary>
    public static VerifyResult Verify(KernelImage image, ImageSymbols symbols, IKernelMemory memory, ulong slide = 0, CpuModel? cpu = null)
    {
        if (image.Kind is not (ImageKind.Vmlinux or ImageKind.BzImage))
            throw new ImageFormatException(image.Path, "verify needs the running kernel's vmlinux or bzImage; modules are not verified yet");
        var notes = new List<string>();
        if (!symbols.TryFind("_text", out ulong text, out _) || !symbols.TryFind("_etext", out ulong etext, out _) || etext <= text)
            throw new ImageFormatException(image.Path, "no _text/_etext symbols: the kernel text cannot be delimited");
        // The memory must hold this very kernel: its linux_banner (in .rodata, never patched) must read the same.
        if (symbols.TryFind("linux_banner", out ulong bannerAt, out _))
        {
            var mine = new byte[64];
            var theirs = new byte[64];
            int length = image.Read(bannerAt, mine);
            if (length > 0 && (!memory.TryRead(bannerAt + slide, theirs.AsSpan(0, length))
                || !theirs.AsSpan(0, length).SequenceEqual(mine.AsSpan(0, length))))
                throw new ImageFormatException(memory.Description, $"does not hold the kernel of {image.Path}: its linux_banner differs " +
                    (slide == 0 ? "(another kernel, or KASLR: give --slide)" : $"at the slide 0x{slide:x}"));
        }
        var names = CpuFeatureNames.Load(image, symbols);
        string cpuSource;
        if (cpu == null)
        {
            cpu = LiveCpu.Read(memory, image, symbols, names, slide, out cpuSource)
                ?? throw new ImageFormatException(memory.Description, $"boot_cpu_data cannot be read from live memory: {cpuSource}");
        }
        else cpuSource = "given with --cpu";
        int? online = symbols.TryFind("__num_online_cpus", out ulong onlineAt, out _) && memory.TryReadS32(onlineAt + slide, out int n) && n is > 0 and < 65536
            ? n : null;
        bool up = online == 1;
        if (online == null) notes.Add("__num_online_cpus is not readable: .smp_locks sites accept both LOCK and DS");
        cpu = new CpuModel
        {
            Description = cpu.Description, Features = cpu.Features, Uniprocessor = up, Vendor = cpu.Vendor, Family = cpu.Family, ModelNumber = cpu.ModelNumber,
        };
        // The return thunk the mitigations chose is a variable of the running kernel: read it rather than guess it.
        ulong? returnThunk = symbols.TryFind("x86_return_thunk", out ulong thunkAt, out _) && memory.TryReadU64(thunkAt + slide, out ulong thunk)
            && thunk != 0 ? thunk - slide : null;
        var boot = BootPatcher.Run(image, symbols, cpu, names, keepGoing: true, returnThunk);
        foreach (var e in boot.Events.Where(e => e.Kind != BootEventKind.Note))
            notes.Add($"the emulated boot {(e.Kind == BootEventKind.Bug ? "BUGs" : "WARNs")} in {e.Step} at {e.Location}: the expected text keeps that site");
        var c = new Context { Image = image, Symbols = symbols, Memory = memory, Slide = slide, Boot = boot, Uniprocessor = up, OnlineCpus = online,
            ReturnThunk = returnThunk };
        var sites = IndexSites(c, notes);

        // Compare _text.._etext in chunks.
        const int Chunk = 1 << 16;
        var live = new byte[Chunk];
        var expected = new byte[Chunk];
        long compared = 0, unreadable = 0;
        int differing = 0;
        var ranges = new List<(ulong Start, ulong End)>();
        for (ulong at = text; at < etext; at += Chunk)
        {
            int length = (int)Math.Min((ulong)Chunk, etext - at);
            var l = live.AsSpan(0, length);
            var x = expected.AsSpan(0, length);
            if (!memory.TryRead(at + slide, l))
            {
                unreadable += length;
                continue;
            }
            boot.Read(at, x);
            compared += length;
            for (int i = 0; i < length; i++)
            {
                int d = l[i..].CommonPrefixLength(x[i..]);
                i += d;
                if (i >= length) break;
                differing++;
                ulong a = at + (ulong)i;
                if (ranges.Count > 0 && ranges[^1].End == a) ranges[^1] = (ranges[^1].Start, a + 1);
                else ranges.Add((a, a + 1));
            }
        }
        if (unreadable > 0) notes.Add($"{unreadable} bytes of kernel text could not be read from {memory.Description}");

        var result = new List<DifferingRange>();
        int r = 0;
        while (r < ranges.Count)
        {
            // Widen the range to the sites it touches, and take in the following ranges those sites cover.
            var (start, end) = ranges[r++];
            var touched = Overlapping(sites, start, end);
            if (touched.Count > 0)
            {
                start = Math.Min(start, touched.Min(s => s.Start));
                end = Math.Max(end, touched.Max(s => s.Start + (ulong)s.Length));
                while (r < ranges.Count && ranges[r].Start < end)
                {
                    end = Math.Max(end, ranges[r].End);
                    r++;
                    touched = Overlapping(sites, start, end);
                    end = Math.Max(end, touched.Max(s => s.Start + (ulong)s.Length));
                }
            }
            result.Add(Judge(c, start, (int)(end - start), touched));
        }
        return new VerifyResult(image.Path, memory.Description, slide, cpu.Description, cpuSource, up, text, etext, compared, unreadable, differing, result,
            notes) { Features = [.. cpu.Features.Order().Select(names.Name)] };
    }

    // Every site a post-boot mechanism may rewrite, sorted by address.
    static Site[] IndexSites(Context c, List<string> notes)
    {
        var sites = new List<Site>();
        c.Jumps = c.Boot.JumpReport ?? JumpLabelCheck.Run(c.Image, c.Symbols); // a 5.10 boot checked it already
        if (c.Jumps.Era != null)
            for (int i = 0; i < c.Jumps.Sites.Length; i++)
                sites.Add(new Site(c.Jumps.Sites[i].Entry.Code, c.Jumps.Sites[i].Size is 2 ? 2 : 5, SiteKind.Jump, i));
        else notes.Add($"jump labels not indexed: {c.Jumps.Absent}");
        c.Return0 = c.Symbol("__static_call_return0");
        c.ReturnThunk ??= c.Symbol("__x86_return_thunk");
        if (Table(c, PatchTables.StaticCalls) is { } calls)
            for (int i = 0; i < calls.Count; i++)
            {
                var s = StaticCallSite.Read(calls, i);
                c.StaticCalls.Add((s.Key, s.Tail));
                sites.Add(new Site(s.Site, 5, SiteKind.StaticCall, c.StaticCalls.Count - 1));
            }
        foreach (var symbol in c.Symbols.Names.Entries)
        {
            if (!symbol.Name.StartsWith("__SCT__", StringComparison.Ordinal)) continue;
            if (c.Symbol("__SCK__" + symbol.Name["__SCT__".Length..]) is not { } key) continue;
            c.Trampolines.Add((key, symbol.Name["__SCT__".Length..]));
            sites.Add(new Site(symbol.Address, 5, SiteKind.Trampoline, c.Trampolines.Count - 1));
        }
        if (Table(c, PatchTables.Mcount) is { } mcount)
            for (int i = 0; i < mcount.Count; i++)
                if (McountSites.Site(mcount, i) is var a and not 0) sites.Add(new Site(a, 5, SiteKind.Ftrace, i));
        if (Table(c, PatchTables.SmpLocks) is { } locks)
            for (int i = 0; i < locks.Count; i++)
                if (!Rel32Sites.IsPadding(locks, i)) sites.Add(new Site(Rel32Sites.Site(locks, i), 1, SiteKind.SmpLock, i));
        // 6.11+ runtime constants: sections runtime_ptr_NAME / runtime_shift_NAME of s32 offsets to the immediate.
        foreach (var constant in RuntimeConst.Read(c.Image, c.Symbols))
        {
            c.RuntimeNames.Add(constant.Name);
            foreach (ulong where in constant.Sites)
                sites.Add(new Site(where, constant.Length, constant.Pointer ? SiteKind.RuntimePtr : SiteKind.RuntimeShift, c.RuntimeNames.Count - 1));
        }
        sites.Sort((a, b) => a.Start.CompareTo(b.Start));
        return [.. sites];
    }

    static EntryTable? Table(Context c, TableDescriptor table) =>
        PatchTables.Locate(c.Image, c.Symbols, table) is { Length: > 0 } bounds ? EntryTable.Read(c.Image, bounds, table, out _) : null;

    static List<Site> Overlapping(Site[] sites, ulong start, ulong end)
    {
        // The first site that could overlap starts at most 8 bytes before start.
        int lo = 0, hi = sites.Length;
        ulong from = start >= 8 ? start - 8 : 0;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (sites[mid].Start < from) lo = mid + 1; else hi = mid;
        }
        var result = new List<Site>();
        for (int i = lo; i < sites.Length && sites[i].Start < end; i++)
            if (sites[i].Start + (ulong)sites[i].Length > start) result.Add(sites[i]);
        return result;
    }

    static DifferingRange Judge(Context c, ulong start, int length, List<Site> sites)
    {
        var live = new byte[length];
        var expected = new byte[length];
        c.Memory.TryRead(start + c.Slide, live);
        c.Boot.Read(start, expected);
        var verdict = RangeVerdict.Unexplained;
        string mechanism = "none", detail = "no patch mechanism has a site here";
        if (sites.Count > 0)
        {
            verdict = RangeVerdict.Explained;
            var details = new List<string>();
            var mechanisms = new SortedSet<string>(StringComparer.Ordinal);
            // Every byte of the range must lie in a site, and every site must hold what its live state requires.
            ulong covered = start;
            foreach (var site in sites.OrderBy(s => s.Start))
            {
                if (site.Start > covered) { verdict = RangeVerdict.Unexplained; details.Add($"bytes at {c.PS(covered)} lie in no patch site"); }
                covered = Math.Max(covered, site.Start + (ulong)site.Length);
                var siteLive = live.AsSpan((int)(site.Start - start), site.Length);
                var (v, m, d) = JudgeSite(c, site, siteLive);
                mechanisms.Add(m);
                details.Add(d);
                if (v > verdict) verdict = v;
            }
            if (covered < start + (ulong)length) { verdict = RangeVerdict.Unexplained; details.Add($"bytes at {c.PS(covered)} lie in no patch site"); }
            mechanism = string.Join("+", mechanisms);
            detail = string.Join("; ", details.Distinct());
        }
        else if (c.Slide != 0 && KaslrRelocation(c, live, expected))
        {
            (verdict, mechanism, detail) = (RangeVerdict.Explained, "kaslr", $"an absolute address moved by the KASLR slide 0x{c.Slide:x}");
        }
        return new DifferingRange(start, length, c.PS(start), verdict, mechanism, detail, live, expected,
            verdict == RangeVerdict.Explained ? [] : Disassemble(c, start, length, live: true),
            verdict == RangeVerdict.Explained ? [] : Disassemble(c, start, length, live: false));
    }

    static (RangeVerdict, string, string) JudgeSite(Context c, Site site, ReadOnlySpan<byte> live)
    {
        switch (site.Kind)
        {
            case SiteKind.Jump:
            {
                var js = c.Jumps!.Sites[site.Index];
                var key = c.Jumps.Keys[js.KeyIndex];
                var (jmp, _) = X86Code.GenerateInstruction(site.Length == 2 ? X86Code.Jmp8Opcode : X86Code.Jmp32Opcode, js.Entry.Code, js.Entry.Target);
                var nop = site.Length == 2 ? X86Code.Nop(2).ToArray() : c.Boot.Nop5Atomic;
                bool isJmp = live.SequenceEqual(jmp.AsSpan(0, site.Length)), isNop = live.SequenceEqual(nop) || live.SequenceEqual(X86Code.Nop(site.Length));
                if (!c.LiveS32(key.Address, out int enabled))
                    return (RangeVerdict.Unexplained, "jump_label", $"{key.Name}'s enabled count is not readable from live memory");
                bool wantJmp = (enabled > 0) ^ js.Entry.Branch;
                string state = $"{key.Name} is {(enabled > 0 ? "enabled" : "disabled")} (enabled={enabled}), " +
                    $"{(js.Entry.Branch ? "likely" : "unlikely")} branch";
                if (isJmp == wantJmp && (isJmp || isNop))
                    return (RangeVerdict.Explained, "jump_label", $"{state}: the site is a {(wantJmp ? "JMP" : "NOP")}");
                if (isJmp || isNop)
                    return (RangeVerdict.Inconsistent, "jump_label",
                        $"{state}, so the site must be a {(wantJmp ? "JMP" : "NOP")}, but it is a {(isJmp ? "JMP" : "NOP")}: flipped without its key");
                return (RangeVerdict.Unexplained, "jump_label", $"{state}: the site is neither its JMP nor a NOP ({X86Code.Hex(live)})");
            }
            case SiteKind.StaticCall:
            case SiteKind.Trampoline:
            {
                var (key, tail, name) = site.Kind == SiteKind.StaticCall
                    ? (c.StaticCalls[site.Index].Key, c.StaticCalls[site.Index].Tail, c.PS(c.StaticCalls[site.Index].Key))
                    : (c.Trampolines[site.Index].Key, true, "__SCK__" + c.Trampolines[site.Index].Name);
                if (!c.LiveU64(key, out ulong func))
                    return (RangeVerdict.Unexplained, "static_call", $"{name}'s function is not readable from live memory");
                ulong target = func == 0 ? 0 : func - c.Slide;
                string what = func == 0 ? "NULL" : c.PS(target);
                string mech = site.Kind == SiteKind.StaticCall ? "static_call" : "static_call trampoline";
                return StaticCallMatches(c, site.Start, live, tail, target)
                    ? (RangeVerdict.Explained, mech, $"{name} calls {what}")
                    : (RangeVerdict.Unexplained, mech, $"{name} calls {what}, but the {(site.Kind == SiteKind.StaticCall ? "site" : "trampoline")} holds " +
                        X86Code.Hex(live));
            }
            case SiteKind.Ftrace:
            {
                var insn = c.Decoder.Decode(live, site.Start);
                if (insn.IsValid && insn.Length == 5 && insn.Mnemonic == Mnemonic.Call)
                {
                    ulong to = insn.BranchTarget;
                    string? name = c.Symbols.Names.Lookup(to) is { Offset: 0 } f ? f.Symbol.Name : null;
                    if (name is "ftrace_caller" or "ftrace_regs_caller" or "ftrace_stub")
                        return (RangeVerdict.Explained, "ftrace", $"traced: the site calls {name}");
                    if (c.Image.SectionAt(to) == null)
                        return (RangeVerdict.Explained, "ftrace",
                            $"traced: the site calls a trampoline at 0x{to + c.Slide:x} outside the image (ftrace or BPF)");
                }
                return (RangeVerdict.Unexplained, "ftrace", $"an ftrace site holding neither its NOP nor a call to a tracer ({X86Code.Hex(live)})");
            }
            case SiteKind.SmpLock:
            {
                bool lockPrefix = live[0] == 0xf0, ds = live[0] == 0x3e;
                if (!lockPrefix && !ds) return (RangeVerdict.Unexplained, "smp_locks", $"a LOCK site holding 0x{live[0]:x2}");
                if (c.OnlineCpus == null) return (RangeVerdict.Explained, "smp_locks", lockPrefix ? "LOCK (CPUs online unknown)" : "DS (CPUs online unknown)");
                bool wantLock = c.OnlineCpus > 1;
                return lockPrefix == wantLock
                    ? (RangeVerdict.Explained, "smp_locks", $"{c.OnlineCpus} CPU{(c.OnlineCpus == 1 ? "" : "s")} online: {(wantLock ? "LOCK" : "DS")} prefix")
                    : (RangeVerdict.Inconsistent, "smp_locks", $"{c.OnlineCpus} CPUs online, but the prefix is {(lockPrefix ? "LOCK" : "DS")}");
            }
            default:
            {
                string name = c.RuntimeNames[site.Index];
                bool ptr = site.Kind == SiteKind.RuntimePtr;
                if (c.Symbol(name) is not { } variable || !c.LiveU64(variable, out ulong value))
                    return (RangeVerdict.Unexplained, "runtime_const", $"the live value of {name} is not readable");
                if (!ptr) value &= 0xff;
                Span<byte> bytes = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
                return live.SequenceEqual(bytes[..site.Length])
                    ? (RangeVerdict.Explained, "runtime_const", $"runtime_const_{(ptr ? "ptr" : "shift")}({name}) = 0x{value:x}")
                    : (RangeVerdict.Unexplained, "runtime_const", $"runtime_const_{(ptr ? "ptr" : "shift")}({name}) is 0x{value:x}, the site holds " +
                        X86Code.Hex(live));
            }
        }
    }

    // What __static_call_transform may leave at a call site or trampoline for the key's current function.
    static bool StaticCallMatches(Context c, ulong at, ReadOnlySpan<byte> live, bool tail, ulong target)
    {
        var insn = c.Decoder.Decode(live, at);
        bool jumpsTo(ulong t) => insn.IsValid && insn.BranchTarget == t && insn.Mnemonic is Mnemonic.Jmp or (>= Mnemonic.Ja and <= Mnemonic.Js);
        if (!tail)
        {
            if (target == 0) return live.SequenceEqual(c.Boot.Nop5Atomic) || live.SequenceEqual(X86Code.Nop(5));
            if (c.Return0 == target && live.SequenceEqual((ReadOnlySpan<byte>)[0x2e, 0x2e, 0x2e, 0x31, 0xc0])) return true;
            return insn.IsValid && insn.Mnemonic == Mnemonic.Call && insn.BranchTarget == target;
        }
        if (target == 0) return live[0] == 0xc3 || c.ReturnThunk is { } thunk && jumpsTo(thunk);
        if (jumpsTo(target)) return true;
        return c.Return0 == target && live.SequenceEqual((ReadOnlySpan<byte>)[0x2e, 0x2e, 0x2e, 0x31, 0xc0]);
    }

    static bool KaslrRelocation(Context c, byte[] live, byte[] expected)
    {
        for (int i = 0; i + 4 <= live.Length || i == 0 && live.Length < 4; i++)
        {
            if (i + 8 <= live.Length
                && BinaryPrimitives.ReadUInt64LittleEndian(live.AsSpan(i)) - BinaryPrimitives.ReadUInt64LittleEndian(expected.AsSpan(i)) == c.Slide)
                return true;
            if (i + 4 <= live.Length && BinaryPrimitives.ReadUInt32LittleEndian(live.AsSpan(i)) - BinaryPrimitives.ReadUInt32LittleEndian(expected.AsSpan(i))
                == (uint)c.Slide) return true;
            if (live.Length < 4) break;
        }
        return false;
    }

    // The instructions over [start, start+length) in live or expected bytes, decoded from the start of the function
    // holding them (so the first one is a real instruction boundary), at most 8.
    static List<string> Disassemble(Context c, ulong start, int length, bool live)
    {
        ulong from = c.Symbols.Names.Lookup(start) is { } f && start - f.Offset is var fn && f.Offset < 4096 ? fn : start;
        var window = new byte[(int)(start - from) + length + 32];
        c.Boot.Read(from, window);
        if (live) c.Memory.TryRead(start + c.Slide, window.AsSpan((int)(start - from), length));
        var formatter = new GasFormatter();
        formatter.Options.UppercaseHex = false;
        var output = new StringOutput();
        var lines = new List<string>();
        int at = 0;
        while (at < window.Length - 16 && lines.Count < 8)
        {
            var insn = c.Decoder.Decode(window.AsSpan(at), from + (ulong)at);
            int n = insn.IsValid ? insn.Length : 1;
            if (from + (ulong)(at + n) > start)
            {
                string text = insn.IsValid ? Format(formatter, output, insn.Raw) : "(bad)";
                lines.Add($"{c.PS(from + (ulong)at)}: {X86Code.Hex(window.AsSpan(at, n)),-24} {text}");
            }
            at += n;
            if (from + (ulong)at >= start + (ulong)length) break;
        }
        return lines;
    }

    static string Format(GasFormatter formatter, StringOutput output, in Instruction instruction)
    {
        formatter.Format(instruction, output);
        return output.ToStringAndReset();
    }
}

/// <summary>The CPU a running kernel booted on, from its boot_cpu_data.</summary>
public static class LiveCpu
{
    static readonly (string Id, string Vendor)[] Vendors =
        [("GenuineIntel", "Intel"), ("AuthenticAMD", "AMD"), ("HygonGenuine", "Hygon"), ("CentaurHauls", "Centaur"), ("  Shanghai  ", "Zhaoxin")];

    /// <summary>
    /// Reads boot_cpu_data: x86_capability[NCAPINTS + NBUGINTS] lies right before x86_vendor_id[16] in every era, so the
    /// words are found from the vendor string; family and model are the struct's first bytes (v6.12: model, family).
    /// </summary>
    public static CpuModel? Read(IKernelMemory memory, KernelImage image, ImageSymbols symbols, CpuFeatureNames names, ulong slide, out string how)
    {
        if (!symbols.TryFind("boot_cpu_data", out ulong at, out _)) { how = "the image has no boot_cpu_data symbol"; return null; }
        var data = new byte[256];
        if (!memory.TryRead(at + slide, data)) { how = $"boot_cpu_data (0x{at + slide:x}) is not readable"; return null; }
        int words = names.CapInts + names.BugInts;
        foreach (var (id, vendor) in Vendors)
        {
            int v = data.AsSpan().IndexOf(System.Text.Encoding.ASCII.GetBytes(id));
            if (v < 4 * words + 8 || v % 4 != 0) continue;
            int caps = v - 4 * words;
            var features = new HashSet<int>();
            for (int w = 0; w < words; w++)
            {
                uint word = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(caps + 4 * w));
                for (int b = 0; b < 32; b++)
                    if ((word >> b & 1) != 0) features.Add(w * 32 + b);
            }
            // v6.10+ begins the struct with x86_vfm (model, family, vendor); before, x86 (family), vendor, model. Only the
            // ideal-NOP era (<= v5.12 and its backports) looks at them, so the 6.12 table stands for that layout.
            bool modelFirst = names.Table == "6.12";
            int family = modelFirst ? data[1] : data[0], model = modelFirst ? data[0] : data[2];
            how = $"boot_cpu_data in live memory ({vendor} family 0x{family:x} model 0x{model:x}, x86_capability at +{caps})";
            return new CpuModel { Description = $"live boot_cpu_data: {features.Count} features", Features = features, Vendor = vendor, Family = family,
                ModelNumber = model };
        }
        how = "no CPU vendor string in boot_cpu_data";
        return null;
    }
}
