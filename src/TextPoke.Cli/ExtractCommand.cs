using System.CommandLine;
using TextPoke.Images;
using TextPoke.Images.Elf;
using TextPoke.Symbols;

namespace TextPoke.Cli;

static partial class Commands
{
    public static Command Extract(TextWriter stdout)
    {
        var image = ImageArgument();
        var map = SystemMapOption();
        var output = new Option<string?>("--output", "-o") { Description = "the ELF to write (atomically)", HelpName = "OUT", Required = true };
        var noSymbols = new Option<bool>("--no-symbols") { Description = "write the ELF as it is, without a .symtab" };
        var command = new Command("extract",
            "Write the vmlinux ELF inside a bzImage/vmlinuz, with a .symtab built from the image's own kallsyms (for objdump, gdb, nm).")
        {
            image, map, output, noSymbols,
        };
        command.SetAction(result =>
        {
            var (img, symbols) = Load(result.GetValue(image)!, result.GetValue(map));
            using (img)
            {
                string target = result.GetValue(output)!;
                if (Path.GetFullPath(target) == Path.GetFullPath(img.Path)) throw new UsageException($"-o {target} is the input itself");
                byte[] bytes;
                string what;
                if (result.GetValue(noSymbols) || symbols.Names.Source == SymbolSource.None)
                {
                    bytes = img.ElfImage.ToArray();
                    what = symbols.Names.Source == SymbolSource.None ? "no symbols found to add (no kallsyms, no System.map)"
                        : "no .symtab added (--no-symbols)";
                }
                else if (img.Elf.SymbolTableSection != null)
                {
                    bytes = img.ElfImage.ToArray();
                    what = "it already has a .symtab, kept as it is";
                }
                else
                {
                    bytes = SymtabAppender.Append(img, symbols.Names);
                    what = $".symtab with {symbols.Names.Count} symbols from {symbols.Describe()}";
                }
                ImageWriter.WriteAtomically(target, bytes);
                string from = img.Kind == ImageKind.BzImage ? $"the {Images.BzImage.Compression.Name(img.Compression)} payload of {img.Path}" : img.Path;
                stdout.WriteLine($"wrote    {target}: ELF of {bytes.Length / (1024 * 1024)} MiB from {from}; {what}");
                return ExitCodes.Clean;
            }
        });
        return command;
    }
}
