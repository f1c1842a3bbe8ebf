using Microsoft.ML;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Stages;

namespace MLNet.Contrastive.Tests.Evaluation;

public class LabelEfficiencyTests
{
    [Test]
    public void EveryKindOfFeaturesSeesTheSameStratifiedRows()
    {
        var data = TestData.SampleTrain(1200);
        var (train, test) = (data.Subset(Enumerable.Range(0, 1000).ToArray()), data.Subset(Enumerable.Range(1000, 200).ToArray()));
        var mlContext = new MLContext(0);
        var pixels = LabelEfficiency.Probe(mlContext, "Raw pixels", Embeddings.FromPixels(train), Embeddings.FromPixels(test), [0.01, 0.1, 1.0]);

        var options = new FineTuningTrainer.Options
        {
            Run = { Epochs = 4, BatchSize = 100, Seed = 1, Threads = 2, Device = "cpu", LearningRate = 3e-3 },
            Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] },
        };
        var started = new List<(double Fraction, int Images)>();
        var supervised = LabelEfficiency.FineTuned(mlContext, "Supervised from scratch", train, test, [0.1, 1.0], options, starting: (f, n) => started.Add((f, n)));

        // Fashion-MNIST's sample is balanced-ish: 1 % keeps one image per class at least, 10 % about 100, 100 % all 1,000.
        var perClass = train.Labels!.GroupBy(l => l).Select(g => g.Count()).ToList();
        Assert.That(pixels.Select(p => p.LabeledImages), Is.EqualTo(new[]
        {
            perClass.Sum(n => Math.Max(1, (int)Math.Round(0.01 * n))), perClass.Sum(n => Math.Max(1, (int)Math.Round(0.1 * n))), 1000,
        }));
        Assert.That(supervised.Select(p => p.LabeledImages), Is.EqualTo(pixels.Skip(1).Select(p => p.LabeledImages)));
        Assert.That(started.Select(s => s.Images), Is.EqualTo(supervised.Select(p => p.LabeledImages)));
        // Ten classes: chance is 10 %; more labels help both.
        Assert.That(pixels.Select(p => p.Accuracy), Is.All.GreaterThan(0.2));
        Assert.That(pixels[2].Accuracy, Is.GreaterThan(pixels[0].Accuracy));
        Assert.That(supervised.Select(p => p.Accuracy), Is.All.GreaterThan(0.3));
        Assert.That(supervised[1].Accuracy, Is.GreaterThan(supervised[0].Accuracy));
    }

    /// <summary>
    /// With several label samples a point below 100 % is the mean of the single-sample points of seeds s, s + 1, …; at
    /// 100 % every sample is every row, so it is measured once.
    /// </summary>
    [Test]
    public void SeveralLabelSamplesAverageTheSeedsBelowOneHundredPercent()
    {
        var data = TestData.SampleTrain(1200);
        var (train, test) = (Embeddings.FromPixels(data.Subset(Enumerable.Range(0, 1000).ToArray())), Embeddings.FromPixels(data.Subset(Enumerable.Range(1000, 200).ToArray())));
        var mlContext = new MLContext(0);
        double[] fractions = [0.1, 1.0];

        var averaged = LabelEfficiency.Probe(mlContext, "Raw pixels", train, test, fractions, seed: 4, samples: 3);
        var single = Enumerable.Range(4, 3).Select(seed => LabelEfficiency.Probe(mlContext, "Raw pixels", train, test, fractions, seed)).ToList();

        Assert.That(averaged[0].Accuracy, Is.EqualTo(single.Average(curve => curve[0].Accuracy)).Within(1e-12));
        Assert.That(single.Select(curve => curve[0].Accuracy).Distinct().Count(), Is.GreaterThan(1), "the three samples differ");
        Assert.That((averaged[0].Samples, averaged[1].Samples), Is.EqualTo((3, 1)));
        Assert.That(averaged[1].Accuracy, Is.EqualTo(single[0][1].Accuracy).Within(1e-12));
        Assert.That(() => LabelEfficiency.Probe(mlContext, "Raw pixels", train, test, fractions, samples: 0),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.StartsWith("samples must be at least 1."));
    }

    [TestCase(0.001, "0.1 %")]
    [TestCase(0.01, "1 %")]
    [TestCase(0.0025, "0.25 %")]
    [TestCase(1.0, "100 %")]
    public void FractionsReadAsPercentagesWithoutRoundingSmallOnesToZero(double fraction, string percent) =>
        Assert.That(LabelEfficiency.Percent(fraction), Is.EqualTo(percent));
}
