using TextPoke.Checks;
using TextPoke.Images;
using TextPoke.Messages;
using TextPoke.Symbols;
using TextPoke.Tables;
using TextPoke.X86;

namespace TextPoke.Emulation;

/// <summary>include/linux/kernel.h system_state values that change what jump-label updates do.</summary>
public enum SystemState
{
    /// <summary>Before SYSTEM_SCHEDULING: the x86 queue falls back to immediate patching (text_poke_early).</summary>
    Booting,
    /// <summary>Initcalls (SYSTEM_SCHEDULING): init text can still be patched; updates are batched.</summary>
    Scheduling,
    /// <summary>After free_initmem: init-text sites are skipped.</summary>
    Running,
}

/// <summary>What one line of simulated kernel output is.</summary>
public enum EventKind { Operation, Patched, Skipped, Warning, Bug, Note }

/// <summary>One thing the emulated kernel did or printed. <see cref="Lines"/> are console lines, byte for byte.</summary>
public sealed record KernelEvent(EventKind Kind, string Operation, string? Key, ulong? Site, string? SiteLocation, IReadOnlyList<string> Lines,
    IReadOnlyList<string> CallPath, string? Detail = null);

/// <summary>
/// A faithful model of kernel/jump_label.c (v4.20..v6.12, and the 6.1.y/6.6.y backports of the 6.10 refcounting) on
/// top of <see cref="X86JumpLabel"/>, running on an in-memory overlay of the image text: jump_label_init (sort by key,
/// then address; init flags), static_key_enable/disable/slow_inc/slow_dec with the kernel's reference counts and WARNs,
/// jump_label_update in the kernel's order, jump_label_can_update for init text, and jump_label_add_module. It stops at
/// the first BUG, like the kernel.
/// </summary>
public sealed class JumpLabelCore
{
    /// <summary>One loaded text image (vmlinux or a module) with its patched bytes.</summary>
    public sealed class Space
    {
        internal readonly Dictionary<ulong, byte[]> Overlay = new();
        public required KernelImage Image { get; init; }
        public required ImageSymbols Symbols { get; init; }
        public required JumpLabelReport Report { get; init; }
        public BugTable? Bugs { get; init; }
        public string? Module => Image.ModuleName;
        /// <summary>MODULE_STATE_COMING while jump_label_add_module runs.</summary>
        public bool Coming { get; internal set; }
        internal List<Entry> Entries { get; } = [];

        public string Location(ulong address) => Symbols.Names.FormatPS(address, Module);

        /// <summary>Bytes at an address as the emulated kernel sees them now.</summary>
        public void Read(ulong address, Span<byte> destination)
        {
            destination.Clear();
            Image.Read(address, destination);
            foreach (var (at, bytes) in Overlay)
                for (int i = 0; i < bytes.Length; i++)
                {
                    long d = (long)(at - address) + i;
                    if (d >= 0 && d < destination.Length) destination[(int)d] = bytes[i];
                }
        }
    }

    internal sealed class Entry
    {
        public required Space Owner { get; init; }
        public required ulong Code { get; init; }
        public required ulong Target { get; init; }
        public required Key Key { get; init; }
        public required bool Branch { get; init; }
        public bool Init { get; set; }
    }

    /// <summary>struct static_key as the emulation tracks it.</summary>
    public sealed class Key
    {
        public required string Name { get; init; }
        public required ulong Address { get; init; }
        public required Space Owner { get; init; }
        /// <summary>atomic_t enabled: the reference count (-1 while the first enable is in progress).</summary>
        public int Enabled { get; internal set; }
        /// <summary>JUMP_TYPE_TRUE bit: the build-time initial value.</summary>
        public bool InitialType { get; init; }
        /// <summary>JUMP_TYPE_LINKED: module entries are chained through static_key_mod.</summary>
        public bool Linked { get; internal set; }
        internal List<Space> Mods { get; } = [];
        /// <summary>static_key_enabled(): static_key_count() > 0, where -1 counts as 1.</summary>
        public bool IsEnabled => (Enabled >= 0 ? Enabled : 1) > 0;
    }

    readonly Dictionary<(Space?, ulong), Key> _keys = new();
    readonly Dictionary<string, Key> _byName = new(StringComparer.Ordinal);
    readonly HashSet<string> _warnedOnce = [];
    readonly InstructionDecoder _decoder = new();
    readonly List<KernelEvent> _events = [];

    public Space Vmlinux { get; }
    public List<Space> Modules { get; } = [];
    public SystemState State { get; set; } = SystemState.Scheduling;
    /// <summary>True after a BUG: the emulated kernel is dead.</summary>
    public bool Halted { get; private set; }
    /// <summary>Record a BUG and go on with the next site instead of stopping (the real kernel would be dead).</summary>
    public bool KeepGoing { get; set; }
    /// <summary>v6.10+ (and 6.1.y/6.6.y backports): static_key_fast_inc_not_disabled / static_key_dec_not_one.</summary>
    public bool ModernRefcount { get; }
    public IReadOnlyList<KernelEvent> Events => _events;
    public IEnumerable<Key> Keys => _keys.Values;
    /// <summary>CPU and PID printed in WARNING lines (the boot CPU and init's PID during initcalls).</summary>
    public (int Cpu, int Pid) Context { get; set; } = (0, 1);

    JumpLabelCore(Space vmlinux, bool modernRefcount)
    {
        Vmlinux = vmlinux;
        ModernRefcount = modernRefcount;
    }

    /// <summary>Boots the model: jump_label_init over vmlinux's table (sort by key then address, set init flags).</summary>
    public static JumpLabelCore Init(KernelImage image, ImageSymbols symbols, JumpLabelReport report, BugTable? bugs, bool? modernRefcount = null)
    {
        if (report.Era == null || report.Bounds == null)
            throw new InvalidOperationException($"no jump table to emulate: {report.Absent}");
        var space = new Space { Image = image, Symbols = symbols, Report = report, Bugs = bugs };
        // The refcounting generation is read from the image: only v6.10+ and its backports have these functions.
        bool modern = modernRefcount ?? (symbols.Names.Contains("static_key_dec_not_one") || symbols.Names.Contains("static_key_fast_inc_not_disabled"));
        var core = new JumpLabelCore(space, modern);
        core.AddEntries(space);
        foreach (var e in space.Entries)
        {
            // jump_label_init: init_section_contains(code, 1) decides the init flag.
            e.Init = image.SectionAt(e.Code) is { } s && s.Name.StartsWith(".init", StringComparison.Ordinal);
        }
        return core;
    }

    void AddEntries(Space space)
    {
        var report = space.Report;
        foreach (var site in report.Sites)
        {
            var info = report.Keys[site.KeyIndex];
            Key key;
            if (info.External)
            {
                // A module's key defined in vmlinux: resolve it by name against vmlinux.
                if (!_byName.TryGetValue(info.Name, out key!))
                    throw new ImageFormatException(space.Image.Path, $"key {info.Name} is not defined in {Vmlinux.Image.Path}");
            }
            else key = KeyFor(space, info);
            space.Entries.Add(new Entry { Owner = space, Code = site.Entry.Code, Target = site.Entry.Target, Key = key, Branch = site.Entry.Branch });
        }
        // jump_label_sort_entries: by key, then by code (kernel/jump_label.c:jump_label_cmp).
        space.Entries.Sort((a, b) =>
        {
            int c = a.Key.Address.CompareTo(b.Key.Address);
            if (c == 0) c = string.CompareOrdinal(a.Key.Owner.Module, b.Key.Owner.Module);
            return c != 0 ? c : a.Code.CompareTo(b.Code);
        });
    }

    Key KeyFor(Space space, StaticKeyInfo info)
    {
        var id = (space == Vmlinux ? null : space, info.Address);
        if (_keys.TryGetValue(id, out var key)) return key;
        key = new Key
        {
            Name = info.Name, Address = info.Address, Owner = space,
            Enabled = info.InitialValue == true ? 1 : 0, InitialType = info.InitialValue == true,
        };
        _keys[id] = key;
        _byName.TryAdd(info.Name, key);
        return key;
    }

    /// <summary>A key by its printed name, or NAME[i] for an element of an array of keys (<see cref="StaticKeyNames"/>).</summary>
    public Key? FindKey(string name) => _byName.GetValueOrDefault(name) ?? _byName.GetValueOrDefault(StaticKeyNames.Canonical(name));

    /// <summary>Every key's printed name.</summary>
    public IEnumerable<string> KeyNames => _byName.Keys;

    // --- static_key API -------------------------------------------------------------------------------------------

    /// <summary>static_key_enable(): 0 → 1 with an update; WARN_ON_ONCE when already enabled with a count other than 1.</summary>
    public void Enable(Key key)
    {
        var op = $"static_key_enable(&{key.Name})";
        string[] path = ["static_key_enable", "static_key_enable_cpuslocked"];
        Operation(op, key);
        if (key.Enabled > 0)
        {
            if (key.Enabled != 1) Warn(op, key, path, "enable-refcount", $"enabled is {key.Enabled}, not 1");
            return;
        }
        if (key.Enabled == 0)
        {
            key.Enabled = -1;
            Update(op, key, path);
            if (!Halted) key.Enabled = 1;
        }
    }

    /// <summary>Number of BUG events so far.</summary>
    public int Bugs => _events.Count(e => e.Kind == EventKind.Bug);
    public int Warnings => _events.Count(e => e.Kind == EventKind.Warning);

    /// <summary>static_key_disable(): 1 → 0 with an update; WARN_ON_ONCE when the count is neither 1 nor 0.</summary>
    public void Disable(Key key)
    {
        var op = $"static_key_disable(&{key.Name})";
        string[] path = ["static_key_disable", "static_key_disable_cpuslocked"];
        Operation(op, key);
        if (key.Enabled != 1)
        {
            if (key.Enabled != 0) Warn(op, key, path, "disable-refcount", $"enabled is {key.Enabled}, not 0");
            return;
        }
        key.Enabled = 0;
        Update(op, key, path);
    }

    /// <summary>static_key_slow_inc() / static_branch_inc(): a reference; the 0 → 1 transition patches.</summary>
    public void SlowInc(Key key)
    {
        var op = $"static_key_slow_inc(&{key.Name})";
        string[] path = ["static_key_slow_inc", "static_key_slow_inc_cpuslocked"];
        Operation(op, key);
        if (key.Enabled > 0) { key.Enabled++; return; }
        if (key.Enabled == 0)
        {
            key.Enabled = -1;
            Update(op, key, path);
            if (!Halted) key.Enabled = 1;
            return;
        }
        // -1 cannot be observed with the mutex held (single-threaded model).
        if (ModernRefcount) Warn(op, key, path, "inc-in-progress", "enabled is -1");
    }

    /// <summary>static_key_slow_dec() / static_branch_dec(): drops a reference; the 1 → 0 transition patches.</summary>
    public void SlowDec(Key key)
    {
        var op = $"static_key_slow_dec(&{key.Name})";
        Operation(op, key);
        if (ModernRefcount)
        {
            // static_key_dec_not_one (kernel/jump_label.c, 6.1.y backport of v6.10).
            string[] fast = ["static_key_slow_dec", "__static_key_slow_dec", "__static_key_slow_dec_cpuslocked", "static_key_dec_not_one"];
            if (key.Enabled < 0) Warn(op, key, fast, "dec-negative", $"enabled is {key.Enabled}");
            if (key.Enabled == 0) { Warn(op, key, fast, "dec-underflow", "enabled is 0: more decrements than increments"); return; }
            if (key.Enabled > 1) { key.Enabled--; return; }
            key.Enabled = 0;
            Update(op, key, ["static_key_slow_dec", "__static_key_slow_dec", "__static_key_slow_dec_cpuslocked"]);
            return;
        }
        // v4.20..v6.9: val = atomic_fetch_add_unless(&key->enabled, -1, 1); WARN(val < 0, "jump label: negative count!").
        int val = key.Enabled;
        if (val != 1)
        {
            key.Enabled = val - 1;
            if (val < 0)
                Warn(op, key, ["static_key_slow_dec", "__static_key_slow_dec", "__static_key_slow_dec_cpuslocked"], "dec-negative-count", $"enabled was {val}",
                    ConsoleLines.NegativeCount);
            return;
        }
        key.Enabled = 0;
        Update(op, key, ["static_key_slow_dec", "__static_key_slow_dec", "__static_key_slow_dec_cpuslocked"]);
    }

    /// <summary>Marks the end of boot (system_state = SYSTEM_RUNNING after free_initmem): init-text sites are no longer patched.</summary>
    public void FinishBoot()
    {
        State = SystemState.Running;
        _events.Add(new KernelEvent(EventKind.Note, "system_state = SYSTEM_RUNNING", null, null, null, [], [],
            "init text freed: its sites are skipped from now on"));
    }

    /// <summary>
    /// jump_label_add_module (MODULE_STATE_COMING): sorts the module's entries, sets init flags, links keys defined
    /// elsewhere and patches at once every site whose key already left its initial state.
    /// </summary>
    public void LoadModule(KernelImage image, ImageSymbols symbols, JumpLabelReport report, BugTable? bugs)
    {
        var space = new Space { Image = image, Symbols = symbols, Report = report, Bugs = bugs, Coming = true };
        Modules.Add(space);
        var op = $"load module {image.ModuleName}";
        _events.Add(new KernelEvent(EventKind.Operation, op, null, null, null, [], ["load_module", "jump_label_module_notify", "jump_label_add_module"]));
        AddEntries(space);
        foreach (var e in space.Entries)
            e.Init = image.SectionAt(e.Code) is { } s && s.Name.StartsWith(".init", StringComparison.Ordinal);
        Key? previous = null;
        for (int i = 0; i < space.Entries.Count && !Halted; i++)
        {
            var e = space.Entries[i];
            if (e.Key == previous) continue;
            previous = e.Key;
            if (e.Key.Owner == space) continue;
            if (!e.Key.Linked) { e.Key.Linked = true; e.Key.Mods.Add(e.Key.Owner); }
            e.Key.Mods.Insert(0, space);
            // Only update if we've changed from our initial state.
            if (JumpLabelTypeOf(e) != InitTypeOf(e))
                UpdateRange(op, e.Key, space, i, init: true, ["load_module", "jump_label_module_notify", "jump_label_add_module"]);
        }
        space.Coming = false;
    }

    // --- internals ---------------------------------------------------------------------------------------------------

    static JumpLabelType JumpLabelTypeOf(Entry e) => (e.Key.IsEnabled ^ e.Branch) ? JumpLabelType.Jmp : JumpLabelType.Nop;
    static JumpLabelType InitTypeOf(Entry e) => (e.Key.InitialType ^ e.Branch) ? JumpLabelType.Jmp : JumpLabelType.Nop;

    void Operation(string op, Key key) =>
        _events.Add(new KernelEvent(EventKind.Operation, op, key.Name, null, null, [], [], $"enabled {key.Enabled}"));

    /// <summary>jump_label_update: linked keys walk every space; otherwise the key's run of entries in its own table.</summary>
    void Update(string op, Key key, string[] callers)
    {
        if (Halted) return;
        string[] path = [.. callers, "jump_label_update"];
        if (key.Linked)
        {
            foreach (var space in key.Mods.ToList())
            {
                int first = space.Entries.FindIndex(x => x.Key == key);
                bool init = space == Vmlinux ? State < SystemState.Running : space.Coming;
                if (first >= 0) UpdateRange(op, key, space, first, init, [.. path, "__jump_label_mod_update"]);
                if (Halted) return;
            }
            return;
        }
        var owner = key.Owner;
        int start = owner.Entries.FindIndex(x => x.Key == key);
        if (start < 0) return; // a key without users
        UpdateRange(op, key, owner, start, owner == Vmlinux ? State < SystemState.Running : owner.Coming, path);
    }

    /// <summary>__jump_label_update (HAVE_JUMP_LABEL_BATCH on x86): the key's consecutive entries, in address order.</summary>
    void UpdateRange(string op, Key key, Space space, int start, bool init, string[] callers)
    {
        bool booting = State == SystemState.Booting;
        var era = space.Report.Era!;
        // v5.14+ patches through __jump_label_patch; up to v5.13 the check is __jump_label_set_jump_code (bug_at inlined).
        string patcher = era.VariableLength ? "__jump_label_patch" : "__jump_label_set_jump_code";
        string[] path = [.. callers, "__jump_label_update", "arch_jump_label_transform_queue",
            .. booting ? new[] { "arch_jump_label_transform", "jump_label_transform", "__jump_label_transform" } : [], patcher];
        Span<byte> site = stackalloc byte[16];
        for (int i = start; i < space.Entries.Count && space.Entries[i].Key == key; i++)
        {
            var e = space.Entries[i];
            string location = space.Location(e.Code);
            // jump_label_can_update: init text only while init; code outside kernel text is skipped with a WARN_ONCE.
            if (!init && e.Init)
            {
                _events.Add(new KernelEvent(EventKind.Skipped, op, key.Name, e.Code, location, [], path, "init text after boot: not patched"));
                continue;
            }
            if (!(space.Image.SectionAt(e.Code) is { IsExecutable: true }))
            {
                if (!e.Init)
                    WarnOnce(op, key, path, "cant-patch", KernelMessages.CantPatch(location), $"site {location} is not kernel text");
                continue;
            }
            var type = JumpLabelTypeOf(e);
            space.Read(e.Code, site);
            var outcome = X86JumpLabel.Patch(era, _decoder, site, e.Code, e.Target, type, location);
            if (!outcome.Ok)
            {
                Bug(op, key, e, location, outcome, path);
                if (Halted) return;
                continue;
            }
            var before = site[..outcome.Size].ToArray();
            space.Overlay[e.Code] = outcome.NewBytes;
            _events.Add(new KernelEvent(EventKind.Patched, op, key.Name, e.Code, location, [], path,
                $"{X86Code.Hex(before)} -> {X86Code.Hex(outcome.NewBytes)} ({(type == JumpLabelType.Jmp ? "JMP" : "NOP")})"));
        }
    }

    void Bug(string op, Key key, Entry e, string location, PatchOutcome outcome, string[] path)
    {
        var lines = new List<string>(outcome.KernelLines) { ConsoleLines.CutHere };
        string? rip = null;
        int line = outcome.BugLine;
        // The patcher is vmlinux code even for module sites: its BUG's file:line and RIP come from vmlinux's __bug_table.
        var bug = Vmlinux.Bugs?.In(outcome.BugFile ?? "", outcome.Function, Vmlinux.Symbols.Names)
            .Where(b => !b.IsWarning && (line == 0 || b.Line == line)).OrderBy(b => b.Line).FirstOrDefault();
        if (bug is { File: not null } b)
        {
            line = b.Line;
            rip = Vmlinux.Location(b.Address);
        }
        if (outcome.BugFile != null && line > 0) lines.Add(KernelMessages.Bug(outcome.BugFile, line));
        if (rip != null) lines.Add(ConsoleLines.Rip(rip));
        Halted = !KeepGoing;
        var trimmed = outcome.Function == "arch_jump_entry_size" ? [.. path[..^1], "__jump_label_patch", "arch_jump_entry_size"] : path;
        _events.Add(new KernelEvent(EventKind.Bug, op, key.Name, e.Code, location, lines, trimmed,
            outcome.Function == "arch_jump_entry_size" ? $"the instruction at {location} is {outcome.Size} bytes long, not 2 or 5" : null));
    }

    void WarnOnce(string op, Key key, string[] path, string warning, string message, string detail)
    {
        if (!_warnedOnce.Add(warning)) return;
        Warn(op, key, path, warning, detail, message);
    }

    /// <summary>
    /// A WARN of kernel/jump_label.c (see <see cref="KernelMessages.JumpLabelWarnings"/>): its file:line and the %pS of
    /// its ud2 come from the image's own __bug_table, falling back to the line in Debian's 6.1.y source.
    /// </summary>
    void Warn(string op, Key key, string[] path, string warning, string detail, string? message = null)
    {
        const string file = "kernel/jump_label.c";
        var (function, index, fallbackLine) = KernelMessages.JumpLabelWarnings[warning];
        var sites = Vmlinux.Bugs?.In(file, function, Vmlinux.Symbols.Names).Where(b => b.IsWarning).OrderBy(b => b.Line).ToList();
        // STATIC_KEY_CHECK_USE() is the first WARN of enable/disable; skip it when counting.
        if (sites != null && function is "static_key_enable_cpuslocked" or "static_key_disable_cpuslocked" && sites.Count > 1) sites.RemoveAt(0);
        var site = sites != null && index < sites.Count ? sites[index] : (BugEntry?)null;
        var lines = new List<string> { ConsoleLines.CutHere };
        if (message != null) lines.Add(message);
        string where = site is { } s ? Vmlinux.Location(s.Address) : function;
        int line = site?.Line ?? fallbackLine;
        lines.Add(line > 0 ? ConsoleLines.Warning(Context.Cpu, Context.Pid, file, line, where)
            : $"WARNING: CPU: {Context.Cpu} PID: {Context.Pid} at {file} {where}");
        _events.Add(new KernelEvent(EventKind.Warning, op, key.Name, null, null, lines, path, detail));
    }
}
