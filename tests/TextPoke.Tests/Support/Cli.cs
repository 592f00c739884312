using TextPoke.Cli;

namespace TextPoke.Tests.Support;

/// <summary>Runs the textpoke command line in-process.</summary>
public static class CliRun
{
    public sealed record Result(int Exit, string Out, string Err)
    {
        public string[] Lines => Out.Split('\n');
    }

    public static Result Run(params string[] args)
    {
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        int exit = TextPokeCli.Run(args, o, e);
        return new Result(exit, o.ToString(), e.ToString());
    }
}
