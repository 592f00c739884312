using System.Collections.Concurrent;
using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Checks;

/// <summary>The result for one module of a tree: its findings, or the error that stopped it.</summary>
public sealed record ModuleResult(string Path, string RelativePath, string? Name, JumpLabelReport? Jump, IReadOnlyList<Finding> Findings, string? Error)
{
    public bool Clean => Error == null && Findings.Count == 0;
}

/// <summary>Checks every module under a directory in parallel; a bad file is an error for that file only.</summary>
public static class ModuleTree
{
    static readonly string[] Suffixes = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

    public static bool IsModuleFile(string path) => Suffixes.Any(s => path.EndsWith(s, StringComparison.Ordinal));

    /// <summary>Every module file below a directory, in a stable order.</summary>
    public static List<string> Find(string directory)
    {
        try
        {
            return Directory.EnumerateFiles(directory, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true,
                AttributesToSkip = 0 })
                .Where(IsModuleFile).OrderBy(p => p, StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageFormatException(directory, $"cannot list: {e.Message}");
        }
    }

    /// <summary>/lib/modules/VER → /boot/vmlinuz-VER; an extracted package's lib/modules/VER → its boot/vmlinuz-VER.</summary>
    public static string? FindKernel(string treeDir)
    {
        var full = Path.GetFullPath(treeDir).TrimEnd('/');
        var release = Path.GetFileName(full);
        var root = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(full) ?? "") ?? "") ?? "/";
        foreach (var candidate in new[] { Path.Combine(root, "boot", $"vmlinuz-{release}"), Path.Combine(root, "boot", $"vmlinux-{release}"),
            $"/boot/vmlinuz-{release}" })
            if (File.Exists(candidate)) return candidate;
        return null;
    }

    /// <summary>
    /// Checks modules. <paramref name="vmlinuxKeys"/> resolves keys defined in vmlinux; <paramref name="release"/>, when
    /// known, is the kernel release every module's vermagic must name.
    /// </summary>
    public static List<ModuleResult> Check(string root, IReadOnlyList<string> files, Func<string, StaticKeyInfo?>? vmlinuxKeys, string? release,
        Action<int, string>? progress = null, int parallelism = 0)
    {
        var results = new ModuleResult[files.Count];
        int done = 0;
        var cache = new ConcurrentDictionary<string, StaticKeyInfo?>(StringComparer.Ordinal);
        Func<string, StaticKeyInfo?>? resolver = vmlinuxKeys == null ? null : name => cache.GetOrAdd(name, vmlinuxKeys);
        Parallel.For(0, files.Count, new ParallelOptions { MaxDegreeOfParallelism = parallelism > 0 ? parallelism : Environment.ProcessorCount }, i =>
        {
            results[i] = CheckOne(root, files[i], resolver, release);
            progress?.Invoke(Interlocked.Increment(ref done), results[i].RelativePath);
        });
        return results.ToList();
    }

    static ModuleResult CheckOne(string root, string path, Func<string, StaticKeyInfo?>? resolver, string? release)
    {
        string relative = System.IO.Path.GetRelativePath(root, path);
        try
        {
            using var image = KernelImage.Open(path);
            if (image.Kind != ImageKind.Module)
                return new ModuleResult(path, relative, null, null, [], $"{path}: not a kernel module ({image.Describe()})");
            if (release != null && ModuleCheck.Vermagic(image) is { } vermagic && vermagic.Split(' ')[0] != release)
                return new ModuleResult(path, relative, image.ModuleName, null, [],
                    $"{path}: a module for another kernel: {image.ModuleName}: version magic '{vermagic}' should start with '{release}'");
            var symbols = ImageSymbols.Load(image, lookBeside: false);
            var check = CheckRunner.Run(image, symbols, null, resolver, parallel: false);
            return new ModuleResult(path, relative, image.ModuleName, check.Jump, check.Findings.ToList(), null);
        }
        catch (ImageFormatException e)
        {
            // Malformed input is that module's error; anything else is a bug in a reader and ends the run (one line).
            return new ModuleResult(path, relative, null, null, [], e.Message);
        }
    }
}
