using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Metrics;

namespace MLNet.Contrastive.Evaluation;

/// <summary>Precision, recall and F1 of one class, and how many test rows hold it.</summary>
public sealed record ClassMetrics(string Label, double Precision, double Recall, double F1, int Support);

/// <summary>What the linear evaluation protocol measured on the test rows.</summary>
/// <param name="Accuracy">Fraction of test rows predicted correctly.</param>
/// <param name="MacroF1">Unweighted mean of the per-class F1 scores.</param>
/// <param name="Classes">Per-class metrics, in <see cref="Labels"/> order.</param>
/// <param name="Labels">Class names; row and column order of <see cref="ConfusionMatrix"/>.</param>
/// <param name="ConfusionMatrix">[true class][predicted class] counts.</param>
/// <param name="TrainingRows">Labelled rows the probe was trained on (after the label fraction).</param>
/// <param name="Probe">The fitted probe (features → PredictedLabel), ready to append to an embedding stage.</param>
public sealed record LinearEvaluationResult(double Accuracy, double MacroF1, IReadOnlyList<ClassMetrics> Classes,
    IReadOnlyList<string> Labels, int[][] ConfusionMatrix, int TrainingRows, TransformerChain<ITransformer> Probe);

/// <summary>
/// The linear evaluation protocol: fit a <see cref="LinearProbeEstimator"/> on (a stratified, seeded fraction of)
/// the labelled training rows, score the test rows.
/// </summary>
public static class LinearEvaluation
{
    /// <summary>
    /// Trains the probe on <paramref name="labelFraction"/> of <paramref name="train"/> (stratified per class, at least
    /// one row per class, chosen with <paramref name="seed"/>) and evaluates it on <paramref name="test"/>.
    /// Both views need a label column and a float-vector feature column named as in <paramref name="probe"/>.
    /// </summary>
    public static LinearEvaluationResult Evaluate(MLContext mlContext, IDataView train, IDataView test, double labelFraction = 1.0,
        int seed = 0, LinearProbeEstimator.Options? probe = null)
    {
        CheckFraction(labelFraction);
        probe ??= new LinearProbeEstimator.Options();
        var rows = Read(mlContext, train, probe);
        return Fit(mlContext, i => rows.Features[i], rows.Labels, test, labelFraction, seed, probe);
    }

    /// <summary>
    /// Fits the probe on the sampled rows only (<paramref name="row"/> is asked for those) and scores <paramref name="test"/>:
    /// with 27,648-d raw pixels of 96 px RGB images, copying every training row first took the process to 19 GiB.
    /// </summary>
    private static LinearEvaluationResult Fit(MLContext mlContext, Func<int, float[]> row, IReadOnlyList<string> labels, IDataView test,
        double labelFraction, int seed, LinearProbeEstimator.Options probe)
    {
        var kept = StratifiedSample(labels, labelFraction, seed);
        var model = new LinearProbeEstimator(mlContext, probe).Fit(ToDataView(mlContext, kept.Select(row).ToList(), kept.Select(i => labels[i]).ToList(), probe));
        var scored = model.Transform(test);
        var truth = DataViewReader.ReadText(mlContext, scored, probe.LabelColumnName);
        var predicted = DataViewReader.ReadText(mlContext, scored, probe.PredictedLabelColumnName);
        return Metrics(truth, predicted, kept.Count, model);
    }

    /// <summary>
    /// The protocol on <see cref="Embeddings"/>; labels are class indices, named by <paramref name="labelNames"/>
    /// when given (the probe then predicts those names), else by the indices themselves.
    /// </summary>
    public static LinearEvaluationResult Evaluate(MLContext mlContext, Embeddings train, Embeddings test, double labelFraction = 1.0,
        int seed = 0, IReadOnlyList<string>? labelNames = null, LinearProbeEstimator.Options? probe = null)
    {
        CheckFraction(labelFraction);
        probe ??= new LinearProbeEstimator.Options();
        string Name(int label) => labelNames?[label] ?? label.ToString(System.Globalization.CultureInfo.InvariantCulture);
        List<string> Names(Embeddings e) => (e.Labels ?? throw new ArgumentException("The linear probe needs labelled embeddings.")).Select(Name).ToList();
        var testView = ToDataView(mlContext, Enumerable.Range(0, test.Count).Select(i => test.Row(i).ToArray()).ToList(), Names(test), probe);
        return Fit(mlContext, i => train.Row(i).ToArray(), Names(train), testView, labelFraction, seed, probe);
    }

    /// <summary>Indices of about <paramref name="fraction"/> of the rows of every class (at least one), shuffled by <paramref name="seed"/>, in row order.</summary>
    public static IReadOnlyList<int> StratifiedSample(IReadOnlyList<string> labels, double fraction, int seed)
    {
        if (fraction >= 1) return Enumerable.Range(0, labels.Count).ToList();
        var random = new Random(seed);
        var kept = new List<int>();
        foreach (var group in Enumerable.Range(0, labels.Count).GroupBy(i => labels[i]).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var members = group.ToArray();
            random.Shuffle(members);
            kept.AddRange(members.Take(Math.Max(1, (int)Math.Round(fraction * members.Length))));
        }
        kept.Sort();
        return kept;
    }

    private static LinearEvaluationResult Metrics(IReadOnlyList<string> truth, IReadOnlyList<string> predicted, int trainingRows,
        TransformerChain<ITransformer> probe)
    {
        var labels = truth.Concat(predicted).Distinct().Order(StringComparer.Ordinal).ToList();
        var index = labels.Select((l, i) => (l, i)).ToDictionary(p => p.l, p => p.i);
        var matrix = labels.Select(_ => new int[labels.Count]).ToArray();
        for (var i = 0; i < truth.Count; i++) matrix[index[truth[i]]][index[predicted[i]]]++;
        var classes = labels.Select((label, c) =>
        {
            int correct = matrix[c][c], support = matrix[c].Sum(), predictedCount = matrix.Sum(row => row[c]);
            double precision = predictedCount == 0 ? 0 : (double)correct / predictedCount, recall = support == 0 ? 0 : (double)correct / support;
            return new ClassMetrics(label, precision, recall, precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall), support);
        }).ToList();
        var accuracy = (double)Enumerable.Range(0, labels.Count).Sum(c => matrix[c][c]) / truth.Count;
        var present = classes.Where(c => c.Support > 0).ToList();
        return new LinearEvaluationResult(accuracy, present.Average(c => c.F1), classes, labels, matrix, trainingRows, probe);
    }

    private static void CheckFraction(double labelFraction)
    {
        if (labelFraction is <= 0 or > 1 || double.IsNaN(labelFraction))
            throw new ArgumentOutOfRangeException(nameof(labelFraction), labelFraction, "The label fraction must be in (0, 1].");
    }

    private static (List<float[]> Features, List<string> Labels) Read(MLContext mlContext, IDataView data, LinearProbeEstimator.Options probe)
    {
        foreach (var name in new[] { probe.LabelColumnName, probe.FeatureColumnName })
            if (data.Schema.GetColumnOrNull(name) is null) throw new ArgumentOutOfRangeException(nameof(data), $"Could not find input column '{name}'");
        var labels = DataViewReader.ReadText(mlContext, data, probe.LabelColumnName);
        var features = data.Schema[probe.FeatureColumnName].Type is VectorDataViewType { ItemType: NumberDataViewType } vector && vector.ItemType == NumberDataViewType.Single
            ? data.GetColumn<VBuffer<float>>(probe.FeatureColumnName).Select(v => v.DenseValues().ToArray()).ToList()
            : throw new ArgumentOutOfRangeException(nameof(data), $"Schema mismatch for input column '{probe.FeatureColumnName}': expected vector of Single, got {data.Schema[probe.FeatureColumnName].Type}");
        return (features, labels);
    }

    private static IDataView ToDataView(MLContext mlContext, IReadOnlyList<float[]> features, IReadOnlyList<string> labels, LinearProbeEstimator.Options probe) =>
        Embeddings.ToDataView(mlContext, features, labels, probe.FeatureColumnName, probe.LabelColumnName);
}
