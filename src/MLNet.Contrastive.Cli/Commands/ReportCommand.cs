using System.CommandLine;
using MLNet.Contrastive.Reporting;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary><c>report --run &lt;dir&gt;</c>: renders a run folder's report.json (and its latest history.json) as report.html.</summary>
internal static class ReportCommand
{
    public const string HtmlFile = "report.html";

    public static Command Create()
    {
        var run = new Option<string>("--run") { Description = "Run folder written by pretrain or demo (holds report.json).", Required = true };
        var output = new Option<string?>("--out") { Description = $"HTML file to write; default <run>/{HtmlFile}." };
        var command = new Command("report", "Write the HTML report of a pretrain or demo run: loss, learning rate, monitors, label efficiency, PCA, nearest neighbours.")
        {
            run, output,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var folder = parse.GetValue(run)!;
            var data = Path.Combine(folder, RunReport.FileName);
            if (!File.Exists(data))
                throw new FileNotFoundException($"{folder}: no {RunReport.FileName}; pretrain and demo write it into their --out folder.");
            var report = RunReport.Load(data);
            // A resumed run appends to history.json after the report was saved; show the latest.
            var history = Path.Combine(folder, "history.json");
            if (File.Exists(history)) report.History = TrainingHistory.Load(history);
            Console.WriteLine($"Wrote {Write(report, folder, parse.GetValue(output))}.");
            return 0;
        }));
        return command;
    }

    /// <summary>Saves report.json into <paramref name="folder"/> and writes the HTML page; returns the page's path.</summary>
    internal static string Save(RunReport report, string folder)
    {
        report.Save(Path.Combine(folder, RunReport.FileName));
        return Write(report, folder, null);
    }

    private static string Write(RunReport report, string folder, string? output)
    {
        var path = output ?? Path.Combine(folder, HtmlFile);
        ReportWriter.Write(report, path);
        return path;
    }
}
