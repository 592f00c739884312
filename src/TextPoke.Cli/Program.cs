using TextPoke.Cli;

return TextPokeCli.Run(args, Console.Out, Console.Error);
