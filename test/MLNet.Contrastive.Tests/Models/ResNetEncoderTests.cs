using MLNet.Contrastive.Models;
using MLNet.Contrastive.Runtime;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Models;

public class ResNetEncoderTests
{
    [OneTimeSetUp]
    public void Setup() => TorchRuntime.Initialize();

    [TestCase(1, 28, true, 128)]
    [TestCase(3, 96, false, 128)]
    public void MapsImagesToEmbeddings(int channels, int size, bool smallStem, int dimension)
    {
        var options = EncoderOptions.For(channels, size);
        Assert.That(options.SmallImageStem, Is.EqualTo(smallStem));
        using var encoder = new ResNetEncoder(options);
        using var images = rand(4, channels, size, size);
        using var embeddings = encoder.forward(images);
        Assert.That(embeddings.shape, Is.EqualTo(new long[] { 4, dimension }));
    }

    [Test]
    public void NormalisationIsPartOfTheSavedState()
    {
        using var encoder = new ResNetEncoder(new EncoderOptions { Mean = [0.3f], Std = [0.2f] });
        var state = encoder.state_dict();
        Assert.That(state["mean"].item<float>(), Is.EqualTo(0.3f));
        Assert.That(state["std"].item<float>(), Is.EqualTo(0.2f));
    }

    [Test]
    public void WidthsThatTriggerTheOneDnnFaultAreRejected() =>
        Assert.That(() => new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [24, 48] }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("multiples of 16"));
}
