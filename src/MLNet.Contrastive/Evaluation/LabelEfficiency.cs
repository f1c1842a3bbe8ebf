using System.Globalization;
using Microsoft.ML;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Selection;

namespace MLNet.Contrastive.Evaluation;

/// <summary>
/// Test accuracy of one kind of features when the probe saw <see cref="LabelFraction"/> of the training labels: the
/// mean over <see cref="Samples"/> label samples (one at 100 %, where every sample is every row).
/// </summary>
public sealed record LabelEfficiencyPoint(string Features, double LabelFraction, int LabeledImages, double Accuracy, int Samples = 1);

/// <summary>
/// The label-efficiency curve: linear-probe accuracy at growing fractions of the labels (stratified, seeded; the same
/// rows for every kind of features), and fine-tuning — of a pretrained encoder, or from scratch — on exactly those rows.
/// </summary>
public static class LabelEfficiency
{
    /// <summary>1 %, 10 % and 100 % of the labels.</summary>
    public static IReadOnlyList<double> StandardFractions { get; } = [0.01, 0.1, 1.0];

    /// <summary>A label fraction as a percentage for tables and captions: 0.001 → "0.1 %", 0.01 → "1 %".</summary>
    public static string Percent(double fraction) => string.Create(CultureInfo.InvariantCulture, $"{100 * fraction:0.##} %");

    /// <summary>
    /// The linear probe on <paramref name="train"/> at each fraction, scored on <paramref name="test"/>; below 100 % the
    /// mean over <paramref name="samples"/> label samples, seeded <paramref name="seed"/>, <paramref name="seed"/> + 1, ….
    /// </summary>
    public static IReadOnlyList<LabelEfficiencyPoint> Probe(MLContext mlContext, string features, Embeddings train, Embeddings test,
        IReadOnlyList<double> fractions, int seed = 0, int samples = 1) =>
        fractions.Select(fraction => MeanOverSamples(features, fraction, seed, samples, sampleSeed =>
        {
            var result = LinearEvaluation.Evaluate(mlContext, train, test, fraction, sampleSeed);
            return (result.TrainingRows, result.Accuracy);
        })).ToList();

    /// <summary>
    /// The point at <paramref name="fraction"/>: <paramref name="measure"/> (labelled rows and test accuracy for a label
    /// sample's seed) averaged over seeds <paramref name="seed"/> … + <paramref name="samples"/> − 1, or measured once at
    /// 100 %, where every sample is every row.
    /// </summary>
    private static LabelEfficiencyPoint MeanOverSamples(string features, double fraction, int seed, int samples, Func<int, (int Rows, double Accuracy)> measure)
    {
        if (samples < 1) throw new ArgumentOutOfRangeException(nameof(samples), samples, "samples must be at least 1.");
        var results = Enumerable.Range(seed, fraction >= 1 ? 1 : samples).Select(measure).ToList();
        return new LabelEfficiencyPoint(features, fraction, results[0].Rows, results.Average(r => r.Accuracy), results.Count);
    }

    /// <summary>
    /// For each fraction, fine-tunes with <paramref name="options"/> on the rows the probe would see — from
    /// <see cref="FineTuningTrainer.Options.Pretrained"/>, or from scratch when it is null (the supervised baseline with
    /// the same encoder, budget and views) — and scores the test images with the fitted stage's classifier. With
    /// FixMatch or distillation the other training images are its unlabelled ones. <paramref name="features"/> names the row.
    /// Below 100 % the accuracy is the mean over <paramref name="samples"/> label samples, as for <see cref="Probe"/>.
    /// </summary>
    public static IReadOnlyList<LabelEfficiencyPoint> FineTuned(MLContext mlContext, string features, ImageStore train, ImageStore test,
        IReadOnlyList<double> fractions, FineTuningTrainer.Options options, int seed = 0, Action<double, int>? starting = null, int samples = 1)
    {
        var labels = train.Labels ?? throw new ArgumentException("Fine-tuning needs labelled training images.", nameof(train));
        var names = train.LabelNames ?? Enumerable.Range(0, labels.Max() + 1).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList();
        // The probe names classes by index when no names are given; sampling on the same texts picks the same rows.
        var texts = labels.Select(l => l.ToString(CultureInfo.InvariantCulture)).ToList();
        return fractions.Select(fraction => MeanOverSamples(features, fraction, seed, samples, sampleSeed =>
        {
            var sample = LinearEvaluation.StratifiedSample(texts, fraction, sampleSeed);
            starting?.Invoke(fraction, sample.Count);
            var images = options.UsesUnlabelled ? train.KeepLabelsOf(sample) : train.Subset(sample);
            using var stage = new FineTuningTrainer(mlContext, options).Fit(images, names);
            return (sample.Count, stage.Evaluate(mlContext, test).MicroAccuracy);
        })).ToList();
    }
    /// <summary>
    /// The linear probe when the labelled rows are <paramref name="budget"/> rows of <paramref name="train"/> chosen by
    /// <paramref name="strategy"/> from the embeddings alone (labels unseen), scored on <paramref name="test"/>: the mean
    /// over <paramref name="samples"/> selection seeds (<paramref name="seed"/>, + 1, …); the accuracies, seed by seed, in
    /// <paramref name="accuracies"/> when given. A class the selection missed is one the probe cannot predict.
    /// <paramref name="settings"/>, when given, supplies the strategy's other settings (ProbCover's δ, …).
    /// </summary>
    public static LabelEfficiencyPoint ProbeSelected(MLContext mlContext, string features, Embeddings train, Embeddings test, int budget,
        SelectionStrategy strategy, int seed = 0, int samples = 1, List<double>? accuracies = null, LabelSelectionOptions? settings = null)
    {
        var labels = train.Labels ?? throw new ArgumentException("The linear probe needs labelled training embeddings.", nameof(train));
        return MeanOverSamples(features, (double)budget / train.Count, seed, samples, sampleSeed =>
        {
            var options = settings?.Clone() ?? new LabelSelectionOptions();
            (options.Strategy, options.Budget, options.Seed) = (strategy, budget, sampleSeed);
            var rows = LabelSelection.Select(train, options);
            var chosen = new Embeddings(VectorMath.Gather(train.Values, train.Dimension, rows), rows.Length, train.Dimension, rows.Select(i => labels[i]).ToArray());
            var accuracy = LinearEvaluation.Evaluate(mlContext, chosen, test, 1.0, sampleSeed).Accuracy;
            accuracies?.Add(accuracy);
            return (rows.Length, accuracy);
        });
    }
}
