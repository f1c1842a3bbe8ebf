using MLNet.Contrastive.Cli.Commands;
using Spectre.Console;

// Logs and CI capture output through a pipe; give tables room instead of Spectre's 80-column default.
if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;

return Commands.Root().Parse(args).Invoke();
