using System.Reflection;
using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Emulation;

/// <summary>
/// X86_FEATURE_* / X86_BUG_* numbers and names. The macro names come from v6.1's cpufeatures.h (scripts/gen-cpufeatures);
/// the /proc/cpuinfo names come from the image's own x86_cap_flags[] and x86_bug_flags[] when it has them, so a
/// "host" or named feature maps to the bit numbers of the kernel being simulated.
/// </summary>
public sealed class CpuFeatureNames
{
    readonly Dictionary<string, int> _byName = new(StringComparer.OrdinalIgnoreCase);
    readonly Dictionary<int, string> _macro = new();
    readonly Dictionary<int, string> _shown = new();

    /// <summary>NCAPINTS and NBUGINTS of the table (22 and 2 in v6.1).</summary>
    public int CapInts { get; private set; }
    public int BugInts { get; private set; }
    /// <summary>Where the /proc/cpuinfo names came from.</summary>
    public string Source { get; private set; } = "v6.1 cpufeatures.h";

    /// <summary>(NCAPINTS + NBUGINTS) * 32: apply_alternatives BUG_ONs on a feature at or above this.</summary>
    public int Limit => (CapInts + BugInts) * 32;

    public static CpuFeatureNames Load(KernelImage? image = null, ImageSymbols? symbols = null)
    {
        var names = new CpuFeatureNames();
        using var stream = typeof(CpuFeatureNames).Assembly.GetManifestResourceStream("cpufeatures-6.1.tsv")
            ?? throw new InvalidOperationException("cpufeatures-6.1.tsv is not embedded");
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line)
        {
            var f = line.Split('\t');
            if (line.StartsWith("# NCAPINTS", StringComparison.Ordinal))
            {
                var w = line.Split(' ');
                names.CapInts = int.Parse(w[2]);
                names.BugInts = int.Parse(w[4]);
                continue;
            }
            if (f.Length != 3) continue;
            int bit = int.Parse(f[0]);
            names._macro.TryAdd(bit, f[1]);
            names._byName.TryAdd(f[1], bit);
            names._byName.TryAdd(f[1].Replace("X86_FEATURE_", "").Replace("X86_BUG_", "BUG_"), bit);
            if (f[2] != "-") { names._shown[bit] = f[2]; names._byName.TryAdd(f[2], bit); }
        }
        if (image != null && symbols != null) names.ReadImageFlags(image, symbols);
        return names;
    }

    // x86_cap_flags[NCAPINTS*32] and x86_bug_flags[NBUGINTS*32]: const char * per bit, NULL for hidden ones.
    void ReadImageFlags(KernelImage image, ImageSymbols symbols)
    {
        int found = 0;
        foreach (var (symbol, first, count) in new[] { ("x86_cap_flags", 0, CapInts * 32), ("x86_bug_flags", CapInts * 32, BugInts * 32) })
        {
            if (!symbols.TryFind(symbol, out ulong at, out _)) continue;
            var buffer = new byte[64];
            for (int i = 0; i < count; i++)
            {
                if (!image.TryReadU64(at + 8UL * (ulong)i, out ulong text) || text == 0) continue;
                int n = image.Read(text, buffer);
                int end = buffer.AsSpan(0, n).IndexOf((byte)0);
                if (end <= 0) continue;
                var name = System.Text.Encoding.ASCII.GetString(buffer, 0, end);
                if (name.Any(ch => ch is < '0' or > 'z')) continue;
                _shown[first + i] = name;
                _byName[name] = first + i;
                found++;
            }
        }
        if (found > 0) Source = "the image's x86_cap_flags/x86_bug_flags, v6.1 cpufeatures.h for hidden features";
    }

    /// <summary>A feature by macro name (X86_FEATURE_XMM4_2, XMM4_2, X86_BUG_SPECTRE_V2, BUG_SPECTRE_V2), cpuinfo name, or W*32+B.</summary>
    public int? Find(string name)
    {
        if (_byName.TryGetValue(name, out int bit)) return bit;
        var plain = name.Replace(" ", "");
        int star = plain.IndexOf('*'), plus = plain.IndexOf('+');
        if (star > 0 && plus > star && int.TryParse(plain[..star], out int word) && plain[(star + 1)..plus] == "32" && int.TryParse(plain[(plus + 1)..],
            out int b) && b is >= 0 and < 32)
            return word * 32 + b;
        return int.TryParse(plain, out int n) && n >= 0 ? n : null;
    }

    /// <summary>The macro name of a bit (X86_FEATURE_…), else W*32+B.</summary>
    public string Name(int bit) => _macro.TryGetValue(bit, out var m) ? m : $"{bit >> 5}*32+{bit & 31}";

    /// <summary>The /proc/cpuinfo name, or null when the kernel hides the feature.</summary>
    public string? Shown(int bit) => _shown.GetValueOrDefault(bit);
}

/// <summary>The CPU a boot is simulated on: the set of features boot_cpu_has() sees when the kernel patches itself.</summary>
public sealed class CpuModel
{
    public required string Description { get; init; }
    public required HashSet<int> Features { get; init; }
    /// <summary>Booted with one CPU (nosmp / maxcpus=1): .smp_locks are switched to DS prefixes.</summary>
    public bool Uniprocessor { get; init; }

    public bool Has(int bit) => Features.Contains(bit);

    /// <summary>
    /// QEMU's qemu64 model under TCG, measured: Debian's 6.1.0-56 kernel booted with -cpu qemu64 -smp 2 nokaslr, and
    /// boot_cpu_data.x86_capability read back through the QEMU monitor (memsave) once the kernel ran init. It includes the
    /// synthetic features the kernel set for itself (ALWAYS, RETPOLINE, RSB_CTXSW, ...), which /proc/cpuinfo hides.
    /// </summary>
    public static readonly IReadOnlyList<string> Qemu64 =
    [
        "X86_FEATURE_FPU", "X86_FEATURE_DE", "X86_FEATURE_PSE", "X86_FEATURE_TSC", "X86_FEATURE_MSR", "X86_FEATURE_PAE",
        "X86_FEATURE_MCE", "X86_FEATURE_CX8", "X86_FEATURE_APIC", "X86_FEATURE_SEP", "X86_FEATURE_MTRR", "X86_FEATURE_PGE",
        "X86_FEATURE_MCA", "X86_FEATURE_CMOV", "X86_FEATURE_PAT", "X86_FEATURE_PSE36", "X86_FEATURE_CLFLUSH", "X86_FEATURE_MMX",
        "X86_FEATURE_FXSR", "X86_FEATURE_XMM", "X86_FEATURE_XMM2", "X86_FEATURE_HT", "X86_FEATURE_SYSCALL", "X86_FEATURE_NX",
        "X86_FEATURE_LM", "X86_FEATURE_K8", "X86_FEATURE_SYSCALL32", "X86_FEATURE_REP_GOOD", "X86_FEATURE_LFENCE_RDTSC",
        "X86_FEATURE_NOPL", "X86_FEATURE_ALWAYS", "X86_FEATURE_CPUID", "X86_FEATURE_EXTD_APICID", "X86_FEATURE_XMM3",
        "X86_FEATURE_CX16", "X86_FEATURE_HYPERVISOR", "X86_FEATURE_LAHF_LM", "X86_FEATURE_CMP_LEGACY", "X86_FEATURE_SVM",
        "X86_FEATURE_3DNOWPREFETCH", "X86_FEATURE_RSB_VMEXIT", "X86_FEATURE_RSB_CTXSW", "X86_FEATURE_VMMCALL",
        "X86_FEATURE_FENCE_SWAPGS_KERNEL", "X86_FEATURE_RETPOLINE", "X86_BUG_FXSAVE_LEAK", "X86_BUG_SYSRET_SS_ATTRS",
        "X86_BUG_NULL_SEG", "X86_BUG_SWAPGS_FENCE", "X86_BUG_AMD_E400", "X86_BUG_SPECTRE_V1", "X86_BUG_SPECTRE_V2",
        // CPUID 0x80000001 EDX bits that mirror word 0 and have no cpufeatures.h name:
        "1*32+0", "1*32+2", "1*32+3", "1*32+4", "1*32+5", "1*32+6", "1*32+7", "1*32+8", "1*32+9", "1*32+12", "1*32+13",
        "1*32+14", "1*32+15", "1*32+16", "1*32+17", "1*32+23", "1*32+24",
    ];

    /// <summary>Presets --cpu accepts besides feature names.</summary>
    public static readonly IReadOnlyList<string> Presets = ["qemu64", "host", "none"];

    /// <summary>
    /// Parses --cpu: comma- or space-separated presets (qemu64, host, none), feature names (X86_FEATURE_XMM4_2, XMM4_2,
    /// sse4_2, X86_BUG_SPECTRE_V2) or numbers (4*32+20, 148); a leading '-' removes a feature. X86_FEATURE_ALWAYS is
    /// always present, as in the kernel. Unknown names are bad input.
    /// </summary>
    public static CpuModel Parse(string spec, CpuFeatureNames names, bool uniprocessor = false, Func<string, string?>? readFile = null)
    {
        readFile ??= path =>
            { try { return File.ReadAllText(path); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; } };
        var features = new HashSet<int>();
        var words = spec.Split([',', ' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 0) throw new ArgumentException("--cpu: no features given (try qemu64, host or a list of X86_FEATURE_ names)");
        foreach (var raw in words)
        {
            bool remove = raw.StartsWith('-');
            var word = raw.TrimStart('-', '+');
            IEnumerable<int> bits = word.ToLowerInvariant() switch
            {
                "qemu64" => Qemu64.Select(n => names.Find(n) ?? throw new InvalidOperationException($"qemu64 preset names unknown {n}")),
                "host" => Host(names, readFile),
                "none" => [],
                _ => [names.Find(word)
                    ?? throw new ArgumentException($"--cpu: unknown feature '{word}' (use X86_FEATURE_ names, /proc/cpuinfo flag names, W*32+B, or a " +
                    $"preset: {string.Join(", ", Presets)})")],
            };
            foreach (int bit in bits)
            {
                if (bit >= names.Limit && bit >= 32 * 32) throw new ArgumentException($"--cpu: feature number {bit} is out of range");
                if (remove) features.Remove(bit); else features.Add(bit);
            }
        }
        features.Add(names.Find("X86_FEATURE_ALWAYS")!.Value);
        return new CpuModel { Description = string.Join(",", words), Features = features, Uniprocessor = uniprocessor };
    }

    // This machine: the flags and bugs lines of /proc/cpuinfo, plus the synthetic mitigation features the running kernel
    // reports only through /sys/devices/system/cpu/vulnerabilities (cpuinfo hides them).
    static IEnumerable<int> Host(CpuFeatureNames names, Func<string, string?> readFile)
    {
        var cpuinfo = readFile("/proc/cpuinfo") ?? throw new ArgumentException("--cpu host: /proc/cpuinfo is not readable on this machine");
        var result = new List<int>();
        foreach (var line in cpuinfo.Split('\n'))
        {
            int colon = line.IndexOf(':');
            if (colon < 0) continue;
            var key = line[..colon].Trim();
            if (key is not ("flags" or "bugs")) continue;
            foreach (var flag in line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
                if (names.Find(key == "bugs" && names.Find(flag) == null ? "X86_BUG_" + flag : flag) is { } bit) result.Add(bit);
            if (key == "bugs") break; // the first CPU is the boot CPU
        }
        string Vulnerability(string name) => readFile($"/sys/devices/system/cpu/vulnerabilities/{name}") ?? "";
        var v2 = Vulnerability("spectre_v2");
        void Add(string feature) { if (names.Find(feature) is { } bit) result.Add(bit); }
        if (v2.Contains("Retpolines", StringComparison.OrdinalIgnoreCase) || v2.Contains("LFENCE", StringComparison.Ordinal)) Add("X86_FEATURE_RETPOLINE");
        if (v2.Contains("LFENCE", StringComparison.Ordinal)) Add("X86_FEATURE_RETPOLINE_LFENCE");
        var retbleed = Vulnerability("retbleed") + Vulnerability("spec_rstack_overflow");
        if (retbleed.Contains("untrained return thunk", StringComparison.OrdinalIgnoreCase)) { Add("X86_FEATURE_RETHUNK"); Add("X86_FEATURE_UNRET"); }
        if (retbleed.Contains("Safe RET", StringComparison.OrdinalIgnoreCase)) { Add("X86_FEATURE_RETHUNK"); Add("X86_FEATURE_SRSO"); }
        return result;
    }
}
