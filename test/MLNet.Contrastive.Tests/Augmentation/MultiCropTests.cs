using MLNet.Contrastive.Augmentation;
using TorchSharp;

namespace MLNet.Contrastive.Tests.Augmentation;

public class MultiCropTests
{
    [Test]
    public void GivesTwoGlobalViewsThenTheSmallCropsAtTheirSide()
    {
        using var images = TestData.SampleTrain(8).Batch([0, 1, 2, 3, 4, 5, 6, 7]);
        using var generator = new torch.Generator(1);
        var crops = new MultiCrop(AugmentationOptions.ForImageSize(28, 28), 3, null, 0.05, 0.4).Crops(images, generator);
        Assert.That(crops.Select(c => c.shape), Is.EqualTo(new[] { new long[] { 16, 1, 28, 28 }, new long[] { 24, 1, 16, 16 } }));
        Assert.That(new MultiCrop(AugmentationOptions.ForImageSize(28, 28), 0, null, 0.05, 0.4).Crops(images, generator), Has.Count.EqualTo(1));
    }

    [Test]
    public void SmallCropSideIsAMultipleOfAVitsPatch()
    {
        var recipe = AugmentationOptions.ForImageSize(28, 28);
        Assert.That(new MultiCrop(recipe, 2, null, 0.05, 0.4).LocalCropSize(28), Is.EqualTo(16));
        Assert.That(new MultiCrop(recipe, 2, null, 0.05, 0.4, sizeMultiple: 7).LocalCropSize(28), Is.EqualTo(14));
        Assert.That(new MultiCrop(recipe, 2, 12, 0.05, 0.4, sizeMultiple: 8).LocalCropSize(224), Is.EqualTo(8));
        Assert.That(new MultiCrop(recipe, 2, null, 0.05, 0.4, sizeMultiple: 16).LocalCropSize(224), Is.EqualTo(128));
    }
}
