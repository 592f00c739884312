using Iced.Intel;
using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Emulation;

/// <summary>A function that calls this one directly.</summary>
public sealed record KeyUserCaller(string Function, string Location, bool InitText);

/// <summary>An instruction that takes a static key's address, and what the function does with it.</summary>
/// <param name="BootPath">How this code is reached during a normal boot, from the code outwards ("timer_update_keys",
/// "work queued by timers_update_nohz", ..., "tick_sched_timer (the periodic tick)"); null when no path was found.</param>
/// <param name="Through">For a key whose address is kept in data (a table of pointers to keys), the data this code passes
/// on instead of the key ("apparmor_hooks"); null when the code takes the key's own address.</param>
/// <param name="PointerChange">With <paramref name="Through"/>: the function it is passed to changes keys through pointers
/// (calls static_key_enable and the like, itself or within three calls, with an address it did not take from its code).</param>
public sealed record KeyUser(ulong KeyAddress, string Function, ulong Address, string Location, string? Operation, bool InitText,
    IReadOnlyList<KeyUserCaller> Callers, IReadOnlyList<string>? BootPath = null, string? Through = null, bool PointerChange = false)
{
    /// <summary>True when the key is passed to a function that changes it (static_key_enable/disable/slow_inc/slow_dec...,
    /// and DO_ONCE's __do_once_done, which disables the once key from a work item).</summary>
    public bool Flips => Through != null ? PointerChange : Operation != null && (ChangesKey(Operation)
        || Operation.StartsWith("__do_once", StringComparison.Ordinal));

    /// <summary>static_key_enable, static_key_slow_inc_cpuslocked, __static_key_slow_dec_deferred, ...</summary>
    public static bool ChangesKey(string function) => function.Contains("enable") || function.Contains("disable") || function.Contains("_inc")
        || function.Contains("_dec");

    /// <summary>True when this code runs during a normal boot: a path of direct calls and queued work leads to it from
    /// init text or from code every boot runs (<see cref="BootPath"/>).</summary>
    public bool RunsAtBoot => BootPath != null;
}

/// <summary>
/// Finds the code that takes a key's address: RIP-relative operands and sign-extended 32-bit immediates (the
/// kernel code model's "mov $sym, %rdi"), in relocated bytes for unlinked objects. Every function is decoded from its
/// symbol to the next one, so nothing is found in the middle of an instruction. A key that is an element of an array of
/// keys (nf_hooks_needed[NFPROTO_NUMPROTO][NF_MAX_HOOKS]) is indexed from the array's start: a reference to the start
/// counts for every element.
///
/// Whether the code runs at boot follows the paths the kernel takes (<see cref="BootReach"/>): direct calls and tail
/// calls, and work queued for later — a work item, delayed work or timer whose callback is the function (a static
/// DECLARE_WORK/DEFINE_TIMER object holding its address, or its address passed next to a call that queues it), a
/// kthread started on it, a pernet init or notifier callback registered — from init text or from the code every boot
/// runs: kernel_init, rest_init and the periodic tick.
/// </summary>
public static class KeyUsers
{
    const int StructStaticKeySize = 16;
    const int LookAhead = 8;

    /// <summary>Functions that take a work item, timer or thread function and run it later (include/linux/workqueue.h,
    /// timer.h, kthread.h, rcupdate.h, smp.h, stop_machine.h, async.h, irq_work.h).</summary>
    static readonly string[] QueueingFunctions =
    [
        "queue_work_on", "queue_work_node", "queue_delayed_work_on", "mod_delayed_work_on", "queue_rcu_work", "execute_in_process_context",
        "schedule_on_each_cpu", "add_timer", "add_timer_on", "mod_timer", "timer_reduce", "hrtimer_start_range_ns", "kthread_create_on_node",
        "kthread_create_on_cpu", "kthread_create_worker", "kthread_queue_work", "kthread_queue_delayed_work", "call_rcu", "irq_work_queue",
        "irq_work_queue_on", "smp_call_function", "smp_call_function_single", "smp_call_function_many", "on_each_cpu_cond_mask",
        "stop_machine", "stop_one_cpu", "stop_one_cpu_nowait", "async_schedule_node", "async_schedule_node_domain",
    ];

    /// <summary>Registrations that run a pernet_operations' init for init_net before they return (net/core/net_namespace.c).</summary>
    static readonly string[] PernetFunctions = ["register_pernet_subsys", "register_pernet_device"];

    /// <summary>Code every boot runs besides init text, and why (init/main.c, kernel/time/tick-*.c).</summary>
    static readonly (string Name, string Why)[] BootRoots =
    [
        ("kernel_init", "the first process"), ("rest_init", "start_kernel's last step"),
        ("tick_handle_periodic", "the periodic tick"), ("tick_sched_timer", "the periodic tick"), ("tick_nohz_handler", "the periodic tick"),
    ];

    /// <summary>How far back a boot path is searched (calls and queued work, from the code that changes the key).</summary>
    public const int BootDepth = 8;

    /// <summary>
    /// A path goes on through a function's callers only while it has at most this many (the code that changes the key
    /// excepted; a caller in init text always counts): a function called from many places may well run at boot from one
    /// of them, but that says nothing about the path through it. Measured on Debian 6.1.0-53 against a real boot (before
    /// notifiers were followed): 2 finds 11 of the 13 keys that flipped; 3, 4 and 6 find no more and call more keys that
    /// did not flip "runs at boot". With every rule, 12 of the 13 (the miss: udp6_ehashfn's DO_ONCE key).
    /// A path says the code may run at boot, not that it changes the key there: init code that changes a key only on
    /// some CPUs, hypervisors or command lines has one too (on the cloud kernels under qemu64, 47 of 130 (5.10), 63 of
    /// 181 (6.1) and 279 of 393 (6.12, inactive LSMs' slots) keys that did not flip).
    /// </summary>
    public const int MaxCallers = 2;

    public static Dictionary<ulong, List<KeyUser>> Find(KernelImage image, ImageSymbols symbols, IReadOnlyCollection<ulong> keys)
    {
        var result = keys.ToDictionary(k => k, _ => new List<KeyUser>());
        if (keys.Count == 0) return result;
        var sortedKeys = keys.Order().ToArray();
        var names = symbols.Names;
        var arrays = KeyArrays(names, sortedKeys);
        var functionStarts = names.Entries.Where(e => e.IsText).Select(e => e.Address).ToHashSet();
        // Notifier chain registrations (register_reboot_notifier, blocking_notifier_chain_register, crypto_register_notifier, ...).
        var notifiers = names.Entries.Where(e => e.IsText && e.Name.Contains("register") && !e.Name.Contains("unregister")
            && e.Name.Contains("notifier")).Select(e => e.Address).ToHashSet();
        ulong Address(string name) => symbols.TryFind(name, out ulong a, out _) ? a : 0;
        var pernet = PernetFunctions.Select(Address).Where(a => a != 0).ToHashSet();
        var queueing = QueueingFunctions.Select(Address).Where(a => a != 0).ToHashSet();
        var found = new List<(ulong Key, ulong Function, ulong At, string? Operation, string? Through)>();
        var held = HeldKeys.Find(image, names, sortedKeys);
        // Functions that change a key whose address they did not take in their own code (lsm_static_call_init's
        // static_branch_enable(scall->active)).
        var changers = names.Entries.Where(e => e.IsText && (e.Name.StartsWith("static_key_", StringComparison.Ordinal)
            || e.Name.StartsWith("__static_key_", StringComparison.Ordinal)) && KeyUser.ChangesKey(e.Name)).Select(e => e.Address).ToHashSet();
        var pointerChangers = new HashSet<ulong>();
        // Direct call/jmp edges (target, caller function), kept from the same pass so the text is decoded once; function
        // addresses each function takes, the functions that call a queueing function, and the data objects passed to one
        // (their address taken at most LookAhead instructions before the call).
        var edges = new List<(ulong Target, ulong Caller)>(1 << 16);
        var functionsTaken = new List<(ulong Address, ulong Function)>(1 << 14);
        var objectsPassed = new List<(ulong Address, ulong Function, Handover How)>();
        var queues = new HashSet<ulong>();
        // One window of key references and one of data objects, reused for every function (the visits are sequential).
        var window = new Queue<(ulong Key, ulong At, string? Through)>();
        var objects = new Queue<(ulong Address, int At)>();
        ForEachFunction(image, names, (function, decoder, end) =>
        {
            window.Clear();
            objects.Clear();
            int sinceReference = 0, counter = 0;
            while (decoder.IP < end)
            {
                decoder.Decode(out var instruction);
                if (instruction.IsInvalid) break;
                bool call = instruction.FlowControl is FlowControl.Call or FlowControl.UnconditionalBranch && instruction.Op0Kind == OpKind.NearBranch64
                    && (instruction.NearBranch64 < function || instruction.NearBranch64 >= end);
                counter++;
                while (objects.Count > 0 && counter - objects.Peek().At > LookAhead) objects.Dequeue();
                if (call)
                {
                    ulong target = instruction.NearBranch64;
                    edges.Add((target, function));
                    var how = queueing.Contains(target) ? Handover.Queue : pernet.Contains(target) ? Handover.Pernet
                        : notifiers.Contains(target) ? Handover.Notifier : Handover.None;
                    if (how == Handover.Queue) queues.Add(function);
                    if (how != Handover.None)
                        foreach (var (o, _) in objects) objectsPassed.Add((o, function, how));
                }
                if (window.Count > 0 && ++sinceReference > LookAhead)
                {
                    foreach (var (k, at, through) in window) found.Add((k, function, at, null, through));
                    window.Clear();
                }
                if (call && window.Count == 0 && changers.Contains(instruction.NearBranch64)) pointerChangers.Add(function);
                // A call, or a tail call (jmp static_key_enable), takes the keys loaded just before it.
                if (window.Count > 0 && call)
                {
                    string? callee = names.FunctionAt(instruction.NearBranch64);
                    foreach (var (k, at, through) in window) found.Add((k, function, at, callee, through));
                    window.Clear();
                }
                if (call || AddressOperand(instruction) is not { } address) continue;
                var hit = Referenced(address, sortedKeys, arrays);
                if (hit.Length > 0)
                {
                    foreach (var key in hit) window.Enqueue((key, instruction.IP, null));
                    sinceReference = 0;
                }
                else if (held != null && held.TryGet(address, out var heldKeys, out var through))
                {
                    foreach (var key in heldKeys) window.Enqueue((key, instruction.IP, through));
                    sinceReference = 0;
                }
                else if (functionStarts.Contains(address)) functionsTaken.Add((address, function));
                else if (image.SectionAt(address) is { IsWritable: true, IsExecutable: false } data && !data.Name.Contains("percpu"))
                    objects.Enqueue((address, counter));
            }
            foreach (var (k, at, through) in window) found.Add((k, function, at, null, through));
        });
        if (found.Count == 0) return result;

        var callersOf = new Dictionary<ulong, HashSet<ulong>>();
        foreach (var (target, caller) in edges)
        {
            if (!callersOf.TryGetValue(target, out var set)) callersOf[target] = set = [];
            set.Add(caller);
        }
        var reach = new BootReach(image, names, callersOf, QueuedBy(image, functionStarts, functionsTaken, objectsPassed, queues), BootRoots
            .Select(r => (Address: Address(r.Name), r.Name, r.Why)).Where(r => r.Address != 0)
            .ToDictionary(r => r.Address, r => $"{r.Name} ({r.Why})"));

        var calleesOf = new Dictionary<ulong, List<ulong>>();
        foreach (var (target, caller) in edges)
        {
            if (!calleesOf.TryGetValue(caller, out var list)) calleesOf[caller] = list = [];
            list.Add(target);
        }
        var pointerChange = new Dictionary<ulong, bool>();
        bool ChangesThroughPointer(ulong callee) => pointerChange.TryGetValue(callee, out bool known) ? known
            : pointerChange[callee] = Reaches(callee, pointerChangers, calleesOf, 3);

        foreach (var (key, function, at, operation, through) in found)
        {
            ulong callee = 0;
            bool changes = through != null && operation != null && symbols.TryFind(operation, out callee, out _) && ChangesThroughPointer(callee);
            var list = (callersOf.GetValueOrDefault(function) ?? []).Select(c => new KeyUserCaller(names.FunctionAt(c) ?? $"0x{c:x}",
                    names.FormatPS(c, image.ModuleName), IsInit(image, c)))
                .OrderBy(c => c.Function, StringComparer.Ordinal).ToList();
            result[key].Add(new KeyUser(key, names.FunctionAt(function) ?? $"0x{function:x}", at, names.FormatPS(at, image.ModuleName), operation,
                IsInit(image, at), list, reach.PathFrom(function, IsInit(image, at)), through, changes));
        }
        return result;
    }

    enum Handover : byte { None, Queue, Pernet, Notifier }

    // Code run for later, or by a registration: function G runs after F queues it when F takes G's address and calls a
    // queueing function (INIT_WORK then queue_work, kthread_run), or passes a queueing function a static work item,
    // delayed work or timer whose callback (at +24 in struct work_struct, delayed_work and timer_list) is G; G runs
    // inside register_pernet_subsys/device when F registers a static pernet_operations whose init (at +16) is G: it is
    // called for init_net before the registration returns; G runs when a notifier chain fires after F registers a static
    // notifier_block whose notifier_call (at +0) is G (crypto_register_notifier: cryptomgr_notify, on every algorithm
    // registered at boot). The offsets hold from v4.15 (timer_list's callback after expires) through v6.12, without
    // CONFIG_LOCKDEP (Debian's kernels), which adds a lockdep_map to work_struct after func and to timer_list at its end.
    static Dictionary<ulong, List<(ulong Queuer, string How)>> QueuedBy(KernelImage image, HashSet<ulong> functionStarts,
        List<(ulong Address, ulong Function)> functionsTaken, List<(ulong Address, ulong Function, Handover How)> objectsPassed, HashSet<ulong> queues)
    {
        var queuedBy = new Dictionary<ulong, List<(ulong, string)>>();
        void Add(ulong callback, ulong queuer, string how)
        {
            if (!queuedBy.TryGetValue(callback, out var list)) queuedBy[callback] = list = [];
            list.Add((queuer, how));
        }
        foreach (var (address, function) in functionsTaken)
            if (queues.Contains(function)) Add(address, function, "queued by");
        foreach (var (address, function, how) in objectsPassed)
        {
            var (offset, label) = how switch
            {
                Handover.Pernet => (16UL, "pernet init registered by"),
                Handover.Notifier => (0UL, "notifier registered by"),
                _ => (24UL, "work queued by"),
            };
            if (image.TryReadU64(address + offset, out ulong callback) && functionStarts.Contains(callback)) Add(callback, function, label);
        }
        return queuedBy;
    }

    /// <summary>Backward search from the code that changes a key to init text or a boot root, over direct callers and queuers.</summary>
    sealed class BootReach(KernelImage image, SymbolTable names, Dictionary<ulong, HashSet<ulong>> callersOf,
        Dictionary<ulong, List<(ulong Queuer, string How)>> queuedBy, Dictionary<ulong, string> roots)
    {
        readonly Dictionary<ulong, IReadOnlyList<string>?> _memo = new();

        public IReadOnlyList<string>? PathFrom(ulong function, bool initText)
        {
            if (initText) return [$"{Name(function)} (init text)"];
            if (_memo.TryGetValue(function, out var known)) return known;
            // Breadth first, so the path shown is a shortest one.
            var previous = new Dictionary<ulong, (ulong Next, string How)> { [function] = (0, "") };
            var frontier = new List<ulong> { function };
            ulong found = 0;
            for (int depth = 0; depth <= BootDepth && frontier.Count > 0 && found == 0; depth++)
            {
                var next = new List<ulong>();
                foreach (ulong f in frontier)
                {
                    if (roots.ContainsKey(f) || IsInit(image, f)) { found = f; break; }
                    if (depth == BootDepth) continue;
                    // A caller in init text always counts; other callers are followed only from a function with few.
                    var callers = callersOf.GetValueOrDefault(f) ?? [];
                    bool few = f == function || callers.Count <= MaxCallers;
                    foreach (ulong c in callers)
                        if ((few || IsInit(image, c)) && previous.TryAdd(c, (f, "called by"))) next.Add(c);
                    foreach (var (q, how) in queuedBy.GetValueOrDefault(f) ?? [])
                        if (previous.TryAdd(q, (f, how))) next.Add(q);
                }
                frontier = next;
            }
            IReadOnlyList<string>? path = null;
            if (found != 0)
            {
                var steps = new List<string>();
                for (ulong at = found; at != function; at = previous[at].Next) steps.Add($"{previous[at].How} {Label(at)}");
                steps.Reverse();
                path = [Label(function), .. steps];
            }
            _memo[function] = path;
            return path;
        }

        string Name(ulong f) => names.FunctionAt(f) ?? $"0x{f:x}";
        string Label(ulong f) => roots.TryGetValue(f, out var why) ? why : IsInit(image, f) ? $"{Name(f)} (init text)" : Name(f);
    }

    // A function in the set, within depth direct calls from start.
    static bool Reaches(ulong start, HashSet<ulong> set, Dictionary<ulong, List<ulong>> calleesOf, int depth)
    {
        var seen = new HashSet<ulong> { start };
        var frontier = new List<ulong> { start };
        for (int d = 0; d <= depth && frontier.Count > 0; d++)
        {
            if (frontier.Any(set.Contains)) return true;
            frontier = frontier.SelectMany(f => calleesOf.GetValueOrDefault(f) ?? []).Where(seen.Add).ToList();
        }
        return false;
    }

    /// <summary>
    /// Keys whose address is kept in data rather than in code: a pointer to the key in a data symbol (the holder,
    /// static_calls_table's lsm_static_call.active in 6.12), and the data that points into a holder within one struct's
    /// reach (an LSM's security_hook_list[] pointing at static_calls_table.NAME). Code that takes the address of either
    /// hands those keys on.
    /// </summary>
    sealed class HeldKeys
    {
        const int Reach = 256;
        readonly (ulong P, ulong Key)[] _holders;
        readonly (ulong Start, ulong End, ulong[] Keys, string Name)[] _ranges;

        readonly ulong[] _ps;

        HeldKeys((ulong, ulong)[] holders, (ulong, ulong, ulong[], string)[] ranges)
        {
            _holders = holders;
            _ranges = ranges;
            _ps = holders.Select(h => h.Item1).ToArray();
        }

        public static HeldKeys? Find(KernelImage image, SymbolTable names, ulong[] sortedKeys)
        {
            if (image.Elf.IsRelocatable) return null;
            var keySet = sortedKeys.ToHashSet();
            var sections = image.Elf.Sections.Where(s => s.IsAllocated && !s.IsExecutable && s.HasFileBytes && !s.Name.Contains("percpu")
                && s.Size >= 8).ToList();
            var holders = new List<(ulong P, ulong Key)>();
            foreach (var section in sections)
                Words(image, section, (at, word) => { if (keySet.Contains(word)) holders.Add((at, word)); });
            if (holders.Count == 0) return null;
            var sorted = holders.OrderBy(h => h.P).ToArray();
            var ps = sorted.Select(h => h.P).ToArray();
            ulong low = ps[0] > Reach ? ps[0] - Reach : 0, high = ps[^1];
            ulong[] KeysFrom(ulong at, ulong symbol)
            {
                int i = Array.BinarySearch(ps, at);
                if (i < 0) i = ~i;
                var keys = new List<ulong>();
                for (; i < ps.Length && ps[i] - at < Reach && Symbol(names, ps[i]) == symbol; i++) keys.Add(sorted[i].Key);
                return keys.ToArray();
            }
            // The holders (D) by their data symbols, and the data pointing into them (E).
            var ranges = new Dictionary<ulong, (ulong End, string Name)>();
            foreach (var (p, _) in sorted)
                if (names.Lookup(p) is { } hit) ranges.TryAdd(p - hit.Offset, (p - hit.Offset + hit.Size, hit.Symbol.Name));
            var holderSymbols = ranges.Keys.ToHashSet();
            // Every word pointing into a holder, by the data symbol it lies in; the keys it hands on are the holder's slots
            // from there, as many as there are pointers to the same place: users take the slots in order
            // (lsm_static_call_init gives each LSM implementing a hook the first unused one).
            var pointers = new List<(ulong E, ulong End, string Name, ulong Target, ulong Holder)>();
            foreach (var section in sections)
                Words(image, section, (at, word) =>
                {
                    if (word < low || word > high || Symbol(names, word) is not (var target and not 0) || !holderSymbols.Contains(target)) return;
                    if (names.Lookup(at) is not { } e || holderSymbols.Contains(at - e.Offset)) return;
                    pointers.Add((at - e.Offset, at - e.Offset + e.Size, e.Symbol.Name, word, target));
                });
            var users = pointers.GroupBy(x => x.Target).ToDictionary(g => g.Key, g => g.Count());
            var pointing = new Dictionary<ulong, (ulong End, HashSet<ulong> Keys, string Name)>();
            foreach (var (e, end, name, target, holder) in pointers)
            {
                var keys = KeysFrom(target, holder).Take(users[target]).ToArray();
                if (keys.Length == 0) continue;
                if (!pointing.TryGetValue(e, out var r)) pointing[e] = r = (end, [], name);
                r.Keys.UnionWith(keys);
            }
            var all = ranges.Select(r => (r.Key, r.Value.End, Array.Empty<ulong>(), r.Value.Name))
                .Concat(pointing.Select(r => (r.Key, r.Value.End, r.Value.Keys.Order().ToArray(), r.Value.Name)))
                .OrderBy(r => r.Key).ToArray();
            return new HeldKeys(sorted, all);
        }

        static ulong Symbol(SymbolTable names, ulong address) => names.Lookup(address) is { } hit ? address - hit.Offset : 0;

        static void Words(KernelImage image, Images.Elf.ElfSection section, Action<ulong, ulong> visit)
        {
            var bytes = image.SectionContents(section);
            ulong start = image.SectionAddress(section);
            for (int i = (int)((8 - start % 8) % 8); i + 8 <= bytes.Length; i += 8)
                visit(start + (ulong)i, System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(bytes.Slice(i, 8)));
        }

        /// <summary>The keys handed on by code taking this address: the holders from it on (D), or every key an E points at.</summary>
        public bool TryGet(ulong address, out ulong[] keys, out string name)
        {
            keys = [];
            name = "";
            int lo = 0, hi = _ranges.Length - 1, found = -1;
            while (lo <= hi)
            {
                int mid = (lo + hi) / 2;
                if (_ranges[mid].Start <= address) { found = mid; lo = mid + 1; } else hi = mid - 1;
            }
            if (found < 0 || address >= _ranges[found].End) return false;
            var r = _ranges[found];
            name = address == r.Start ? r.Name : $"{r.Name}+0x{address - r.Start:x}";
            if (r.Keys.Length > 0) keys = r.Keys;
            else
            {
                int i = Array.BinarySearch(_ps, address);
                var list = new List<ulong>();
                for (i = i < 0 ? ~i : i; i < _ps.Length && _ps[i] - address < Reach && _ps[i] < r.End; i++) list.Add(_holders[i].Key);
                keys = list.ToArray();
            }
            return keys.Length > 0;
        }
    }

    static bool IsInit(KernelImage image, ulong address) => image.SectionAt(address) is { } s && s.Name.StartsWith(".init", StringComparison.Ordinal);

    // Arrays of keys, by their start: a data symbol longer than one struct static_key that holds more than one of the keys,
    // or one of them past its first element (a key named nf_hooks_needed+0xe0 is an element, even when asked about alone).
    static Dictionary<ulong, ulong[]> KeyArrays(SymbolTable names, ulong[] keys)
    {
        var arrays = new Dictionary<ulong, ulong[]>();
        foreach (var group in keys.GroupBy(k => names.Lookup(k) is { Size: > StructStaticKeySize } hit ? hit.Symbol.Address : 0))
            if (group.Key != 0 && (group.Count() > 1 || group.Any(k => k - group.Key >= StructStaticKeySize))) arrays[group.Key] = group.Order().ToArray();
        return arrays;
    }

    // The address an instruction refers to: a RIP-relative operand, a sign-extended 32-bit or 64-bit immediate, or an
    // absolute memory operand, indexed too (the kernel code model's "mov $sym, %rdi", "lea sym(%rax), %rdi").
    static ulong? AddressOperand(in Instruction instruction)
    {
        if (instruction.IsIPRelativeMemoryOperand) return instruction.IPRelativeMemoryAddress;
        for (int i = 0; i < instruction.OpCount; i++)
        {
            var kind = instruction.GetOpKind(i);
            if (kind is OpKind.Immediate32to64 or OpKind.Immediate64 or OpKind.Immediate32)
            {
                return kind == OpKind.Immediate32 ? (ulong)(long)(int)instruction.Immediate32 : instruction.GetImmediate(i);
            }
            else if (kind == OpKind.Memory && (instruction.MemoryBase == Register.None && instruction.MemoryIndex == Register.None
                || instruction.MemoryDisplacement64 >= 0xffff_ffff_8000_0000))
                return instruction.MemoryDisplacement64;
        }
        return null;
    }

    static ulong[] Referenced(ulong address, ulong[] keys, Dictionary<ulong, ulong[]> arrays)
    {
        if (arrays.TryGetValue(address, out var elements)) return elements;
        int i = Array.BinarySearch(keys, address);
        if (i >= 0) return [keys[i]];
        i = ~i - 1;
        return i >= 0 && address - keys[i] < StructStaticKeySize ? [keys[i]] : [];
    }

    /// <summary>Decodes each text symbol's bytes, from its address to the next symbol's.</summary>
    static void ForEachFunction(KernelImage image, SymbolTable names, Action<ulong, Iced.Intel.Decoder, ulong> visit)
    {
        foreach (var section in image.Elf.Sections)
        {
            if (!section.IsExecutable || !section.HasFileBytes || section.Size == 0) continue;
            ulong start = image.SectionAddress(section), end = start + section.Size;
            var bytes = image.SectionContents(section).ToArray();
            var reader = new ByteArrayCodeReader(bytes);
            var decoder = Iced.Intel.Decoder.Create(64, reader, start);
            var functions = names.Entries.Where(e => e.IsText && e.Address >= start && e.Address < end).Select(e => e.Address).Distinct().ToArray();
            for (int i = 0; i < functions.Length; i++)
            {
                ulong f = functions[i], next = i + 1 < functions.Length ? functions[i + 1] : end;
                if (next - f > 1 << 20) next = f + (1 << 20);
                reader.Position = (int)(f - start);
                decoder.IP = f;
                visit(f, decoder, next);
            }
        }
    }
}
