using TorchSharp;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Runtime;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Models;

public class ResNetEncoderTests
{
    [OneTimeSetUp]
    public void Setup() => TorchRuntime.Initialize();

    [TestCase(1, 28, true)]
    [TestCase(3, 96, false)]
    public void MapsImagesToOutputsAndEmbeddings(int channels, int size, bool smallStem)
    {
        var options = EncoderOptions.For(channels, size);
        Assert.That(options.SmallImageStem, Is.EqualTo(smallStem));
        using var encoder = new ResNetEncoder(options);
        using var images = rand(4, channels, size, size);
        using var output = encoder.forward(images);
        using var embedding = encoder.Embed(images);
        Assert.That(output.shape, Is.EqualTo(new long[] { 4, 128 }), "D: the last stage's width");
        Assert.That(embedding.shape, Is.EqualTo(new long[] { 4, 768 }), "E: 2 × 2 regions of the last two stages, (64 + 128) · 4");
    }

    [Test]
    public void EmbeddingIsTheGridMeansOfTheLastStagesAndForwardTheLastStagesMean()
    {
        manual_seed(2);
        using var encoder = new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32, 48], EmbeddingStages = 2, EmbeddingGrid = 2 });
        encoder.eval();
        using var images = rand(3, 1, 28, 28);
        var stages = encoder.StageOutputs(images);
        Assert.That(stages.Select(s => s.shape[2]), Is.EqualTo(new long[] { 14, 7, 4 }));
        // By hand: the 7 × 7 stage's 2 × 2 regions are rows/columns 0–3 and 3–6 (PyTorch's adaptive bins), the 4 × 4 stage's 0–1 and 2–3.
        Tensor Regions(Tensor stage, long[] starts, long size) => stack(
            starts.SelectMany(r => starts.Select(c => stage[.., .., TensorIndex.Slice(r, r + size), TensorIndex.Slice(c, c + size)].mean([2, 3]))).ToArray(), 2).flatten(1);
        var expected = cat([Regions(stages[1], [0, 3], 4), Regions(stages[2], [0, 2], 2)], 1);
        Assert.That((encoder.Embed(images) - expected).abs().max().item<float>(), Is.LessThan(1e-5));
        Assert.That((encoder.forward(images) - stages[2].mean([2, 3])).abs().max().item<float>(), Is.LessThan(1e-5));
    }

    [TestCase(0, 2, "Embedding stages")]
    [TestCase(4, 2, "Embedding stages")]
    [TestCase(1, 5, "embedding grid")]
    public void EmbeddingReadoutIsValidated(int stages, int grid, string named) =>
        Assert.That(() => new ResNetEncoder(new EncoderOptions { EmbeddingStages = stages, EmbeddingGrid = grid }),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains(named));

    [TestCase(1, 28)]
    [TestCase(3, 32)]
    [TestCase(3, 96)]
    public void ChannelsLastFloat32NetworkMatchesItsFloat64CopyInValueAndGradient(int channels, int size)
    {
        // float64 convolutions do not go through oneDNN, so the copy checks the channels-last float32 kernels.
        manual_seed(5);
        using var encoder = new ResNetEncoder(EncoderOptions.For(channels, size));
        using var reference = new ResNetEncoder(EncoderOptions.For(channels, size));
        reference.load_state_dict(encoder.state_dict());
        reference.to(float64);
        using var images = rand(8, channels, size, size);
        using var probe = randn(8, 128);

        Assert.That(encoder.StageOutputs(images).Select(stage => stage.stride(1)), Is.All.EqualTo(1), "stages stored channels-last");
        var ours = (encoder.forward(images) * probe).sum();
        ours.backward();
        var theirs = (reference.forward(images.to(float64)) * probe.to(float64)).sum();
        theirs.backward();

        Assert.That(ours.item<float>(), Is.EqualTo(theirs.item<double>()).Within(1e-4 * Math.Max(1, Math.Abs(theirs.item<double>()))));
        foreach (var ((name, mine), (_, exact)) in encoder.named_parameters().Zip(reference.named_parameters()))
        {
            var scale = exact.grad!.abs().max().item<double>();
            Assert.That((mine.grad!.to(float64) - exact.grad).abs().max().item<double>(), Is.LessThan(1e-3 * scale + 1e-7), name);
        }
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
