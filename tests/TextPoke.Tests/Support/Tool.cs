using System.Diagnostics;

namespace TextPoke.Tests.Support;

/// <summary>Runs a machine tool (gcc, ld, xz, ...) and fails the test with its output when it fails.</summary>
public static class Tool
{
    public static string Run(string file, IEnumerable<string> args, string? workingDirectory = null, byte[]? stdin = null, string? stdoutFile = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin != null,
            UseShellExecute = false, WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var stderrTask = p.StandardError.ReadToEndAsync();
        Task<string>? stdoutText = null;
        Task? copy = null;
        FileStream? output = null;
        if (stdoutFile != null)
        {
            output = File.Create(stdoutFile);
            copy = p.StandardOutput.BaseStream.CopyToAsync(output);
        }
        else stdoutText = p.StandardOutput.ReadToEndAsync();
        if (stdin != null)
        {
            p.StandardInput.BaseStream.Write(stdin);
            p.StandardInput.Close();
        }
        p.WaitForExit();
        copy?.Wait();
        output?.Dispose();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed with {p.ExitCode}: {stderrTask.Result}");
        return stdoutText?.Result ?? "";
    }

    /// <summary>Compresses bytes with a command-line compressor reading stdin.</summary>
    public static byte[] Compress(string file, byte[] input, params string[] args)
    {
        var tmp = Path.Combine(Repo.Scratch("compress"), "out");
        Run(file, args, stdin: input, stdoutFile: tmp);
        return File.ReadAllBytes(tmp);
    }
}
