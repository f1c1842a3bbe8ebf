using System.CommandLine;
using MLNet.Contrastive.Reporting;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary><c>report --run &lt;dir&gt;</c>: renders a run folder's report.json (and its latest history.json) as report.html.</summary>
internal static class ReportCommand
{
    public static Command Create()
    {
        var run = new Option<string>("--run") { Description = "Run folder written by pretrain or demo (holds report.json).", Required = true };
        var output = new Option<string?>("--out") { Description = $"HTML file to write; default <run>/{RunFolder.ReportHtmlFile}." };
        var command = new Command("report", "Write the HTML report of a pretrain or demo run: loss, learning rate, monitors, label efficiency, PCA, nearest neighbours.")
        {
            run, output,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var folder = new RunFolder(parse.GetValue(run)!);
            if (!File.Exists(folder.Report))
                throw new FileNotFoundException($"{folder.Path}: no {RunFolder.ReportFile}; pretrain and demo write it into their --out folder.");
            var report = RunReport.Load(folder.Report);
            // A resumed run appends to the history after the report was saved; show the latest.
            if (File.Exists(folder.History)) report.History = TrainingHistory.Load(folder.History);
            Console.WriteLine($"Wrote {Write(report, folder, parse.GetValue(output))}.");
            return 0;
        }));
        return command;
    }

    /// <summary>Saves report.json into <paramref name="folder"/> and writes the HTML page; returns the page's path.</summary>
    internal static string Save(RunReport report, string folder)
    {
        var run = new RunFolder(folder);
        report.Save(run.Report);
        return Write(report, run, null);
    }

    private static string Write(RunReport report, RunFolder folder, string? output)
    {
        var path = output ?? folder.ReportHtml;
        ReportWriter.Write(report, path);
        return path;
    }
}
