using Microsoft.ML;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;

namespace MLNet.Contrastive.Tests.Evaluation;

public class EvaluationTests
{
    [Test]
    public void KnnVotesAreWeightedBySimilarity()
    {
        // Train: class 0 at angle 0° (one point), class 1 at 60° and 70° (two points). Query at 20°.
        // With k = 3 and T = 0.1: class 0 gets exp(cos 20°/0.1) = exp(9.40) ≈ 12,140; class 1 gets
        // exp(cos 40°/0.1) + exp(cos 50°/0.1) = exp(7.66) + exp(6.43) ≈ 2,122 + 619: class 0 wins despite fewer votes.
        var train = Points(new[] { 0.0, 60, 70 }, [0, 1, 1]);
        var query = Points(new[] { 20.0 }, [0]);
        Assert.That(KnnClassifier.Predict(train, query, k: 3, temperature: 0.1), Is.EqualTo(new[] { 0 }));
        // A flat temperature turns it into a plain majority vote.
        Assert.That(KnnClassifier.Predict(train, query, k: 3, temperature: 100), Is.EqualTo(new[] { 1 }));
    }

    [Test]
    public void KnnAndLinearProbeOnRealPixelsBeatChance()
    {
        var data = TestData.SampleTrain(1200);
        var train = Embeddings.FromPixels(data.Subset(Enumerable.Range(0, 1000).ToArray()));
        var test = Embeddings.FromPixels(data.Subset(Enumerable.Range(1000, 200).ToArray()));
        Assert.That(KnnClassifier.Accuracy(train, test), Is.InRange(0.5, 1.0));
        Assert.That(LinearEvaluation.Evaluate(new MLContext(0), train, test).Accuracy, Is.InRange(0.6, 1.0));
    }

    [Test]
    public void LinearProbeSeparatesSeparableClasses()
    {
        var train = Points(Enumerable.Range(0, 40).Select(i => i < 20 ? i * 2.0 : 180 + i).ToArray(), Enumerable.Range(0, 40).Select(i => i < 20 ? 0 : 1).ToArray());
        var test = Points(new[] { 5.0, 200 }, [0, 1]);
        Assert.That(LinearEvaluation.Evaluate(new MLContext(0), train, test).Accuracy, Is.EqualTo(1.0));
    }

    private static Embeddings Points(double[] degrees, int[] labels) =>
        new(degrees.SelectMany(d => new[] { (float)Math.Cos(d * Math.PI / 180), (float)Math.Sin(d * Math.PI / 180) }).ToArray(),
            degrees.Length, 2, labels);
}
