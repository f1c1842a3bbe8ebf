using Microsoft.ML;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Metrics;

public class RepresentationMetricsTests
{
    private static Embeddings FromRows(float[][] rows, int[]? labels = null) =>
        new(rows.SelectMany(r => r).ToArray(), rows.Length, rows[0].Length, labels);

    [Test]
    public void EqualSingularValuesGiveAnEffectiveRankOfTheirCount()
    {
        // Rows cycling through e1, e2, e3 in 8 dimensions: three equal singular values, so RankMe = 3.
        var rows = Enumerable.Range(0, 30).Select(i => Enumerable.Range(0, 8).Select(d => d == i % 3 ? 1f : 0f).ToArray()).ToArray();
        Assert.That(RepresentationMetrics.EffectiveRank(FromRows(rows)), Is.EqualTo(3).Within(1e-6));
    }

    [TestCase(40, 300)]
    [TestCase(300, 40)]
    public void EffectiveRankEqualsRankMeOnTheSingularValues(int rows, int dimension)
    {
        // Columns scaled by 1/(d+1): a decaying spectrum. Reference: RankMe on the singular values from an SVD.
        var random = new Random(2);
        var values = Enumerable.Range(0, rows * dimension).Select(i => (float)(Gaussian(random) / (i % dimension + 1))).ToArray();
        var embeddings = new Embeddings(values, rows, dimension, null);
        MLNet.Contrastive.Runtime.TorchRuntime.Initialize();
        using var matrix = TorchSharp.torch.tensor(values, new long[] { rows, dimension }).to_type(TorchSharp.torch.ScalarType.Float64);
        using var singular = TorchSharp.torch.linalg.svdvals(matrix);
        var sigma = singular.data<double>().ToArray();
        var p = sigma.Select(s => s / sigma.Sum() + 1e-12).ToArray();
        var expected = Math.Exp(-p.Sum(x => x * Math.Log(x)));
        Assert.That(expected, Is.InRange(2.0, 39.0), "the reference should be far from both ends");
        Assert.That(RepresentationMetrics.EffectiveRank(embeddings), Is.EqualTo(expected).Within(1e-9 * expected));
    }

    [TestCase(float.NaN)]
    [TestCase(float.PositiveInfinity)]
    public void NonFiniteEmbeddingsGetAClearError(float bad)
    {
        var rows = Enumerable.Range(0, 20).Select(i => Enumerable.Range(0, 10).Select(d => (float)Math.Sin(i * 10 + d)).ToArray()).ToArray();
        rows[0][7] = bad;
        var error = Assert.Throws<ArgumentException>(() => RepresentationMetrics.EffectiveRank(FromRows(rows)));
        Assert.That(error!.Message, Does.Contain("NaN or infinite").And.Contain("embeddings"));
    }

    [Test]
    public void UniformityAndAlignmentFollowWangAndIsola()
    {
        // Two unit vectors at right angles: ‖u − v‖² = 2, uniformity = log exp(−2·2) = −4; identical views align at 0.
        var embeddings = FromRows([[1, 0], [0, 3]]);
        var signals = RepresentationMetrics.Measure(embeddings, FromRows([[2, 0], [0, 1]]));
        Assert.That(signals.Uniformity, Is.EqualTo(-4).Within(1e-5));
        Assert.That(signals.Alignment, Is.EqualTo(0).Within(1e-6));
        Assert.That(signals.ExpectedStd, Is.EqualTo(1 / Math.Sqrt(2)));
    }

    [Test]
    public void CollapsedEmbeddingsAreFlaggedAndSpreadOnesAreNot()
    {
        var random = new Random(1);
        var spread = FromRows(Enumerable.Range(0, 2000).Select(_ => Enumerable.Range(0, 32).Select(_ => (float)Gaussian(random)).ToArray()).ToArray());
        var healthy = RepresentationMetrics.Measure(spread);
        Assert.That(healthy.StdOfNormalized, Is.EqualTo(1 / Math.Sqrt(32)).Within(0.1 / Math.Sqrt(32)));
        Assert.That(healthy.EffectiveRank, Is.GreaterThan(28));
        Assert.That(healthy.Collapsed, Is.False);

        var collapsed = FromRows(Enumerable.Range(0, 200).Select(i => Enumerable.Range(0, 32).Select(d => d == 0 ? 1f : 1e-4f * (i % 3)).ToArray()).ToArray());
        var signals = RepresentationMetrics.Measure(collapsed);
        Assert.That(signals.Collapsed, Is.True);
        Assert.That(signals.EffectiveRank, Is.LessThan(2));
    }

    [Test]
    public void ClusteringScoresMatchHandComputedValues()
    {
        // Labels [0,0,0,1,1,1] vs clusters [0,0,1,1,2,2]: NMI 0.51580, ARI 0.24242, purity 5/6 (formulas as in scikit-learn).
        var split = ClusteringDiagnostics.Score(3, [0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]);
        Assert.That((split.Nmi, split.Ari, split.Purity), Is.EqualTo((0.5158037429793888, 0.24242424242424246, 5.0 / 6)).Using<(double, double, double)>(
            (a, b) => Math.Abs(a.Item1 - b.Item1) < 1e-9 && Math.Abs(a.Item2 - b.Item2) < 1e-9 && Math.Abs(a.Item3 - b.Item3) < 1e-9));
        var independent = ClusteringDiagnostics.Score(2, [0, 0, 1, 1], [0, 1, 0, 1]);
        Assert.That(independent.Nmi, Is.EqualTo(0).Within(1e-12));
        Assert.That(independent.Ari, Is.EqualTo(-0.5).Within(1e-12));
        Assert.That(independent.Purity, Is.EqualTo(0.5));
    }

    [Test]
    public void KMeansAtHalfKAndTwiceKRevealsMergedOrSplitClasses()
    {
        // Four well-separated blobs, four classes: K finds them; K/2 must merge (purity ≤ 0.5); 2K splits (purity stays 1).
        var random = new Random(2);
        var centres = new[] { (0f, 0f), (10f, 0f), (0f, 10f), (10f, 10f) };
        var labels = Enumerable.Range(0, 200).Select(i => i % 4).ToArray();
        var rows = labels.Select(l => new[] { centres[l].Item1 + (float)Gaussian(random) * 0.3f, centres[l].Item2 + (float)Gaussian(random) * 0.3f }).ToArray();
        var scores = ClusteringDiagnostics.Evaluate(new MLContext(0), FromRows(rows, labels));
        Assert.That(scores.Select(s => s.Clusters), Is.EqualTo(new[] { 2, 4, 8 }));
        Assert.That(scores[0].Purity, Is.LessThanOrEqualTo(0.5 + 1e-9));
        Assert.That((scores[1].Nmi, scores[1].Ari, scores[1].Purity), Is.EqualTo((1.0, 1.0, 1.0)).Using<(double, double, double)>(
            (a, b) => Math.Abs(a.Item1 - b.Item1) < 1e-9 && Math.Abs(a.Item2 - b.Item2) < 1e-9 && Math.Abs(a.Item3 - b.Item3) < 1e-9));
        Assert.That(scores[2].Purity, Is.EqualTo(1.0));
        Assert.That(scores[2].Ari, Is.LessThan(1.0));
    }

    [Test]
    public void TrainingRunsTheMonitorsEveryEpoch()
    {
        var data = TestData.SampleTrain(512);
        var seen = new List<MonitorRecord>();
        var options = new PretrainOptions
        {
            Run = { Epochs = 2, BatchSize = 128, Seed = 1 }, MonitorEvery = 1, MonitorData = TestData.SampleTrain(600).Subset(Enumerable.Range(512, 88).ToArray()),
            Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }, OnMonitor = seen.Add,
        };
        var result = new Pretrainer(options).Fit(data);
        Assert.That(result.History.Monitors.Select(m => m.Epoch), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(seen, Is.EqualTo(result.History.Monitors));
        var last = result.History.Monitors[^1];
        Assert.That(last.KnnAccuracy, Is.InRange(0.0, 1.0));
        Assert.That(new[] { last.StdOfNormalized, last.EffectiveRank, last.Uniformity, last.Alignment!.Value }.All(double.IsFinite), Is.True);
        Assert.That(last.EffectiveRank, Is.InRange(1.0, 32.0));
    }

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
