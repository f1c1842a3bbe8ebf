using MLNet.Contrastive.Data;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Data;

public class ImageCacheTests
{
    private static ImageLoadOptions Cached(string folder, int size = 28) => new() { Height = size, Width = size, CacheFolder = folder };

    private static byte[] AllPixels(ImageStore store) => store.Images(0, store.Count).ToArray();

    [Test]
    public void TheFirstLoadWritesTheCacheAndTheSecondMapsItWithTheSameImages()
    {
        using var folder = TestData.NewFolder();
        var inMemory = ImageStore.Load(TestData.TrainImages, TestData.TrainLabels);

        var first = ImageStore.Load(TestData.TrainImages, TestData.TrainLabels, Cached(folder.Path));
        var second = ImageStore.Load(TestData.TrainImages, TestData.TrainLabels, Cached(folder.Path));

        Assert.That(first.ReadFromCache, Is.False, "decoded and written");
        Assert.That(second.ReadFromCache, Is.True, "read from the cache, nothing decoded");
        Assert.That(second.CacheFile, Is.EqualTo(first.CacheFile).And.StartsWith(folder.Path));
        Assert.That(Directory.GetFiles(folder.Path), Has.Length.EqualTo(1), "no temporary file left");
        foreach (var store in new[] { first, second })
        {
            Assert.That(AllPixels(store), Is.EqualTo(AllPixels(inMemory)), "the parallel decoder and the cache give the in-memory pixels");
            Assert.That(store.Labels, Is.EqualTo(inMemory.Labels));
            Assert.That(store.LabelNames, Is.EqualTo(inMemory.LabelNames));
            Assert.That(store.Sources[5], Is.EqualTo(inMemory.Sources[5]));
            Assert.That(store.Count, Is.EqualTo(6000));
        }
        var indices = new[] { 3, 5999, 0, 42 };
        Assert.That(TestData.Same(second.Batch(indices), inMemory.Batch(indices)), Is.True, "batches read from the file");
    }

    [Test]
    public void AFolderOfImagesKeepsItsSourcesLabelsAndSkippedFilesInTheCache()
    {
        using var images = TestData.NewFolder();
        using var cache = TestData.NewFolder();
        foreach (var (label, count) in new[] { ("cat", 3), ("dog", 2) })
        {
            Directory.CreateDirectory(images[label]);
            for (var i = 0; i < count; i++) TestData.WriteImage(Path.Combine(images[label], $"{i}.png"), 40, 30, seed: 10 * count + i);
        }
        File.WriteAllText(Path.Combine(images["dog"], "broken.png"), "not an image");
        var options = new ImageLoadOptions { CacheFolder = cache.Path, SkipBadImages = true, Channels = 3 };

        var first = ImageStore.Load(images.Path, options: options);
        var second = ImageStore.Load(images.Path, options: options);

        Assert.That(second.ReadFromCache, Is.True);
        Assert.That(second.Count, Is.EqualTo(5));
        Assert.That(second.Sources, Is.EqualTo(first.Sources));
        Assert.That(second.LabelNames, Is.EqualTo(new[] { "cat", "dog" }));
        Assert.That(second.Labels, Is.EqualTo(first.Labels));
        Assert.That(second.Skipped, Has.Count.EqualTo(1).And.Some.Contains("broken.png"));
        Assert.That(AllPixels(second), Is.EqualTo(AllPixels(ImageStore.Load(images.Path, options: new ImageLoadOptions { SkipBadImages = true, Channels = 3 }))));
    }

    [Test]
    public void AChangedSourceOrSizeIsDecodedAgain()
    {
        using var images = TestData.NewFolder();
        using var cache = TestData.NewFolder();
        for (var i = 0; i < 3; i++) TestData.WriteImage(images[$"{i}.png"], 32, 32, seed: i);
        Assert.That(ImageStore.Load(images.Path, options: Cached(cache.Path)).ReadFromCache, Is.False);
        Assert.That(ImageStore.Load(images.Path, options: Cached(cache.Path)).ReadFromCache, Is.True);

        Assert.That(ImageStore.Load(images.Path, options: Cached(cache.Path, size: 20)).ReadFromCache, Is.False, "another size is another cache");
        TestData.WriteImage(images["1.png"], 32, 32, seed: 99);
        File.SetLastWriteTimeUtc(images["1.png"], DateTime.UtcNow.AddMinutes(1));
        var changed = ImageStore.Load(images.Path, options: Cached(cache.Path));
        Assert.That(changed.ReadFromCache, Is.False, "a rewritten file invalidates the cache");
        Assert.That(AllPixels(changed), Is.EqualTo(AllPixels(ImageStore.Load(images.Path))), "and the new pixels are read");
        TestData.WriteImage(images["3.png"], 32, 32, seed: 3);
        Assert.That(ImageStore.Load(images.Path, options: Cached(cache.Path)).Count, Is.EqualTo(4), "an added file too");
    }

    [Test]
    public void ADamagedCacheIsRebuiltNotRead()
    {
        using var cache = TestData.NewFolder();
        var first = ImageStore.Load(TestData.TrainImages, TestData.TrainLabels, Cached(cache.Path));
        var file = first.CacheFile!;
        var bytes = File.ReadAllBytes(file);
        bytes[^30] ^= 0x40;   // inside the index
        File.WriteAllBytes(file, bytes);
        var again = ImageStore.Load(TestData.TrainImages, TestData.TrainLabels, Cached(cache.Path));
        Assert.That(again.ReadFromCache, Is.False, "the index's checksum fails, so the cache is written anew");
        Assert.That(again.Labels, Is.EqualTo(ImageStore.Load(TestData.TrainImages, TestData.TrainLabels).Labels));

        File.WriteAllBytes(file, bytes.AsSpan(0, bytes.Length / 2).ToArray());   // cut in half
        Assert.That(ImageStore.Load(TestData.TrainImages, TestData.TrainLabels, Cached(cache.Path)).ReadFromCache, Is.False);
    }

    [Test]
    public void ACacheCutWhileInUseIsReportedByName()
    {
        using var cache = TestData.NewFolder();
        ImageStore.Load(TestData.TrainImages, TestData.TrainLabels, Cached(cache.Path));
        var store = ImageStore.Load(TestData.TrainImages, TestData.TrainLabels, Cached(cache.Path));
        using (var file = new FileStream(store.CacheFile!, FileMode.Open, FileAccess.Write)) file.SetLength(1000 * 784);

        Assert.That(TestData.Same(store.Batch([3, 999]), ImageStore.Load(TestData.TrainImages, TestData.TrainLabels).Batch([3, 999])), Is.True, "what is still there reads");
        Assert.That(() => store.Images(10, int.MaxValue), Throws.InstanceOf<ArgumentOutOfRangeException>(), "a count that would overflow is refused");
        var error = Assert.Throws<ImageDataException>(() => store.Batch([5000]));
        Assert.That(error!.Message, Does.StartWith(store.CacheFile!).And.Contain("cut after it was opened"));
    }

    [Test]
    public void PretrainingReadsTheCachedStoreLikeTheInMemoryOne()
    {
        using var cache = TestData.NewFolder();
        ImageStore.Load(TestData.TrainImages, TestData.TrainLabels, Cached(cache.Path));
        var cached = ImageStore.Load(TestData.TrainImages, TestData.TrainLabels, Cached(cache.Path));
        Assert.That(cached.ReadFromCache, Is.True);
        var options = new PretrainOptions { Run = { Epochs = 1, BatchSize = 500, Seed = 3, Threads = 2, Device = "cpu" }, Encoder = new MLNet.Contrastive.Models.EncoderOptions { StemWidth = 16, StageWidths = [16, 32] } };
        var fromCache = new Pretrainer(options).Fit(cached).History.Steps.Select(s => s.Loss);
        var fromMemory = new Pretrainer(options).Fit(ImageStore.Load(TestData.TrainImages, TestData.TrainLabels)).History.Steps.Select(s => s.Loss);
        Assert.That(fromCache, Is.EqualTo(fromMemory));
    }
}
