using System.CommandLine;
using TextPoke.Images;

namespace TextPoke.Cli;

/// <summary>Exit codes: 0 clean, 1 findings, 2 bad input or usage.</summary>
public static class ExitCodes
{
    public const int Clean = 0, Findings = 1, BadInput = 2;

    /// <summary>0 clean, 1 findings, 2 when a table the image has could not be read (never "clean" for what was not checked).</summary>
    public static int Of(TextPoke.Checks.CheckVerdict verdict) => verdict switch
    {
        TextPoke.Checks.CheckVerdict.Clean => Clean,
        TextPoke.Checks.CheckVerdict.Findings => Findings,
        _ => BadInput,
    };
}

/// <summary>The textpoke command line. All output goes through the given writers, so tests can run it in-process.</summary>
public static class TextPokeCli
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        // Untrusted text (log lines, names from images and debug info, file names) reaches the user inert.
        stdout = new InertWriter(stdout);
        stderr = new InertWriter(stderr);
        var root = BuildCommands(stdout, stderr);
        var result = root.Parse(args);
        if (result.Errors.Count > 0)
        {
            foreach (var e in result.Errors) stderr.WriteLine($"textpoke: {e.Message}");
            stderr.WriteLine("Try 'textpoke --help'.");
            return ExitCodes.BadInput;
        }
        try
        {
            try
            {
                return result.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
            }
            catch (AggregateException e) when (e.InnerExceptions.Count == 1 && e.InnerException is { } inner)
            {
                // Parallel work (module trees, table checks) wraps what one worker threw.
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(inner).Throw();
                throw;
            }
        }
        catch (ImageFormatException e)
        {
            stderr.WriteLine($"textpoke: {e.Message}");
            return ExitCodes.BadInput;
        }
        catch (RequestException e)
        {
            stderr.WriteLine($"textpoke: {e.Message}");
            return ExitCodes.BadInput;
        }
        catch (OutOfMemoryException)
        {
            stderr.WriteLine("textpoke: out of memory (the input is larger than this machine can hold)");
            return ExitCodes.BadInput;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A reader tripped over input it did not anticipate: still one line, never a stack trace (set
            // TEXTPOKE_DEBUG=1 to see it).
            string target = args.FirstOrDefault(a => !a.StartsWith('-') && File.Exists(a)) ?? "input";
            stderr.WriteLine($"textpoke: {target}: cannot be processed: {e.GetType().Name}: {e.Message}");
            if (Environment.GetEnvironmentVariable("TEXTPOKE_DEBUG") == "1") stderr.WriteLine(e);
            return ExitCodes.BadInput;
        }
    }

    internal static RootCommand BuildCommands(TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand(
            "textpoke: verify the self-patching tables of x86-64 Linux kernel images against their machine code, and print what the kernel would print.\n" +
            "Exit codes: 0 clean, 1 findings, 2 bad input or usage, or a table the image has that could not be read.");
        root.Subcommands.Add(Commands.Check(stdout, stderr));
        root.Subcommands.Add(Commands.Keys(stdout));
        root.Subcommands.Add(Commands.Sites(stdout));
        root.Subcommands.Add(Commands.Simulate(stdout));
        root.Subcommands.Add(Commands.Fix(stdout));
        root.Subcommands.Add(Commands.Poke(stdout));
        root.Subcommands.Add(Commands.Extract(stdout));
        root.Subcommands.Add(Commands.Boot(stdout, stderr));
        root.Subcommands.Add(Commands.Decode(stdout));
        root.Subcommands.Add(Commands.Verify(stdout));
        root.Subcommands.Add(Commands.Demo(stdout));
        return root;
    }
}

/// <summary>A usage error found after parsing (unknown table name, filter that matches nothing).</summary>
public sealed class UsageException(string message) : RequestException(message);
