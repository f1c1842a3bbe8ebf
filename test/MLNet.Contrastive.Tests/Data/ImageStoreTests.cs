using MLNet.Contrastive.Data;
using MLNet.Contrastive.Metrics;

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
        var paired = store.WithPairs(new ImagePairs(TestData.SampleTrain(4)));
        Assert.That((paired.LabelProbabilities, paired.Labels, paired.LabelNames), Is.EqualTo((probabilities, store.Labels, store.LabelNames)),
            "pairing keeps the soft labels");
        Assert.That(paired.Subset([1]).Pairs!.Count, Is.EqualTo(1));
    }

    [Test]
    public void ASubsetSharesThePixelsOfItsStoreInMemoryOrInTheCacheFile()
    {
        using var folder = TestData.NewFolder();
        var inMemory = ImageStore.Load(TestData.TrainImages, TestData.TrainLabels);
        var cached = ImageStore.Load(TestData.TrainImages, TestData.TrainLabels, new ImageLoadOptions { CacheFolder = folder.Path });
        int[] rows = [5999, 3, 3, 0, 42, 3];
        foreach (var store in new[] { inMemory, cached })
        {
            var allocated = GC.GetAllocatedBytesForCurrentThread();
            var subset = store.Subset(rows);
            Assert.That(GC.GetAllocatedBytesForCurrentThread() - allocated, Is.LessThan(rows.Length * store.ImageSize), "the images are not copied (bookkeeping only)");
            for (var i = 0; i < rows.Length; i++)
                Assert.That(subset.Image(i).ToArray(), Is.EqualTo(inMemory.Image(rows[i]).ToArray()), $"row {i} is image {rows[i]}");
            Assert.That(subset.Images(1, 3).ToArray(), Is.EqualTo(rows[1..4].SelectMany(r => inMemory.Image(r).ToArray()).ToArray()), "several rows at once");
            Assert.That(subset.Labels, Is.EqualTo(rows.Select(r => inMemory.Labels![r]).ToArray()));
            var ofSubset = subset.Subset([4, 0]);
            Assert.That(TestData.Same(ofSubset.Batch([0, 1]), inMemory.Batch([42, 5999])), Is.True, "a subset of a subset");
            Assert.That(() => subset.Subset([6]), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("Image 6 is outside the store's 6"));
        }
    }

    [Test]
    public void ASubsetBeyondTwoGibibytesOfPixelsIsAView()
    {
        // FixMatch's repeated rows at 96 × 96 RGB: 80,000 × 27,648 bytes = 2.2 GB, once an int overflow in the copy's size.
        var pixels = new byte[2 * 3 * 96 * 96];
        pixels[^1] = 7;
        var store = new ImageStore(pixels, 3, 96, 96, [0, 1], ["a", "b"], ["p#0", "p#1"], []);

        var repeated = store.Subset([.. Enumerable.Repeat(0, 79_999), 1]);

        Assert.That((long)repeated.Count * repeated.ImageSize, Is.GreaterThan(int.MaxValue));
        Assert.That(repeated.Image(79_999)[^1], Is.EqualTo(7));
        using var batch = repeated.Batch([79_999, 0]);
        Assert.That(batch.shape, Is.EqualTo(new long[] { 2, 3, 96, 96 }));
        Assert.That(batch[0, 2, 95, 95].item<float>(), Is.EqualTo(7 / 255f));
        // Its raw pixels as features would be 2.2 billion floats: refused up front, not an OutOfMemoryException.
        Assert.That(() => Embeddings.FromPixels(repeated), Throws.InvalidOperationException.With.Message.StartsWith(
            "Raw-pixel features of 80,000 images are 2,211,840,000 values (27,648 each), more than one .NET array holds"));
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
