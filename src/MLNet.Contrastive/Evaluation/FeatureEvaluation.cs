using Microsoft.ML;
using MLNet.Contrastive.Metrics;

namespace MLNet.Contrastive.Evaluation;

/// <summary>Accuracy, collapse signals and clustering scores of one kind of features on the test images.</summary>
public sealed record FeatureSummary(string Features, double ProbeAccuracy, double KnnAccuracy, CollapseSignals Collapse,
    IReadOnlyList<ClusteringScore> Clustering);

/// <summary>The standard evaluation of one kind of features: what the demo, the report and the benchmarks show for each row.</summary>
public static class FeatureEvaluation
{
    /// <summary>
    /// The linear probe at each label fraction (stratified, seeded), kNN accuracy (k = 200, T = 0.1), and on the test
    /// embeddings the collapse signals and k-means clusterings at K/2, K and 2K. <paramref name="features"/> names the row;
    /// below 100 % the probe's accuracy is the mean over <paramref name="samples"/> label samples.
    /// </summary>
    public static (FeatureSummary Summary, IReadOnlyList<LabelEfficiencyPoint> Curve) Evaluate(MLContext mlContext, string features,
        Embeddings train, Embeddings test, IReadOnlyList<double> fractions, int seed = 0, int samples = 1)
    {
        var curve = LabelEfficiency.Probe(mlContext, features, train, test, fractions, seed, samples);
        var summary = new FeatureSummary(features, curve[^1].Accuracy, KnnClassifier.Accuracy(train, test),
            RepresentationMetrics.Measure(test), ClusteringDiagnostics.Evaluate(mlContext, test));
        return (summary, curve);
    }
}
