using TextPoke.Checks;
using TextPoke.Emulation;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tables;

namespace TextPoke.Operations;

/// <summary>What to simulate: a script file, then --enable/--disable steps in the order given, or every key flipped.</summary>
public sealed record ScenarioRequest(string? ScriptPath, IReadOnlyList<ScenarioStep> Steps, bool FlipAll, bool KeepGoing, bool AfterBoot);

/// <summary>
/// A jump-label simulation run to its end: the core with its events, a one-line description of the scenario, and for
/// every key of vmlinux that BUGged or WARNed the code that changes it. Disposing it closes the modules the scenario loaded.
/// </summary>
public sealed class ScenarioResult(JumpLabelCore core, string scenario, Dictionary<ulong, List<KeyUser>> users, List<KernelImage> modules) : IDisposable
{
    public JumpLabelCore Core { get; } = core;
    public string Scenario { get; } = scenario;
    public Dictionary<ulong, List<KeyUser>> Users { get; } = users;
    public bool Clean => Core.Bugs + Core.Warnings == 0;

    public void Dispose()
    {
        foreach (var m in modules) m.Dispose();
    }
}

/// <summary>simulate without --boot: the jump-label core driven through a scenario, as the kernel would run it.</summary>
public static class JumpLabelScenario
{
    public static ScenarioResult Run(KernelImage image, ImageSymbols symbols, ScenarioRequest request)
    {
        var modules = new List<KernelImage>();
        try
        {
            var report = JumpLabelCheck.Run(image, symbols);
            if (report.Era == null) throw new ImageFormatException(image.Path, $"no jump table to simulate: {report.Absent}");
            var core = JumpLabelCore.Init(image, symbols, report, BugTable.Read(image, symbols));
            core.KeepGoing = request.KeepGoing;
            if (request.AfterBoot) core.State = SystemState.Running;

            var steps = new List<ScenarioStep>();
            string source = image.Path;
            if (request.ScriptPath is { } scriptPath)
            {
                string text;
                try { text = File.ReadAllText(scriptPath); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ImageFormatException(scriptPath,
                    $"cannot read: {e.Message}"); }
                steps.AddRange(Simulation.ParseScript(scriptPath, text));
                source = scriptPath;
            }
            steps.AddRange(request.Steps);
            bool flipAll = request.FlipAll || steps.Count == 0;
            if (flipAll) steps.AddRange(Simulation.FlipAll(core));
            string scenario = flipAll && steps.Count == Simulation.FlipAll(core).Count() ? "--flip-all" : string.Join(", ", steps.Take(6)) + (steps.Count > 6
                ? ", ..." : "");

            Simulation.Run(core, steps, source, path =>
            {
                var module = KernelImage.Open(path);
                modules.Add(module);
                var moduleSymbols = ImageSymbols.Load(module, lookBeside: false);
                core.LoadModule(module, moduleSymbols, JumpLabelCheck.Run(module, moduleSymbols), null);
            });

            // Who flips each key that BUGged or WARNed.
            var troubled = core.Events.Where(e => e.Kind is EventKind.Bug or EventKind.Warning && e.Key != null)
                .Select(e => core.FindKey(e.Key!)!).Where(k => k.Owner == core.Vmlinux).Distinct().ToList();
            var users = KeyUsers.Find(image, symbols, troubled.Select(k => k.Address).ToList());
            return new ScenarioResult(core, scenario, users, modules);
        }
        catch
        {
            foreach (var m in modules) m.Dispose();
            throw;
        }
    }
}
