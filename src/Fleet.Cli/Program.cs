using Fleet.Cli;
using Spectre.Console;

// Piped output is not wrapped at 80 columns: a table row stays one line for grep and awk.
var console = AnsiConsole.Console;
if (Console.IsOutputRedirected) console.Profile.Width = 1000;
return await Fleetctl.RunAsync(args, console, Console.Error, stderrIsTerminal: !Console.IsErrorRedirected);
