using System.CommandLine;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary>The tool's command tree.</summary>
internal static class Commands
{
    /// <summary>The root command with every subcommand.</summary>
    public static RootCommand Root()
    {
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
        root.Subcommands.Add(EnergyCommand.Create());
        root.Subcommands.Add(ClusterCommand.Create());
        root.Subcommands.Add(MethodSettings.ListCommand());
        return root;
    }
}
