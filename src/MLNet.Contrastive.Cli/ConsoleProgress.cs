using System.Diagnostics;
using MLNet.Contrastive.Training;
using Spectre.Console;

namespace MLNet.Contrastive.Cli;

/// <summary>
/// Shows pretraining progress: a Spectre.Console progress bar on a terminal, a plain line every few seconds
/// (and at each new epoch) when output is redirected, as in CI logs.
/// </summary>
internal sealed class ConsoleProgress : IProgress<PretrainProgress>
{
    private static readonly TimeSpan LineInterval = TimeSpan.FromSeconds(10);
    private readonly ProgressTask? task;
    private readonly Stopwatch sinceLine = Stopwatch.StartNew();
    private int lastEpoch;

    private ConsoleProgress(ProgressTask? task) => this.task = task;

    /// <summary>Runs <paramref name="train"/> while showing its progress.</summary>
    public static T Run<T>(string title, Func<IProgress<PretrainProgress>, T> train)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive || Console.IsOutputRedirected)
        {
            Console.WriteLine($"{title}…");
            return train(new ConsoleProgress(null));
        }
        return AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(context => train(new ConsoleProgress(context.AddTask(title, maxValue: 1.0))));
    }

    public void Report(PretrainProgress p)
    {
        var line = $"epoch {p.Epoch} step {p.Step} loss {p.Loss:F4} lr {p.LearningRate:G3} {p.ViewsPerSecond:F0} views/s ETA {p.Remaining:mm\\:ss}";
        if (task is not null)
        {
            task.Description = Markup.Escape(line);
            task.Value = p.Progress;
            return;
        }
        if (p.Epoch != lastEpoch || sinceLine.Elapsed >= LineInterval)
        {
            Console.WriteLine($"  {line}");
            lastEpoch = p.Epoch;
            sinceLine.Restart();
        }
    }
}
