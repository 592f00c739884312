using TextPoke.Checks;
using TextPoke.Images;

namespace TextPoke.Emulation;

/// <summary>One operation of a scenario.</summary>
public sealed record ScenarioStep(string Verb, string? Argument, int Line = 0)
{
    public override string ToString() => Argument == null ? Verb : $"{Verb} {Argument}";
}

/// <summary>Scenarios for the jump-label emulation: flip every key, enable/disable one, or a script.</summary>
public static class Simulation
{
    /// <summary>Verbs a script may use: enable, disable, inc, dec KEY; boot-done; load MODULE (with a loader).</summary>
    public static readonly IReadOnlyList<string> Verbs = ["enable", "disable", "inc", "dec", "boot-done", "load"];

    /// <summary>Parses a script: one operation per line, '#' starts a comment. Bad lines are bad input naming the line.</summary>
    public static List<ScenarioStep> ParseScript(string path, string text)
    {
        var steps = new List<ScenarioStep>();
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            int hash = line.IndexOf('#');
            if (hash >= 0) line = line[..hash];
            var words = line.Split([' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0) continue;
            var verb = words[0].ToLowerInvariant() switch
            {
                "static_key_enable" or "enable" => "enable",
                "static_key_disable" or "disable" => "disable",
                "static_key_slow_inc" or "static_branch_inc" or "inc" => "inc",
                "static_key_slow_dec" or "static_branch_dec" or "dec" => "dec",
                "boot-done" or "system_running" => "boot-done",
                "load" or "insmod" => "load",
                _ => throw new ImageFormatException(path,
                    $"line {i + 1}: unknown operation '{words[0]}' (use: enable, disable, inc, dec KEY; load MODULE; boot-done)"),
            };
            bool needsArgument = verb != "boot-done";
            if (needsArgument != (words.Length == 2))
                throw new ImageFormatException(path, $"line {i + 1}: '{verb}' takes {(needsArgument ? "one argument" : "no argument")}");
            steps.Add(new ScenarioStep(verb, needsArgument ? words[1].TrimStart('&') : null, i + 1));
        }
        return steps;
    }

    /// <summary>--flip-all: every key, in the kernel's table order, is moved away from its initial state and back.</summary>
    public static IEnumerable<ScenarioStep> FlipAll(JumpLabelCore core) =>
        core.Keys.Where(k => k.Owner == core.Vmlinux).OrderBy(k => k.Address).SelectMany(k => k.InitialType
            ? new[] { new ScenarioStep("disable", k.Name), new ScenarioStep("enable", k.Name) }
            : new[] { new ScenarioStep("enable", k.Name), new ScenarioStep("disable", k.Name) });

    /// <summary>Runs steps until the end, or the first BUG unless the core keeps going. Unknown keys are bad input.</summary>
    public static void Run(JumpLabelCore core, IEnumerable<ScenarioStep> steps, string source, Action<string>? loadModule = null)
    {
        foreach (var step in steps)
        {
            if (core.Halted) return;
            if (step.Verb == "boot-done") { core.FinishBoot(); continue; }
            if (step.Verb == "load")
            {
                if (loadModule == null) throw new ImageFormatException(source, $"line {step.Line}: 'load' needs a module path");
                loadModule(step.Argument!);
                continue;
            }
            var key = core.FindKey(step.Argument!)
                ?? throw new ImageFormatException(source,
                    $"{(step.Line > 0 ? $"line {step.Line}: " : "")}{StaticKeyNames.NotFound(step.Argument!, core.KeyNames, "the image's jump table")}");
            switch (step.Verb)
            {
                case "enable": core.Enable(key); break;
                case "disable": core.Disable(key); break;
                case "inc": core.SlowInc(key); break;
                case "dec": core.SlowDec(key); break;
            }
        }
    }
}
