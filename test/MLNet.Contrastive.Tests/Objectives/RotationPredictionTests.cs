using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Objectives;

public class RotationPredictionTests
{
    [OneTimeSetUp]
    public void Setup() => TorchRuntime.Initialize();

    [Test]
    public void FourQuarterTurnsAreTheIdentityAndOneIsATranspose()
    {
        using var images = TestData.SampleTrain(4).Batch([0, 1, 2, 3]);
        using var once = images.rot90(1, (2, 3));
        using var four = once.rot90(1, (2, 3)).rot90(1, (2, 3)).rot90(1, (2, 3));
        Assert.That((four - images).abs().max().item<float>(), Is.Zero);
        // A counter-clockwise quarter turn: out[i, j] = in[j, W − 1 − i].
        Assert.That(once[0, 0, 3, 5].item<float>(), Is.EqualTo(images[0, 0, 5, 27 - 3].item<float>()));
    }

    [Test]
    public void AllRotationsStacksFourBlocksWithTheirLabels()
    {
        using var images = TestData.SampleTrain(3).Batch([0, 1, 2]);
        var (rotated, labels) = RotationPrediction.AllRotations(images);
        Assert.That(rotated.shape, Is.EqualTo(new long[] { 12, 1, 28, 28 }));
        Assert.That(labels.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3 }));
        Assert.That((rotated[6] - images[0].rot90(2, (1, 2))).abs().max().item<float>(), Is.Zero);
    }

    [Test]
    public void NonSquareImagesAreCentreCropped()
    {
        using var images = arange(2 * 1 * 4 * 6, dtype: ScalarType.Float32).view(2, 1, 4, 6);
        using var square = RotationPrediction.CenterSquare(images);
        Assert.That(square.shape, Is.EqualTo(new long[] { 2, 1, 4, 4 }));
        Assert.That(square[0, 0, 0].data<float>().ToArray(), Is.EqualTo(new float[] { 1, 2, 3, 4 }));
    }

    [Test]
    public void LossIsCrossEntropyOfTheRotationLabel()
    {
        // Uniform logits: ln 4. Logits (2, 0, 0, 0) for label 0: −log(e² / (e² + 3)).
        using var uniform = zeros(8, 4);
        using var labels = tensor(new long[] { 0, 1, 2, 3, 0, 1, 2, 3 });
        Assert.That(RotationPrediction.Loss(uniform, labels).item<float>(), Is.EqualTo(Math.Log(4)).Within(1e-6));
        using var confident = tensor(new float[] { 2, 0, 0, 0 }, new long[] { 1, 4 });
        Assert.That(RotationPrediction.Loss(confident, tensor(new long[] { 0 })).item<float>(),
            Is.EqualTo(-Math.Log(Math.Exp(2) / (Math.Exp(2) + 3))).Within(1e-6));
    }
}
