using System.Text.Json;
using MLNet.Contrastive.Runtime;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Reporting;

/// <summary>One test embedding projected on its first two principal components.</summary>
public sealed record ProjectedPoint(float X, float Y, string Label);

/// <summary>An image (as a PNG data URI) and its label.</summary>
public sealed record LabeledImage(string Label, string PngDataUri);

/// <summary>A query image and its nearest neighbours by cosine similarity of the embeddings, nearest first.</summary>
public sealed record NeighbourRow(LabeledImage Query, IReadOnlyList<LabeledImage> Neighbours);

/// <summary>
/// Everything the HTML report shows about one run; <c>pretrain</c> and <c>demo</c> save it as <c>report.json</c> in
/// the run folder, and <c>report --run</c> renders it again.
/// </summary>
public sealed class RunReport
{
    /// <summary>The page's title.</summary>
    public string Title { get; set; } = "Pretraining run";

    /// <summary>Data, method, budget and machine, one line each.</summary>
    public List<string> Facts { get; set; } = [];

    /// <summary>Loss, learning rate and monitors of the run.</summary>
    public TrainingHistory History { get; set; } = new();
    /// <summary>Accuracy, collapse signals and clustering scores of each kind of features.</summary>
    public List<FeatureSummary> Features { get; set; } = [];
    /// <summary>The label-efficiency curve: one point per kind of features and label fraction.</summary>
    public List<LabelEfficiencyPoint> LabelEfficiency { get; set; } = [];

    /// <summary>What <see cref="Projection"/> and <see cref="Neighbours"/> were computed on, e.g. "1,000 test images".</summary>
    public string EmbeddedImages { get; set; } = "";
    /// <summary>The 2-D PCA projection of the embedded images.</summary>
    public List<ProjectedPoint> Projection { get; set; } = [];
    /// <summary>Query images and their nearest neighbours.</summary>
    public List<NeighbourRow> Neighbours { get; set; } = [];

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    /// <summary>Writes the report as JSON to <paramref name="path"/> (atomically).</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, Json));

    /// <summary>Reads a report.json, naming the file when it is damaged.</summary>
    public static RunReport Load(string path)
    {
        try
        {
            var report = JsonSerializer.Deserialize<RunReport>(File.ReadAllText(path)) ?? throw new InvalidDataException($"{path}: empty report data.");
            var damage = report.Facts is null || report.Features is null || report.LabelEfficiency is null || report.Projection is null || report.Neighbours is null
                         || report.Features.Contains(null!) || report.LabelEfficiency.Contains(null!) || report.Neighbours.Contains(null!) ? "a list is missing or holds empty entries"
                : report.History is null ? "the history is missing"
                : report.History.Damage() is { } part ? $"the history's {part} are missing or hold empty entries"
                : null;
            return damage is null ? report : throw new InvalidDataException($"{path}: damaged report data ({damage}).");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not report data written by pretrain or demo ({e.Message}).", e);
        }
    }
}
