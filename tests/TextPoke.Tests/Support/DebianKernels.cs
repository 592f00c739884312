namespace TextPoke.Tests.Support;

/// <summary>
/// Debian kernel packages, fetched once into the cache by scripts/fetch-kernels (apt-get download) and reused.
/// The tests that use them fail, never skip, when they cannot be fetched.
/// </summary>
public static class DebianKernels
{
    static readonly Lazy<Dictionary<string, string>> Manifest = new(() =>
    {
        if (Environment.GetEnvironmentVariable("TEXTPOKE_TESTS_QUICK") == "1")
            throw new InvalidOperationException(
                "this test reads downloaded Debian kernels: mark it [Trait(\"Tier\", \"full\")] (./test --quick runs the rest)");
        var output = Tool.Run(Path.Combine(Repo.Root, "scripts", "fetch-kernels"), []);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
    });

    public static string Get(string key) => Manifest.Value.TryGetValue(key, out var v) ? v
        : throw new InvalidOperationException($"fetch-kernels printed no {key}");

    public static string GenericVmlinuz => Get("GENERIC_VMLINUZ");
    public static string CloudVmlinuz => Get("CLOUD_VMLINUZ");
    public static string CloudSystemMap => Get("CLOUD_SYSTEM_MAP");
    public static string GoldenVmlinuz => Get("GOLDEN_VMLINUZ");
    public static string Abi => Get("ABI");
    /// <summary>lib/modules/ABI-amd64 of the generic package, with boot/vmlinuz-ABI-amd64 two levels up, as installed.</summary>
    public static string GenericModules => Get("GENERIC_MODULES");

    /// <summary>Debian's other suites (scripts/fetch-kernels): ERA is 5_10 (bullseye) or 6_12 (trixie), FLAVOUR GENERIC, CLOUD or RT.</summary>
    public static string Era(string era, string flavour) => Get($"ERA_{era}_{flavour}_VMLINUZ");
    public static string EraSystemMap(string era) => Get($"ERA_{era}_CLOUD_SYSTEM_MAP");
    public static string EraModules(string era) => Get($"ERA_{era}_GENERIC_MODULES");
}
