using System.Globalization;
using Microsoft.ML;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Stages;
using MLNet.Contrastive.Metrics;

namespace MLNet.Contrastive.Evaluation;

/// <summary>Test accuracy of one kind of features when the probe saw <see cref="LabelFraction"/> of the training labels.</summary>
public sealed record LabelEfficiencyPoint(string Features, double LabelFraction, int LabeledImages, double Accuracy);

/// <summary>
/// The label-efficiency curve: linear-probe accuracy at growing fractions of the labels (stratified, seeded; the same
/// rows for every kind of features), and fine-tuning — of a pretrained encoder, or from scratch — on exactly those rows.
/// </summary>
public static class LabelEfficiency
{
    /// <summary>1 %, 10 % and 100 % of the labels.</summary>
    public static IReadOnlyList<double> StandardFractions { get; } = [0.01, 0.1, 1.0];

    /// <summary>The linear probe on <paramref name="train"/> at each fraction, scored on <paramref name="test"/>.</summary>
    public static IReadOnlyList<LabelEfficiencyPoint> Probe(MLContext mlContext, string features, Embeddings train, Embeddings test,
        IReadOnlyList<double> fractions, int seed = 0) =>
        fractions.Select(fraction =>
        {
            var result = LinearEvaluation.Evaluate(mlContext, train, test, fraction, seed);
            return new LabelEfficiencyPoint(features, fraction, result.TrainingRows, result.Accuracy);
        }).ToList();

    /// <summary>
    /// For each fraction, fine-tunes with <paramref name="options"/> on the rows the probe would see — from
    /// <see cref="FineTuningTrainer.Options.Pretrained"/>, or from scratch when it is null (the supervised baseline with
    /// the same encoder, budget and views) — and scores the test images with the fitted stage's classifier. With
    /// FixMatch or distillation the other training images are its unlabelled ones. <paramref name="features"/> names the row.
    /// </summary>
    public static IReadOnlyList<LabelEfficiencyPoint> FineTuned(MLContext mlContext, string features, ImageStore train, ImageStore test,
        IReadOnlyList<double> fractions, FineTuningTrainer.Options options, int seed = 0, Action<double, int>? starting = null)
    {
        var labels = train.Labels ?? throw new ArgumentException("Fine-tuning needs labelled training images.", nameof(train));
        var names = train.LabelNames ?? Enumerable.Range(0, labels.Max() + 1).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList();
        // The probe names classes by index when no names are given; sampling on the same texts picks the same rows.
        var texts = labels.Select(l => l.ToString(CultureInfo.InvariantCulture)).ToList();
        return fractions.Select(fraction =>
        {
            var sample = LinearEvaluation.StratifiedSample(texts, fraction, seed);
            starting?.Invoke(fraction, sample.Count);
            var images = options.UsesUnlabelled ? train.KeepLabelsOf(sample) : train.Subset(sample);
            using var stage = new FineTuningTrainer(mlContext, options).Fit(images, names);
            return new LabelEfficiencyPoint(features, fraction, sample.Count, stage.Evaluate(mlContext, test).MicroAccuracy);
        }).ToList();
    }
}
