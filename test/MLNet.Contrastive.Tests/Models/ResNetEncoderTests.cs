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

    [TestCase(1)]
    [TestCase(3)]
    public void SmallStemAsAMatrixProductMatchesTheConvolutionAndItsGradient(int channels)
    {
        manual_seed(5);
        using var encoder = new ResNetEncoder(EncoderOptions.For(channels, 28));
        var conv = (TorchSharp.Modules.Conv2d)encoder.Stem.children().First();
        var images = rand(6, channels, 28, 28);
        using var probe = randn(6, 128);

        var ours = (encoder.forward(images) * probe).sum();
        ours.backward();
        var oursGradient = conv.weight!.grad!.clone();
        encoder.zero_grad();
        // The reference: the same network with the stem through libtorch's own convolution.
        var x = (images - encoder.NormalizationMean) / encoder.NormalizationStd;
        x = nn.functional.conv2d(x, conv.weight, null, [1, 1], [1, 1]);
        foreach (var layer in encoder.Stem.children().Skip(1).Cast<nn.Module<Tensor, Tensor>>()) x = layer.forward(x);
        foreach (var block in encoder.Blocks) x = block.forward(x);
        var reference = (x.mean([2, 3]) * probe).sum();
        reference.backward();

        Assert.That(ours.item<float>(), Is.EqualTo(reference.item<float>()).Within(1e-4));
        Assert.That((oursGradient - conv.weight.grad!).abs().max().item<float>(), Is.LessThan(1e-4 * oursGradient.abs().max().item<float>()));
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
