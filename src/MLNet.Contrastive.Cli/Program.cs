using System.CommandLine;
using MLNet.Contrastive.Cli.Commands;

var root = new RootCommand("mlnet-contrastive: self-supervised image pretraining (SimCLR and more) for ML.NET.");
root.Subcommands.Add(PretrainCommand.Create());
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(ProbeCommand.Create());
root.Subcommands.Add(EmbedCommand.Create());
root.Subcommands.Add(ScoreCommand.Create());
root.Subcommands.Add(ExportOnnxCommand.Create());
return root.Parse(args).Invoke();
