using System.CommandLine;
using TextPoke.Checks;
using TextPoke.Demo;
using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Cli;

static partial class Commands
{
    internal static Argument<string> ImageArgument() => new("IMAGE")
    {
        Description = "kernel image: vmlinux, vmlinuz/bzImage (gzip, xz, zstd, lz4, lzma, bzip2), vmlinux.o, or a module (.ko, .ko.xz, .ko.zst, .ko.gz)",
    };

    internal static Option<string?> SystemMapOption() => new("--system-map")
    {
        Description = "System.map to take symbols from (checked against the image); by default kallsyms from the image, then .symtab, then a System.map " +
            "found beside the image",
        HelpName = "FILE",
    };

    internal static Option<bool> JsonOption() => new("--json") { Description = "print JSON instead of text" };

    internal static Option<string?> FormatOption(string what) => new("--format")
    {
        Description = $"text (default), json (as --json), sarif (SARIF 2.1.0 for code scanning) or junit (JUnit XML: {what})", HelpName = "FORMAT",
    };

    /// <summary>The output format asked for: --format, or json for --json; text by default.</summary>
    internal static string FormatOf(ParseResult result, Option<string?> format, Option<bool> json)
    {
        string how = result.GetValue(format) ?? (result.GetValue(json) ? "json" : "text");
        if (how is not ("text" or "json" or "sarif" or "junit")) throw new UsageException($"--format {how}: use text, json, sarif or junit");
        if (result.GetValue(json) && how != "json") throw new UsageException("--json and --format " + how + " disagree");
        return how;
    }

    internal static (KernelImage Image, ImageSymbols Symbols) Load(string path, string? systemMap)
    {
        var image = KernelImage.Open(path);
        try
        {
            return (image, ImageSymbols.Load(image, systemMap));
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    public static Command Check(TextWriter stdout, TextWriter stderr)
    {
        var image = new Argument<string>("IMAGE")
        {
            Description = "kernel image (vmlinux, vmlinuz/bzImage, vmlinux.o), a module (.ko, .ko.xz, .ko.zst, .ko.gz), or a module directory such as " +
                "/lib/modules/VERSION",
        };
        var map = SystemMapOption();
        var json = JsonOption();
        var tables = new Option<string?>("--tables")
        {
            Description = $"comma-separated tables to check (default: all). Known: {string.Join(", ", CheckRunner.KnownTables)}",
            HelpName = "LIST",
        };
        var vmlinux = VmlinuxOption();
        var format = FormatOption("a test case per image or module");
        var modules = new Option<string?>("--modules") { Description = "also check every module below DIR, in parallel", HelpName = "DIR" };
        var strict = new Option<bool>("--strict")
        {
            Description = "fail (exit 1) on notices too: entries the kernel never acts on, which cannot change its behaviour",
        };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "with modules: a summary line for every module, clean ones too" };
        var command = new Command("check",
            "Check every self-patching table of IMAGE against its machine code; print the kernel's own message for each broken site.")
        {
            image, map, tables, vmlinux, modules, verbose, json, format, strict,
        };
        command.SetAction(result =>
        {
            string how = FormatOf(result, format, json);
            void Render(CheckResult check, KernelImage? debugInfo = null)
            {
                switch (how)
                {
                    case "json": JsonOutput.Check(stdout, check); break;
                    case "sarif": CiOutput.Sarif(stdout, [CheckedFile.Of(check, SourceLines(debugInfo ?? check.Image))]); break;
                    case "junit": CiOutput.JUnit(stdout, [CheckedFile.Of(check)]); break;
                    default: TextOutput.Check(stdout, check); break;
                }
            }
            var selected = ParseTables(result.GetValue(tables));
            string path = result.GetValue(image)!;
            string? kernelPath = result.GetValue(vmlinux), treeDir = result.GetValue(modules);
            if (Directory.Exists(path))
            {
                if (treeDir != null) throw new UsageException("IMAGE is already a module directory; --modules is for a kernel image");
                treeDir = path;
                kernelPath ??= ModuleTree.FindKernel(path);
            }
            else if (treeDir == null && kernelPath == null)
            {
                var (img, symbols) = Load(path, result.GetValue(map));
                using (img)
                {
                    var check = CheckRunner.Run(img, symbols, selected, strict: result.GetValue(strict));
                    Render(check);
                    return ExitCodes.Of(check.Verdict);
                }
            }
            else if (kernelPath == null) kernelPath = path;
            else if (treeDir == null)
            {
                // A module checked against its kernel; or a kernel (a vmlinuz) with its unstripped vmlinux for source lines.
                var (kernel, kernelSymbols) = Load(kernelPath, result.GetValue(map));
                using (kernel)
                {
                    var (img, symbols) = Load(path, null);
                    using (img)
                    {
                        if (img.Kind != ImageKind.Module && kernel.Banner != img.Banner)
                            throw new UsageException($"--vmlinux {kernelPath} is another kernel than {path} (banners differ)");
                        var check = CheckRunner.Run(img, symbols, selected, name => JumpLabelCheck.KeyByName(kernel, kernelSymbols, name),
                            strict: result.GetValue(strict));
                        Render(check, img.Kind == ImageKind.Module ? null : kernel);
                        return ExitCodes.Of(check.Verdict);
                    }
                }
            }
            else if (Directory.Exists(kernelPath)) throw new UsageException($"--vmlinux {kernelPath} is a directory");
            return ModuleTreeOutput.Run(stdout, stderr, kernelPath, treeDir!, result.GetValue(map), selected, how, result.GetValue(verbose),
                result.GetValue(strict));
        });
        return command;
    }

    static Option<string?> VmlinuxOption() => new("--vmlinux")
    {
        Description = "for a module: the kernel (vmlinux or vmlinuz) it is loaded into, to resolve keys defined there; for check of a kernel: " +
            "the same kernel's unstripped vmlinux, whose DWARF gives SARIF results their source lines", HelpName = "FILE",
    };

    /// <summary>Source lines of addresses from a linked kernel's DWARF, or null when it has none (stripped, a vmlinuz, a module).</summary>
    static Func<ulong, IReadOnlyList<TextPoke.Dwarf.SourceFrame>>? SourceLines(KernelImage image) =>
        image.Kind == ImageKind.Vmlinux && TextPoke.Dwarf.DwarfInfo.Open(image) is { } dwarf ? a => dwarf.Lookup(a) : null;

    /// <summary>Opens the kernel of --vmlinux (if given) and returns a resolver of its keys by name.</summary>
    static KernelImage? ExternalKeys(string? path, out Func<string, StaticKeyInfo?>? resolver)
    {
        resolver = null;
        if (path == null) return null;
        var (kernel, symbols) = Load(path, null);
        resolver = name => JumpLabelCheck.KeyByName(kernel, symbols, name);
        return kernel;
    }

    static IReadOnlyCollection<string>? ParseTables(string? text)
    {
        if (string.IsNullOrWhiteSpace(text) || text == "all") return null;
        var names = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var n in names)
            if (!CheckRunner.KnownTables.Contains(n))
                throw new UsageException($"unknown table '{n}' in --tables (known: {string.Join(", ", CheckRunner.KnownTables)})");
        return names;
    }

    public static Command Keys(TextWriter stdout)
    {
        var image = ImageArgument();
        var map = SystemMapOption();
        var json = JsonOption();
        var vmlinux = VmlinuxOption();
        var command = new Command("keys", "List every static key of IMAGE: name, initial value, number of sites, sites by state.") { image, map, vmlinux,
            json };
        command.SetAction(result =>
        {
            var (img, symbols) = Load(result.GetValue(image)!, result.GetValue(map));
            using (img)
            using (var kernel = ExternalKeys(result.GetValue(vmlinux), out var resolver))
            {
                var report = JumpLabelCheck.Run(img, symbols, resolver);
                if (result.GetValue(json)) JsonOutput.Keys(stdout, img, symbols, report);
                else TextOutput.Keys(stdout, img, symbols, report);
                return report.Absent != null && report.Sites.Length == 0 ? ExitCodes.BadInput : ExitCodes.Clean;
            }
        });
        return command;
    }

    public static Command Sites(TextWriter stdout)
    {
        var image = ImageArgument();
        var map = SystemMapOption();
        var json = JsonOption();
        var key = new Option<string?>("--key") { Description = "only sites of this static key", HelpName = "NAME" };
        var table = new Option<string?>("--table") { Description = $"list the sites of another table instead: " +
            $"{string.Join(", ", SiteTables.All.Where(t => t.Check != null).Select(t => t.Name))}", HelpName = "NAME" };
        var function = new Option<string?>("--function") { Description = "only sites inside this function", HelpName = "NAME" };
        var vmlinux = VmlinuxOption();
        var command = new Command("sites",
            "List the jump-label sites of IMAGE (address, symbol+off/size, size, NOP/JMP, target, key), or with --table the sites of another table.") { image,
            map, vmlinux, key, function, table, json };
        command.SetAction(result =>
        {
            var (img, symbols) = Load(result.GetValue(image)!, result.GetValue(map));
            using (img)
            using (var kernel = ExternalKeys(result.GetValue(vmlinux), out var resolver))
            {
                if (result.GetValue(table) is { } tableName && tableName != JumpLabelCheck.TableName)
                {
                    var definition = SiteTables.All.FirstOrDefault(t => t.Name == tableName && t.Check != null)
                        ?? throw new UsageException($"unknown table '{tableName}' (known: jump, " +
                            $"{string.Join(", ", SiteTables.All.Where(t => t.Check != null).Select(t => t.Name))})");
                    var tableReport = SiteTables.Run(definition, new TableContext(img, symbols));
                    if (tableReport.Bounds == null || tableReport.Absent != null && tableReport.Layout == null)
                        throw new ImageFormatException(img.Path, $"{definition.Title}: {tableReport.Absent}");
                    string? fn = result.GetValue(function);
                    var rows = tableReport.Sites.Where(s => fn == null || symbols.Names.FunctionAt(s.Address) == fn).ToList();
                    if (result.GetValue(json)) JsonOutput.TableSites(stdout, img, symbols, tableReport, rows);
                    else TextOutput.TableSites(stdout, img, symbols, tableReport, rows);
                    return ExitCodes.Clean;
                }
                var report = JumpLabelCheck.Run(img, symbols, resolver);
                if (report.Absent != null && report.Sites.Length == 0)
                    throw new ImageFormatException(img.Path, $"no jump table: {report.Absent}");
                string? keyName = result.GetValue(key), functionName = result.GetValue(function);
                if (keyName != null && !report.Keys.Any(k => k.Name == keyName))
                    throw new UsageException($"no static key named '{keyName}' in {img.Path}");
                if (functionName != null && !symbols.Names.Contains(functionName))
                    throw new UsageException($"no function named '{functionName}' in {img.Path} ({symbols.Describe()})");
                var selected = report.Sites.Where(s =>
                    (keyName == null || report.Keys[s.KeyIndex].Name == keyName) &&
                    (functionName == null || symbols.Names.FunctionAt(s.Entry.Code) == functionName)).ToList();
                if (result.GetValue(json)) JsonOutput.Sites(stdout, img, symbols, report, selected);
                else TextOutput.Sites(stdout, img, symbols, report, selected);
                return ExitCodes.Clean;
            }
        });
        return command;
    }

    public static Command Demo(TextWriter stdout)
    {
        var json = JsonOption();
        var command = new Command("demo",
            "Build a tiny image in memory that reproduces the seed crash (ClangBuiltLinux #1731: a JMP left at swap_writepage+0x1c) and check it. Exits 0 " +
            "when the kernel's line is reproduced.") { json };
        command.SetAction(result =>
        {
            using var img = SeedDemo.Open();
            var symbols = ImageSymbols.Load(img, lookBeside: false);
            var check = CheckRunner.Run(img, symbols);
            if (result.GetValue(json)) JsonOutput.Check(stdout, check);
            else
            {
                stdout.WriteLine("textpoke demo: the seed of this project, ClangBuiltLinux issue 1731. A Clang ThinLTO kernel crashed at boot with");
                stdout.WriteLine("  jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60 [(____ptrval____)] (eb 1c 48 89 df != 66 90 0f " +
                    "1f 00)) size:2 type:1");
                stdout.WriteLine("  kernel BUG at arch/x86/kernel/jump_label.c:73!");
                stdout.WriteLine("when zswap enabled a static key, long after the build that left the site broken. textpoke builds an image with the same");
                stdout.WriteLine("bytes (swap_writepage, its jump-label entry, the key) and checks it without booting; it prints what the kernel would:");
                TextOutput.Findings(stdout, check);
                stdout.WriteLine();
                stdout.WriteLine("Next: textpoke check /boot/vmlinuz-$(uname -r)   (or any vmlinux, vmlinux.o or .ko; --help lists every command)");
            }
            bool reproduced = check.Findings.Any(f => f.KernelLines.Contains(SeedDemo.ExpectedLine));
            return reproduced ? ExitCodes.Clean : ExitCodes.Findings;
        });
        return command;
    }
}
