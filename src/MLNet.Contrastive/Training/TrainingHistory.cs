using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using MLNet.Contrastive.Runtime;

namespace MLNet.Contrastive.Training;

/// <summary>One optimisation step; <paramref name="Monitors"/> holds the method's own signals of the step (<see cref="Methods.PretrainingMethod.StepMonitors"/>), null when it has none.</summary>
public sealed record StepRecord(int Step, int Epoch, double Loss, double LearningRate, double ElapsedSeconds,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Dictionary<string, double>? Monitors = null);

/// <summary>One finished epoch (possibly partial when a time budget ends it).</summary>
public sealed record EpochRecord(int Epoch, int Steps, double MeanLoss, double Seconds, double ViewsPerSecond);

/// <summary>The monitors after one epoch: kNN accuracy (k = 200, T = 0.1) when labels exist, and the collapse signals.</summary>
public sealed record MonitorRecord(int Epoch, double? KnnAccuracy, double StdOfNormalized, double ExpectedStd, double EffectiveRank,
    double Uniformity, double? Alignment, bool Collapsed)
{
    /// <summary>One line: kNN accuracy (when measured), the collapse signals, uniformity and alignment.</summary>
    public string Describe() =>
        (KnnAccuracy is { } knn ? $"kNN {knn:P2}, " : "") +
        $"std of normalised embeddings {StdOfNormalized:F4} (1/√D {ExpectedStd:F4}), effective rank {EffectiveRank:F1}, " +
        $"uniformity {Uniformity:F3}" + (Alignment is { } alignment ? $", alignment {alignment:F3}" : "");

    /// <summary>The warning for a collapsed encoder, with the signals that show it.</summary>
    public string CollapseWarning() =>
        $"Epoch {Epoch}: the encoder has collapsed (std {StdOfNormalized:G3} vs 1/√D {ExpectedStd:G3}, effective rank {EffectiveRank:F1}); " +
        "lower the learning rate or change the method's settings.";
}

/// <summary>Loss per step and per epoch of a pretraining run, written as JSON or CSV.</summary>
public sealed class TrainingHistory
{
    /// <summary>One record per optimizer step.</summary>
    public List<StepRecord> Steps { get; set; } = [];
    /// <summary>One record per epoch (a partial one when a run stopped mid-epoch).</summary>
    public List<EpochRecord> Epochs { get; set; } = [];
    /// <summary>The monitors' records, when they ran.</summary>
    public List<MonitorRecord> Monitors { get; set; } = [];

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>The history as JSON (<see cref="RunFolder.HistoryFile"/>).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Writes the history's JSON and CSV files into the run folder <paramref name="folder"/>, each atomically.</summary>
    public void Save(string folder)
    {
        var run = new RunFolder(folder);
        AtomicFile.WriteAllText(run.History, ToJson());
        AtomicFile.WriteAllText(run.HistoryCsv, ToCsv());
    }

    /// <summary>A history from JSON; an empty history for "null".</summary>
    public static TrainingHistory FromJson(string json) => JsonSerializer.Deserialize<TrainingHistory>(json) ?? new();

    /// <summary>Reads a history's JSON file, naming the file when it is damaged (not JSON, or a list missing or holding empty entries).</summary>
    public static TrainingHistory Load(string path)
    {
        TrainingHistory? history;
        try { history = FromJson(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a training history written by pretrain or demo ({e.Message}).", e); }
        return history.Damage() is { } damage
            ? throw new InvalidDataException($"{path}: a damaged training history (its {damage} are missing or hold empty entries).")
            : history;
    }

    /// <summary>The list of a deserialised history that is missing or holds empty entries ("steps", "epochs", "monitors"), or null.</summary>
    internal string? Damage() =>
        Steps is null || Steps.Contains(null!) ? "steps"
        : Epochs is null || Epochs.Contains(null!) ? "epochs"
        : Monitors is null || Monitors.Contains(null!) ? "monitors"
        : null;

    /// <summary>CSV with one row per step: step, epoch, loss, learning_rate, elapsed_seconds.</summary>
    public string ToCsv()
    {
        var csv = new StringBuilder("step,epoch,loss,learning_rate,elapsed_seconds\n");
        foreach (var s in Steps)
            csv.Append(CultureInfo.InvariantCulture, $"{s.Step},{s.Epoch},{s.Loss:R},{s.LearningRate:R},{s.ElapsedSeconds:F3}\n");
        return csv.ToString();
    }
}
