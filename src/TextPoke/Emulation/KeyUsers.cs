using Iced.Intel;
using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Emulation;

/// <summary>A function that calls this one directly.</summary>
public sealed record KeyUserCaller(string Function, string Location, bool InitText);

/// <summary>An instruction that takes a static key's address, and what the function does with it.</summary>
public sealed record KeyUser(ulong KeyAddress, string Function, ulong Address, string Location, string? Operation, bool InitText,
    IReadOnlyList<KeyUserCaller> Callers)
{
    /// <summary>True when the key is passed to a function that changes it (static_key_enable/disable/slow_inc/slow_dec...).</summary>
    public bool Flips => Operation != null && (Operation.Contains("enable") || Operation.Contains("disable") || Operation.Contains("_inc")
        || Operation.Contains("_dec"));

    /// <summary>True when this code runs during boot: it, or a direct caller, is init text (initcalls, __init functions).</summary>
    public bool RunsAtBoot => InitText || Callers.Any(c => c.InitText);
}

/// <summary>
/// Finds the code that takes a key's address: RIP-relative operands and sign-extended 32-bit immediates (the
/// kernel code model's "mov $sym, %rdi"), in relocated bytes for unlinked objects. Every function is decoded from its
/// symbol to the next one, so nothing is found in the middle of an instruction.
/// </summary>
public static class KeyUsers
{
    const int StructStaticKeySize = 16;
    const int LookAhead = 8;

    public static Dictionary<ulong, List<KeyUser>> Find(KernelImage image, ImageSymbols symbols, IReadOnlyCollection<ulong> keys)
    {
        var result = keys.ToDictionary(k => k, _ => new List<KeyUser>());
        if (keys.Count == 0) return result;
        var sortedKeys = keys.Order().ToArray();
        var names = symbols.Names;
        var found = new List<(ulong Key, ulong Function, ulong At, string? Operation)>();
        // Direct call/jmp edges (target, caller function), kept from the same pass so the text is decoded once.
        var edges = new List<(ulong Target, ulong Caller)>(1 << 16);
        ForEachFunction(image, names, (function, decoder, end) =>
        {
            var window = new Queue<(ulong Key, ulong At)>();
            int sinceReference = 0;
            while (decoder.IP < end)
            {
                decoder.Decode(out var instruction);
                if (instruction.IsInvalid) break;
                if (instruction.FlowControl is FlowControl.Call or FlowControl.UnconditionalBranch && instruction.Op0Kind == OpKind.NearBranch64
                    && (instruction.NearBranch64 < function || instruction.NearBranch64 >= end))
                    edges.Add((instruction.NearBranch64, function));
                if (window.Count > 0 && ++sinceReference > LookAhead)
                {
                    foreach (var (k, at) in window) found.Add((k, function, at, null));
                    window.Clear();
                }
                if (window.Count > 0 && instruction.FlowControl == FlowControl.Call && instruction.Op0Kind == OpKind.NearBranch64)
                {
                    string? callee = names.FunctionAt(instruction.NearBranch64);
                    foreach (var (k, at) in window) found.Add((k, function, at, callee));
                    window.Clear();
                }
                ulong? hit = Referenced(instruction, sortedKeys);
                if (hit is { } key)
                {
                    window.Enqueue((key, instruction.IP));
                    sinceReference = 0;
                }
            }
            foreach (var (k, at) in window) found.Add((k, function, at, null));
        });
        if (found.Count == 0) return result;

        var wanted = found.Select(f => f.Function).ToHashSet();
        var callers = wanted.ToDictionary(f => f, _ => new HashSet<ulong>());
        foreach (var (target, caller) in edges)
            if (callers.TryGetValue(target, out var set)) set.Add(caller);

        foreach (var (key, function, at, operation) in found)
        {
            var list = callers[function].Select(c => new KeyUserCaller(names.FunctionAt(c) ?? $"0x{c:x}", names.FormatPS(c, image.ModuleName), IsInit(image,
                c)))
                .OrderBy(c => c.Function, StringComparer.Ordinal).ToList();
            result[key].Add(new KeyUser(key, names.FunctionAt(function) ?? $"0x{function:x}", at, names.FormatPS(at, image.ModuleName), operation,
                IsInit(image, at), list));
        }
        return result;
    }

    static bool IsInit(KernelImage image, ulong address) => image.SectionAt(address) is { } s && s.Name.StartsWith(".init", StringComparison.Ordinal);

    static ulong? Referenced(in Instruction instruction, ulong[] keys)
    {
        if (instruction.IsIPRelativeMemoryOperand && Match(instruction.IPRelativeMemoryAddress, keys) is { } k) return k;
        for (int i = 0; i < instruction.OpCount; i++)
        {
            var kind = instruction.GetOpKind(i);
            if (kind is OpKind.Immediate32to64 or OpKind.Immediate64 or OpKind.Immediate32)
            {
                ulong value = kind == OpKind.Immediate32 ? (ulong)(long)(int)instruction.Immediate32 : instruction.GetImmediate(i);
                if (Match(value, keys) is { } m) return m;
            }
            else if (kind == OpKind.Memory && instruction.MemoryBase == Register.None && instruction.MemoryIndex == Register.None
                && Match(instruction.MemoryDisplacement64, keys) is { } d) return d;
        }
        return null;
    }

    static ulong? Match(ulong address, ulong[] keys)
    {
        int i = Array.BinarySearch(keys, address);
        if (i >= 0) return keys[i];
        i = ~i - 1;
        return i >= 0 && address - keys[i] < StructStaticKeySize ? keys[i] : null;
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
