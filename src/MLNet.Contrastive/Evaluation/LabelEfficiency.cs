using System.Globalization;
using Microsoft.ML;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;
using MLNet.Contrastive.Metrics;

namespace MLNet.Contrastive.Evaluation;

/// <summary>Test accuracy of one kind of features when the probe saw <see cref="LabelFraction"/> of the training labels.</summary>
public sealed record LabelEfficiencyPoint(string Features, double LabelFraction, int LabeledImages, double Accuracy);

/// <summary>
/// The label-efficiency curve: linear-probe accuracy at growing fractions of the labels (stratified, seeded; the same
/// rows for every kind of features), and the supervised-from-scratch baseline trained on exactly those rows.
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
    /// For each fraction, trains the encoder of <paramref name="options"/> from scratch with labels only (method
    /// <c>supervised</c>, the budget of <paramref name="options"/>) on the rows the probe would see, then runs the linear
    /// probe on its features with those rows.
    /// </summary>
    public static IReadOnlyList<LabelEfficiencyPoint> SupervisedFromScratch(MLContext mlContext, ImageStore train, ImageStore test,
        IReadOnlyList<double> fractions, PretrainOptions options, int seed = 0, Action<double, int>? starting = null)
    {
        var labels = train.Labels ?? throw new ArgumentException("Supervised training needs labelled training images.", nameof(train));
        // The probe names classes by index when no names are given; sampling on the same texts picks the same rows.
        var texts = labels.Select(l => l.ToString(CultureInfo.InvariantCulture)).ToList();
        return fractions.Select(fraction =>
        {
            var subset = train.Subset(LinearEvaluation.StratifiedSample(texts, fraction, seed));
            starting?.Invoke(fraction, subset.Count);
            var supervised = options.Clone();
            supervised.Method = new SupervisedOptions();
            supervised.BatchSize = Math.Min(options.BatchSize, subset.Count);
            supervised.CheckpointPath = null;
            supervised.MonitorEvery = 0;
            var encoder = new Pretrainer(supervised, mlContext).Fit(subset).Encoder;
            var result = LinearEvaluation.Evaluate(mlContext, Embeddings.FromEncoder(encoder, train), Embeddings.FromEncoder(encoder, test), fraction, seed);
            return new LabelEfficiencyPoint("Supervised from scratch", fraction, result.TrainingRows, result.Accuracy);
        }).ToList();
    }
}
