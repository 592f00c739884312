using System.Reflection;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tables;

namespace TextPoke.Emulation;

/// <summary>
/// X86_FEATURE_* / X86_BUG_* numbers and names of the image's era. The macro names and numbers come from the
/// cpufeatures.h of Debian's 5.10, 6.1 or 6.12 kernel (scripts/gen-cpufeatures): the newest of them not newer than the
/// image's version (5.10's for older kernels), because features move between eras (LFENCE_RDTSC is 3*32+18 in 6.1 and
/// 20*32+2 in 6.12, where 3*32+18 is CLEAR_CPU_BUF). The /proc/cpuinfo names come from the image's own x86_cap_flags[]
/// and x86_bug_flags[] when it has them, so a "host" or named feature maps to the bit numbers of the kernel simulated.
/// </summary>
public sealed class CpuFeatureNames
{
    readonly Dictionary<string, int> _byName = new(StringComparer.OrdinalIgnoreCase);
    readonly Dictionary<int, string> _macro = new();
    readonly Dictionary<int, string> _shown = new();

    /// <summary>NCAPINTS and NBUGINTS of the table (22 and 2 in v6.1).</summary>
    public int CapInts { get; private set; }
    public int BugInts { get; private set; }
    /// <summary>CapInts and BugInts are the image's own (sizes of its x86_cap_flags/x86_bug_flags), not the table's.</summary>
    public bool MeasuredWords { get; private set; }
    /// <summary>Where the /proc/cpuinfo names came from.</summary>
    public string Source { get; private set; } = "v6.1 cpufeatures.h";
    /// <summary>The cpufeatures.h the numbers come from: "5.10", "6.1" or "6.12".</summary>
    public string Table { get; private set; } = "6.1";

    /// <summary>The embedded tables, oldest first.</summary>
    public static readonly IReadOnlyList<(int Major, int Minor, string Name)> EraTables = [(5, 10, "5.10"), (6, 1, "6.1"), (6, 12, "6.12")];

    /// <summary>The table for a kernel version: the newest not newer than it, the oldest for older kernels, 6.1 when unknown.</summary>
    public static string TableFor((int Major, int Minor, int Patch)? version) => version is not { } v ? "6.1"
        : EraTables.LastOrDefault(t => (t.Major, t.Minor).CompareTo((v.Major, v.Minor)) <= 0) is { Name: { } name } ? name : EraTables[0].Name;

    /// <summary>(NCAPINTS + NBUGINTS) * 32: apply_alternatives BUG_ONs on a feature at or above this.</summary>
    public int Limit => (CapInts + BugInts) * 32;

    public static CpuFeatureNames Load(KernelImage? image = null, ImageSymbols? symbols = null) => Load(TableFor(image?.Version), image, symbols);

    /// <summary>The names and numbers of one era's table (5.10, 6.1, 6.12), with the image's own cpuinfo names when given.</summary>
    public static CpuFeatureNames Load(string table, KernelImage? image = null, ImageSymbols? symbols = null)
    {
        var names = new CpuFeatureNames { Table = table, Source = $"v{table} cpufeatures.h" };
        using var stream = typeof(CpuFeatureNames).Assembly.GetManifestResourceStream($"cpufeatures-{table}.tsv")
            ?? throw new InvalidOperationException($"cpufeatures-{table}.tsv is not embedded");
        using var reader = new StreamReader(stream);
        var rows = new List<(int Bit, string Macro, string Shown)>();
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
            if (f.Length == 3) rows.Add((int.Parse(f[0]), f[1], f[2]));
        }
        // X86_BUG(n) is NCAPINTS*32 + n: when the image has more (or fewer) capability words than the era's table (stable
        // backports add words), its bug numbers move with them.
        int moveBugs = 0;
        if (image != null && symbols != null && CapabilityWords.Measure(image, symbols) is { } own)
        {
            moveBugs = (own.CapInts - names.CapInts) * 32;
            names.CapInts = own.CapInts;
            names.BugInts = own.BugInts;
            names.MeasuredWords = true;
        }
        foreach (var (row, macro, shown) in rows)
        {
            int bit = macro.StartsWith("X86_BUG_", StringComparison.Ordinal) ? row + moveBugs : row;
            names._macro.TryAdd(bit, macro);
            names._byName.TryAdd(macro, bit);
            names._byName.TryAdd(macro.Replace("X86_FEATURE_", "").Replace("X86_BUG_", "BUG_"), bit);
            if (shown != "-") { names._shown[bit] = shown; names._byName.TryAdd(shown, bit); }
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
        if (found > 0) Source = $"the image's x86_cap_flags/x86_bug_flags" + (MeasuredWords ? $" ({CapInts} + {BugInts} words)" : "") +
            $", v{Table} cpufeatures.h for hidden features";
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

    /// <summary>boot_cpu_data.x86_vendor as a name ("Intel", "AMD", "Hygon", ...; "unknown" when not given).</summary>
    public string Vendor { get; init; } = "unknown";
    /// <summary>boot_cpu_data.x86 (the family) and x86_model; 0 when not given.</summary>
    public int Family { get; init; }
    public int ModelNumber { get; init; }

    /// <summary>
    /// arch_init_ideal_nops() (&lt;= v5.12, arch/x86/kernel/alternative.c) on x86-64: K8 NOPs on Intel family 6 models
    /// 0x0f..0x2f except 0x1c, 0x26 and 0x27, P6 NOPs on other Intel CPUs with NOPL, on Hygon and on AMD after family 0xf;
    /// K8 NOPs everywhere else, qemu64 (AMD family 0xf) included.
    /// </summary>
    public bool IdealNopsAreP6(CpuFeatureNames names)
    {
        switch (Vendor)
        {
            case "Intel":
                if (Family == 6 && ModelNumber >= 0x0f && ModelNumber is not (0x1c or 0x26 or 0x27) && ModelNumber < 0x30) return false;
                return names.Find("X86_FEATURE_NOPL") is { } nopl && Has(nopl);
            case "Hygon": return true;
            case "AMD": return Family > 0xf;
            default: return false;
        }
    }

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

    /// <summary>
    /// What the qemu64 model adds in later eras, measured the same way on Debian's 6.12 kernel (its topology code sets
    /// XTOPOLOGY); 5.10 sees exactly the 6.1 list, each name at its own era's number.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string[]> Qemu64Added = new Dictionary<string, string[]>
    {
        ["6.12"] = ["X86_FEATURE_XTOPOLOGY"],
    };

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
        string vendor = "unknown";
        int family = 0, model = 0;
        if (words.Length == 0) throw new ArgumentException("--cpu: no features given (try qemu64, host or a list of X86_FEATURE_ names)");
        foreach (var raw in words)
        {
            bool remove = raw.StartsWith('-');
            var word = raw.TrimStart('-', '+');
            if (word.Split('=', 2) is [var field, var value] && field.ToLowerInvariant() is "vendor" or "family" or "model")
            {
                if (field.Equals("vendor", StringComparison.OrdinalIgnoreCase)) vendor = VendorName(value);
                else if (ParseNumber(value) is not { } number) throw new ArgumentException($"--cpu: {field}={value}: not a number");
                else if (field.Equals("family", StringComparison.OrdinalIgnoreCase)) family = number;
                else model = number;
                continue;
            }
            if (word.Equals("qemu64", StringComparison.OrdinalIgnoreCase)) (vendor, family, model) = ("AMD", 0xf, 0x6b);
            if (word.Equals("host", StringComparison.OrdinalIgnoreCase)) (vendor, family, model) = HostIdentity(readFile);
            IEnumerable<int> bits = word.ToLowerInvariant() switch
            {
                "qemu64" => Qemu64.Concat(Qemu64Added.GetValueOrDefault(names.Table, []))
                    .Select(n => names.Find(n) ?? throw new InvalidOperationException($"qemu64 preset names unknown {n}")),
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
        return new CpuModel
        {
            Description = string.Join(",", words), Features = features, Uniprocessor = uniprocessor, Vendor = vendor, Family = family, ModelNumber = model,
        };
    }

    static int? ParseNumber(string text) =>
        text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? int.TryParse(text[2..], System.Globalization.NumberStyles.HexNumber, null, out int h) ? h : null
            : int.TryParse(text, out int d) ? d : null;

    /// <summary>A vendor as the kernel names it: GenuineIntel/intel → Intel, AuthenticAMD/amd → AMD, HygonGenuine/hygon → Hygon.</summary>
    static string VendorName(string text) => text.ToLowerInvariant() switch
    {
        "intel" or "genuineintel" => "Intel",
        "amd" or "authenticamd" => "AMD",
        "hygon" or "hygongenuine" => "Hygon",
        "centaur" or "centaurhauls" => "Centaur",
        "zhaoxin" or "shanghai" => "Zhaoxin",
        _ => throw new ArgumentException($"--cpu: vendor={text}: not a vendor (intel, amd, hygon, centaur, zhaoxin)"),
    };

    // The boot CPU's vendor_id, cpu family and model lines of /proc/cpuinfo.
    static (string, int, int) HostIdentity(Func<string, string?> readFile)
    {
        var cpuinfo = readFile("/proc/cpuinfo") ?? "";
        string vendor = "unknown";
        int family = 0, model = 0;
        foreach (var line in cpuinfo.Split('\n'))
        {
            int colon = line.IndexOf(':');
            if (colon < 0) continue;
            var (key, value) = (line[..colon].Trim(), line[(colon + 1)..].Trim());
            if (key == "vendor_id") { try { vendor = VendorName(value); } catch (ArgumentException) { vendor = "unknown"; } }
            else if (key == "cpu family") family = int.TryParse(value, out int f) ? f : 0;
            else if (key == "model") model = int.TryParse(value, out int m) ? m : 0;
            else if (key == "flags") break; // the first CPU is the boot CPU
        }
        return (vendor, family, model);
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
