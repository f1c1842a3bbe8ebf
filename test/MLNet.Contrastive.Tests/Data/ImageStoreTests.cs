namespace MLNet.Contrastive.Tests.Data;

public class ImageStoreTests
{
    [Test]
    public void LabelProbabilitiesAreTheBatchLabelsAndTheirMostLikelyClassesTheLabels()
    {
        float[] probabilities = [0.7f, 0.2f, 0.1f, 0f, 0f, 1f, 0.25f, 0.5f, 0.25f, 0.1f, 0.1f, 0.8f];
        var store = TestData.SampleTrain(4).WithLabelProbabilities(probabilities, ["a", "b", "c"]);

        Assert.That(store.Labels, Is.EqualTo(new[] { 0, 2, 1, 2 }));
        using var batch = store.BatchLabels([2, 0]);
        Assert.That(batch.shape, Is.EqualTo(new long[] { 2, 3 }));
        Assert.That(batch.data<float>().ToArray(), Is.EqualTo(new[] { 0.25f, 0.5f, 0.25f, 0.7f, 0.2f, 0.1f }));
        var subset = store.Subset([3, 1]);
        Assert.That(subset.LabelProbabilities, Is.EqualTo(new[] { 0.1f, 0.1f, 0.8f, 0f, 0f, 1f }));
        Assert.That(subset.Labels, Is.EqualTo(new[] { 2, 2 }));
        Assert.That(store.WithLabels([0, 1, 2, 0], null).LabelProbabilities, Is.Null, "new hard labels replace the soft ones");
    }

    [Test]
    public void ClassProbabilitiesThatAreNotDistributionsAreRefusedByRow()
    {
        var store = TestData.SampleTrain(2);
        Assert.That(() => store.WithLabelProbabilities([0.5f, 0.5f, 0.6f, 0.6f], null),
            Throws.ArgumentException.With.Message.StartsWith("Row 1 of the class probabilities sums to 1.2, not 1."));
        Assert.That(() => store.WithLabelProbabilities([1f, 0f, float.NaN, 1f], null),
            Throws.ArgumentException.With.Message.StartsWith("Row 1 of the class probabilities holds NaN, outside [0, 1]."));
        Assert.That(() => store.WithLabelProbabilities([1f, 0f, 1f], null),
            Throws.ArgumentException.With.Message.StartsWith("Expected [2, K ≥ 2] class probabilities, got 3 values."));
    }
}
