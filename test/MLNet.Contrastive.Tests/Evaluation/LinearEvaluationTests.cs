using Microsoft.ML;
using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Stages;

namespace MLNet.Contrastive.Tests.Evaluation;

public class LinearEvaluationTests
{
    private sealed class Row
    {
        public float[] Embedding { get; set; } = [];
        public string Label { get; set; } = "";
    }

    private static IDataView View(MLContext mlContext, IEnumerable<Row> rows)
    {
        var schema = Microsoft.ML.Data.SchemaDefinition.Create(typeof(Row));
        schema[nameof(Row.Embedding)].ColumnType = new Microsoft.ML.Data.VectorDataViewType(Microsoft.ML.Data.NumberDataViewType.Single, 2);
        return mlContext.Data.LoadFromEnumerable(rows, schema);
    }

    [Test]
    public void MetricsMatchAHandCountedConfusionMatrix()
    {
        // Three classes on a line; the test point of class "b" at x = 1.6 sits on the "c" side, so the
        // confusion matrix is a→a, b→b, b→c, c→c: accuracy 3/4; precision a 1, b 1, c 1/2; recall a 1, b 1/2, c 1.
        var mlContext = new MLContext(0);
        var train = View(mlContext, Enumerable.Range(0, 60).Select(i => new Row { Embedding = [i / 20 + (i % 20) * 0.01f, 0], Label = "abc"[i / 20].ToString() }));
        var test = View(mlContext, new[] { new Row { Embedding = [0.1f, 0], Label = "a" }, new Row { Embedding = [1.1f, 0], Label = "b" },
            new Row { Embedding = [1.9f, 0], Label = "b" }, new Row { Embedding = [2.1f, 0], Label = "c" } });
        var result = LinearEvaluation.Evaluate(mlContext, train, test);
        Assert.That(result.Labels, Is.EqualTo(new[] { "a", "b", "c" }));
        Assert.That(result.ConfusionMatrix, Is.EqualTo(new[] { new[] { 1, 0, 0 }, new[] { 0, 1, 1 }, new[] { 0, 0, 1 } }));
        Assert.That(result.Accuracy, Is.EqualTo(0.75));
        Assert.That(result.Classes.Select(c => c.Precision), Is.EqualTo(new[] { 1.0, 1.0, 0.5 }));
        Assert.That(result.Classes.Select(c => c.Recall), Is.EqualTo(new[] { 1.0, 0.5, 1.0 }));
        Assert.That(result.MacroF1, Is.EqualTo((1.0 + 2.0 / 3 + 2.0 / 3) / 3).Within(1e-12));
    }

    [Test]
    public void StratifiedFractionKeepsEveryClassAndIsSeeded()
    {
        var labels = TestData.SampleTrain(6000).Labels!.Select(l => l.ToString()).ToList();
        var tenth = LinearEvaluation.StratifiedSample(labels, 0.1, seed: 4);
        foreach (var group in labels.GroupBy(l => l))
            Assert.That(tenth.Count(i => labels[i] == group.Key), Is.EqualTo((int)Math.Round(group.Count() * 0.1)));
        Assert.That(LinearEvaluation.StratifiedSample(labels, 0.1, seed: 4), Is.EqualTo(tenth));
        Assert.That(LinearEvaluation.StratifiedSample(labels, 0.1, seed: 5), Is.Not.EqualTo(tenth));
        Assert.That(LinearEvaluation.StratifiedSample(labels, 0.0001, seed: 4).Select(i => labels[i]).Distinct().Count(), Is.EqualTo(10), "at least one per class");
    }

    [Test]
    public void FewerLabelsGiveAWorseProbeOnRealImages()
    {
        var data = TestData.SampleTrain(3000);
        var train = Embeddings.FromPixels(data.Subset(Enumerable.Range(0, 2500).ToArray()));
        var test = Embeddings.FromPixels(data.Subset(Enumerable.Range(2500, 500).ToArray()));
        var mlContext = new MLContext(0);
        var all = LinearEvaluation.Evaluate(mlContext, train, test);
        var onePercent = LinearEvaluation.Evaluate(mlContext, train, test, labelFraction: 0.01);
        Assert.That(all.TrainingRows, Is.EqualTo(2500));
        Assert.That(onePercent.TrainingRows, Is.InRange(10, 40));
        Assert.That(all.Accuracy, Is.GreaterThan(0.7));
        Assert.That(onePercent.Accuracy, Is.LessThan(all.Accuracy));
        Assert.That(all.ConfusionMatrix.Sum(r => r.Sum()), Is.EqualTo(500));
    }

    [Test]
    public void ProbeNeedsALabelColumnWithTwoClasses()
    {
        var mlContext = new MLContext(0);
        var oneClass = View(mlContext, Enumerable.Range(0, 5).Select(i => new Row { Embedding = [i, 1], Label = "only" }));
        Assert.That(() => mlContext.SelfSupervised().LinearProbe().Fit(oneClass),
            Throws.ArgumentException.With.Message.StartsWith("The label column 'Label' holds 1 class; a probe needs at least two."));
        Assert.That(() => mlContext.SelfSupervised().LinearProbe(labelColumnName: "Category").Fit(oneClass),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.StartsWith("Could not find input column 'Category'"));
    }
}
