using System.CommandLine;
using MLNet.Contrastive.Cli.Commands;
using Spectre.Console;

// Logs and CI capture output through a pipe; give tables room instead of Spectre's 80-column default.
if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;

var root = new RootCommand("mlnet-contrastive: self-supervised image pretraining (SimCLR and more) for ML.NET.");
root.Subcommands.Add(PretrainCommand.Create());
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(ProbeCommand.Create());
root.Subcommands.Add(FineTuneCommand.Create());
root.Subcommands.Add(CaptionsCommand.Create());
root.Subcommands.Add(ZeroShotCommand.Create());
root.Subcommands.Add(EmbedCommand.Create());
root.Subcommands.Add(ScoreCommand.Create());
root.Subcommands.Add(ExportOnnxCommand.Create());
root.Subcommands.Add(ReportCommand.Create());
root.Subcommands.Add(SelectCommand.Create());
root.Subcommands.Add(DuplicatesCommand.Create());
root.Subcommands.Add(SimilarCommand.Create());
root.Subcommands.Add(MethodSettings.ListCommand());
return root.Parse(args).Invoke();
