using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Augmentation;

public class ViewAugmenterTests
{
    [OneTimeSetUp]
    public void Setup() => TorchRuntime.Initialize();

    private static Tensor RealImages(int count) => TestData.SampleTrain(count).Batch(Enumerable.Range(0, count).ToArray());

    private static Tensor RgbImages(int count)
    {
        using var generator = new Generator(3);
        return rand(new long[] { count, 3, 16, 16 }, generator: generator);
    }

    /// <summary>The whole image, no flip, no other augmentation: the identity.</summary>
    private static AugmentationOptions Deterministic() => new()
    {
        CropScaleMin = 1, CropScaleMax = 1, CropRatioMin = 1, CropRatioMax = 1, FlipProbability = 0,
        ColorJitterProbability = 0, GrayscaleProbability = 0, BlurProbability = 0,
    };

    [Test]
    public void SameSeedGivesSameViews()
    {
        using var images = RealImages(8);
        var augmenter = new ViewAugmenter(AugmentationOptions.SmallImages());
        using var g1 = new Generator(11);
        using var g2 = new Generator(11);
        using var a = augmenter.Augment(images, g1);
        using var b = augmenter.Augment(images, g2);
        Assert.That((a - b).abs().max().item<float>(), Is.Zero);
        using var g3 = new Generator(12);
        using var c = augmenter.Augment(images, g3);
        Assert.That((c - a).abs().max().item<float>(), Is.GreaterThan(0.1f));
    }

    [Test]
    public void SamplesOfOneBatchGetDifferentDraws()
    {
        // The same image repeated: any two outputs that match would mean a shared draw.
        using var one = RealImages(1);
        using var images = one.expand(16, -1, -1, -1).contiguous();
        using var generator = new Generator(5);
        using var views = new ViewAugmenter(AugmentationOptions.SmallImages()).Augment(images, generator);
        for (var i = 0; i < 16; i++)
            for (var j = i + 1; j < 16; j++)
                Assert.That((views[i] - views[j]).abs().max().item<float>(), Is.GreaterThan(1e-3), $"views {i} and {j} are identical");
    }

    [TestCase(1)]
    [TestCase(3)]
    public void ViewsKeepShapeAndRange(int channels)
    {
        using var images = channels == 1 ? RealImages(8) : RgbImages(8);
        var options = AugmentationOptions.LargeImages();
        options.NoiseProbability = 0.5;
        options.SolarizeProbability = 0.5;
        using var generator = new Generator(1);
        using var views = new ViewAugmenter(options).Augment(images, generator);
        Assert.That(views.shape, Is.EqualTo(images.shape));
        Assert.That(views.min().item<float>(), Is.GreaterThanOrEqualTo(0f));
        Assert.That(views.max().item<float>(), Is.LessThanOrEqualTo(1f));
        Assert.That(views.isfinite().all().item<bool>(), Is.True);
    }

    [TestCase(1)]
    [TestCase(3)]
    public void Float64ImagesGetFloat64ViewsWithTheSameDraws(int channels)
    {
        // Gradient caching's exactness tests run in float64; every step of the recipe must keep the input's type.
        using var images = channels == 1 ? RealImages(8) : RgbImages(8);
        var options = AugmentationOptions.LargeImages();
        options.NoiseProbability = 0.5;
        var augmenter = new ViewAugmenter(options);
        using var g32 = new Generator(4);
        using var g64 = new Generator(4);
        using var single = augmenter.Augment(images, g32);
        using var @double = augmenter.Augment(images.to(ScalarType.Float64), g64);
        Assert.That(@double.dtype, Is.EqualTo(ScalarType.Float64));
        Assert.That((@double - single.to(ScalarType.Float64)).abs().max().item<double>(), Is.LessThan(1e-4));
    }

    [Test]
    public void FullCropWithoutOtherAugmentationsIsTheIdentityAndFlipMirrors()
    {
        var options = Deterministic();
        using var images = RgbImages(4);
        using var generator = new Generator(0);
        using var same = new ViewAugmenter(options).Augment(images, generator);
        Assert.That((same - images).abs().max().item<float>(), Is.LessThan(1e-5f));

        options.FlipProbability = 1;
        using var flipped = new ViewAugmenter(options).Augment(images, generator);
        using var mirror = images.flip(3);
        Assert.That((flipped - mirror).abs().max().item<float>(), Is.LessThan(1e-5f));
    }

    [Test]
    public void GrayscaleMakesChannelsEqualAndBlurSmooths()
    {
        var options = Deterministic();
        options.GrayscaleProbability = 1;
        using var images = RgbImages(2);
        using var generator = new Generator(0);
        using var gray = new ViewAugmenter(options).Augment(images, generator);
        Assert.That((gray[.., 0] - gray[.., 2]).abs().max().item<float>(), Is.LessThan(1e-6f));

        options.GrayscaleProbability = 0;
        options.BlurProbability = 1;
        options.BlurSigmaMin = 1.5;
        using var blurred = new ViewAugmenter(options).Augment(images, generator);
        // Blur keeps the mean brightness and lowers the pixel-to-pixel variation of noise images.
        Assert.That(blurred.mean().item<float>(), Is.EqualTo(images.mean().item<float>()).Within(0.02));
        Assert.That(blurred.std().item<float>(), Is.LessThan(images.std().item<float>() * 0.6f));
    }

    [TestCase(1)]
    [TestCase(3)]
    public void SmallCropsComeAtTheirOwnSize(int channels)
    {
        // Multi-crop: the whole image resampled to 12 × 12 keeps its mean (bilinear, no flip), so the crop is the image.
        using var images = channels == 1 ? RealImages(4) : RgbImages(4);
        var options = Deterministic();
        options.OutputSize = 12;
        using var generator = new Generator(1);
        using var views = new ViewAugmenter(options).Augment(images, generator);
        Assert.That(views.shape, Is.EqualTo(new long[] { 4, channels, 12, 12 }));
        Assert.That(views.mean().item<float>(), Is.EqualTo(images.mean().item<float>()).Within(0.02));
    }

    [Test]
    public void InvalidOptionsAreRejected()
    {
        Assert.That(() => new ViewAugmenter(new AugmentationOptions { OutputSize = 0 }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("view size"));
        Assert.That(() => new ViewAugmenter(new AugmentationOptions { FlipProbability = 1.5 }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("FlipProbability"));
        Assert.That(() => new ViewAugmenter(new AugmentationOptions { CropScaleMin = 0.9, CropScaleMax = 0.5 }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("crop scale"));
    }
}
