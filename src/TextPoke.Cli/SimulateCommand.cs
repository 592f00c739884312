using System.CommandLine;
using TextPoke.Checks;
using TextPoke.Emulation;
using TextPoke.Images;
using TextPoke.Operations;
using TextPoke.Symbols;
using TextPoke.Tables;

namespace TextPoke.Cli;

static partial class Commands
{
    public static Command Simulate(TextWriter stdout)
    {
        var image = ImageArgument();
        var map = SystemMapOption();
        var json = JsonOption();
        var flipAll = new Option<bool>("--flip-all") { Description = "move every key away from its initial state, one at a time, then back (the default)" };
        var enable = new Option<string[]>("--enable")
        {
            Description = "static_key_enable(KEY) (repeatable; applied in order with --disable; NAME[N] names an element of an array of keys)",
            HelpName = "KEY",
            AllowMultipleArgumentsPerToken = false,
        };
        var disable = new Option<string[]>("--disable") { Description = "static_key_disable(KEY) (repeatable)", HelpName = "KEY" };
        var script = new Option<string?>("--script") { Description = "operations, one per line: enable|disable|inc|dec KEY, load MODULE, boot-done; '#' " +
            "comments", HelpName = "FILE" };
        var keepGoing = new Option<bool>("--keep-going") { Description = "record a BUG and go on (the real kernel stops at the first)" };
        var running = new Option<bool>("--after-boot") { Description = "simulate after boot (SYSTEM_RUNNING: init text is freed and skipped); default: " +
            "during initcalls" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "also print every site the emulated kernel patches" };
        var boot = new Option<bool>("--boot") { Description = "instead of jump labels, run the boot-time patching (static_call_init, ftrace_init, paravirt, " +
            "retpolines, returns, alternatives, seal_endbr, SMP locks) for the CPU given by --cpu" };
        var cpu = new Option<string?>("--cpu") { Description = "with --boot: the CPU's features, comma-separated: presets qemu64 (default; measured) or " +
            "host (this machine's /proc/cpuinfo), X86_FEATURE_/X86_BUG_ names, cpuinfo names or W*32+B, vendor=NAME, family=N, model=N; " +
            "-NAME removes one", HelpName = "FEATURES" };
        var up = new Option<bool>("--up") { Description = "with --boot: a one-CPU boot (nosmp/maxcpus=1), which switches .smp_locks LOCK prefixes to DS" };
        var emit = new Option<string?>("--emit") { Description = "with --boot: write the patched vmlinux (ELF) to OUT, atomically, for objdump or a diff",
            HelpName = "OUT" };
        var format = FormatOption("a test case for the image, failing with every BUG and WARN");
        var command = new Command("simulate",
            "Run the kernel's jump-label machinery (kernel/jump_label.c, arch/x86/kernel/jump_label.c) on IMAGE and print what the kernel would print; with " +
            "--boot, run its boot-time self-patching for a CPU instead.")
        {
            image, map, flipAll, enable, disable, script, keepGoing, running, verbose, json, format, boot, cpu, up, emit,
        };
        command.SetAction(result =>
        {
            string how = FormatOf(result, format, json);
            bool bootMode = result.GetValue(boot);
            if (!bootMode && (result.GetValue(cpu) != null || result.GetValue(up) || result.GetValue(emit) != null))
                throw new UsageException("--cpu, --up and --emit go with --boot");
            if (bootMode && (result.GetValue(enable)?.Length > 0 || result.GetValue(disable)?.Length > 0 || result.GetValue(script) != null
                || result.GetValue(flipAll) || result.GetValue(running)))
                throw new UsageException("--boot simulates the boot-time patching; --enable, --disable, --script, --flip-all and --after-boot belong to the " +
                    "jump-label simulation");
            var (img, symbols) = Load(result.GetValue(image)!, result.GetValue(map));
            if (bootMode)
            {
                using (img) return SimulateBoot(stdout, img, symbols, result.GetValue(cpu) ?? "qemu64", result.GetValue(up), result.GetValue(keepGoing),
                    result.GetValue(emit), how, result.GetValue(verbose));
            }
            using (img)
            {
                var request = new ScenarioRequest(result.GetValue(script), OrderedKeyOptions(result, result.GetValue(enable) ?? [], result.GetValue(disable)
                    ?? []).ToList(),
                    result.GetValue(flipAll), result.GetValue(keepGoing), result.GetValue(running));
                using var run = JumpLabelScenario.Run(img, symbols, request);
                switch (how)
                {
                    case "json": JsonOutput.Simulation(stdout, img, symbols, run.Core, run.Scenario, run.Users); break;
                    case "sarif": CiOutput.SarifEvents(stdout, img.Path, JumpLabelEvents(run.Core), SourceLines(img)); break;
                    case "junit": CiOutput.JUnitEvents(stdout, "textpoke simulate", $"{img.Path}: {run.Scenario}", JumpLabelEvents(run.Core)); break;
                    default: TextOutput.Simulation(stdout, img, symbols, run.Core, run.Scenario, run.Users, result.GetValue(verbose)); break;
                }
                return run.Clean ? ExitCodes.Clean : ExitCodes.Findings;
            }
        });
        return command;
    }

    /// <summary>--cpu of simulate --boot and verify: a bad name is a usage error.</summary>
    internal static CpuModel ParseCpu(string spec, CpuFeatureNames names, bool up = false)
    {
        try { return CpuModel.Parse(spec, names, up); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
    }

    static int SimulateBoot(TextWriter stdout, KernelImage img, ImageSymbols symbols, string cpuSpec, bool up, bool keepGoing, string? emit, string how,
        bool verbose)
    {
        var names = CpuFeatureNames.Load(img, symbols);
        var model = ParseCpu(cpuSpec, names, up);
        var boot = BootPatcher.Run(img, symbols, model, names, keepGoing);
        if (emit != null) ImageWriter.WriteAtomically(emit, boot.PatchedElf());
        switch (how)
        {
            case "json": JsonOutput.BootSimulation(stdout, img, symbols, model, names, boot, emit); break;
            case "sarif": CiOutput.SarifEvents(stdout, img.Path, BootEvents(boot), SourceLines(img)); break;
            case "junit": CiOutput.JUnitEvents(stdout, "textpoke simulate", $"{img.Path}: boot on {model.Description}", BootEvents(boot)); break;
            default: TextOutput.BootSimulation(stdout, img, symbols, model, names, boot, emit, verbose); break;
        }
        return boot.Bugs + boot.Warnings == 0 ? ExitCodes.Clean : ExitCodes.Findings;
    }

    /// <summary>The jump-label emulation's BUGs and WARNs as CI events (rules simulate.jump-label-bug / -warning).</summary>
    static List<CiOutput.EmulatedEvent> JumpLabelEvents(JumpLabelCore core) => core.Events.Where(e => e.Kind is EventKind.Bug or EventKind.Warning)
        .Select(e => new CiOutput.EmulatedEvent(e.Kind == EventKind.Bug ? "simulate.jump-label-bug" : "simulate.jump-label-warning",
            e.Kind == EventKind.Bug ? "the emulated jump-label code BUGs" : "the emulated jump-label code WARNs",
            e.Kind == EventKind.Bug ? Severity.Bug : Severity.Warning, e.Lines, e.Site, e.SiteLocation, new Dictionary<string, string?>
            {
                ["operation"] = e.Operation, ["key"] = e.Key, ["callPath"] = e.CallPath.Count == 0 ? null : string.Join(" -> ", e.CallPath),
                ["detail"] = e.Detail,
            })).ToList();

    /// <summary>The emulated boot's BUGs and WARNs as CI events (rules simulate.boot-bug / -warning).</summary>
    static List<CiOutput.EmulatedEvent> BootEvents(BootPatcher boot) => boot.Events.Where(e => e.Kind is BootEventKind.Bug or BootEventKind.Warning)
        .Select(e => new CiOutput.EmulatedEvent(e.Kind == BootEventKind.Bug ? "simulate.boot-bug" : "simulate.boot-warning",
            e.Kind == BootEventKind.Bug ? "the emulated boot-time patching BUGs" : "the emulated boot-time patching WARNs",
            e.Kind == BootEventKind.Bug ? Severity.Bug : Severity.Warning, e.KernelLines, e.Address == 0 ? null : e.Address,
            e.Location.Length == 0 ? null : e.Location, new Dictionary<string, string?> { ["step"] = e.Step, ["explanation"] = e.Explanation })).ToList();

    // --enable and --disable interleave in the order the user wrote them.
    static IEnumerable<ScenarioStep> OrderedKeyOptions(ParseResult result, string[] enables, string[] disables)
    {
        var steps = new List<ScenarioStep>();
        int e = 0, d = 0;
        var tokens = result.Tokens.Select(t => t.Value).ToList();
        for (int i = 0; i < tokens.Count; i++)
        {
            if (tokens[i] == "--enable" && e < enables.Length) steps.Add(new ScenarioStep("enable", enables[e++]));
            else if (tokens[i] == "--disable" && d < disables.Length) steps.Add(new ScenarioStep("disable", disables[d++]));
            else if (tokens[i].StartsWith("--enable=", StringComparison.Ordinal) && e < enables.Length) steps.Add(new ScenarioStep("enable", enables[e++]));
            else if (tokens[i].StartsWith("--disable=", StringComparison.Ordinal) && d < disables.Length) steps.Add(new ScenarioStep("disable", disables[d++]));
        }
        while (e < enables.Length) steps.Add(new ScenarioStep("enable", enables[e++]));
        while (d < disables.Length) steps.Add(new ScenarioStep("disable", disables[d++]));
        return steps;
    }
}
