using System.Text;
using TextPoke.Cli;

if (!Console.IsOutputRedirected) return TextPokeCli.Run(args, Console.Out, Console.Error);
// Output to a file or a pipe (CI logs) is written in blocks rather than a system call per line; whatever goes to
// standard error first pushes out what standard output holds, so "2>&1" keeps the order the program wrote in.
using var buffered = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false), 1 << 16);
var stdout = TextWriter.Synchronized(buffered);
try
{
    return TextPokeCli.Run(args, stdout, new FlushFirstWriter(Console.Error, stdout));
}
finally
{
    stdout.Flush();
}
