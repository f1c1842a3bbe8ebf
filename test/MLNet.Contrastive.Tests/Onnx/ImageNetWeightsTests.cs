using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Runtime;
using MLNet.Contrastive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Onnx;

public class ImageNetWeightsTests
{
    [OneTimeSetUp]
    public void Setup() => TorchRuntime.Initialize();

    [Test]
    public void ImportedResNet18EqualsOnnxRuntimeOnThePackagesFile()
    {
        var encoder = ImageNetWeights.ResNet18();
        Assert.That(encoder.Options.StageWidths, Is.EqualTo(new[] { 64, 128, 256, 512 }));
        Assert.That(encoder.Options.StageBlocks, Is.EqualTo(new[] { 2, 2, 2, 3 }), "CNTK's ResNet-18 has a third block in its last stage");

        // The same two RGB images in [0, 1]: through TorchSharp as they are, through ONNX Runtime as the network was trained
        // (BGR, 0–255, minus the per-channel mean that the encoder's normalisation holds).
        var generator = new Random(7);
        var pixels = Enumerable.Range(0, 2 * 3 * 224 * 224).Select(_ => (float)generator.NextDouble()).ToArray();
        using var images = tensor(pixels, new long[] { 2, 3, 224, 224 });
        float[] ours;
        using (var pause = CollectionPause.Begin())
        using (var noGrad = no_grad())
        using (var output = encoder.forward(images)) ours = output.data<float>().ToArray();

        using var scale = 255f.ToScalar();
        using var mean255 = encoder.NormalizationMean.mul(scale).flip(1);
        using var bgr = images.flip(1).mul(scale).sub(mean255).contiguous();
        var bgrValues = bgr.data<float>().ToArray();
        using var session = new InferenceSession(ImageNetWeights.ResNet18Path());
        var theirs = new List<float>();
        for (var n = 0; n < 2; n++)
        {
            var input = new DenseTensor<float>(bgrValues.AsMemory(n * 3 * 224 * 224, 3 * 224 * 224), [1, 3, 224, 224]);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.Single(), input)]);
            theirs.AddRange(results.Single().AsEnumerable<float>());
        }
        Assert.That(ours, Has.Length.EqualTo(theirs.Count).And.Length.EqualTo(2 * 512));
        var largest = theirs.Max(Math.Abs);
        var difference = ours.Zip(theirs, (a, b) => Math.Abs(a - b)).Max();
        TestContext.Out.WriteLine($"largest feature {largest}, largest difference {difference}");
        Assert.That(difference, Is.LessThanOrEqualTo(1e-4f));
    }

    [Test]
    public void ItIsAnInitializationByName()
    {
        var init = PretrainedEncoder.Load(ImageNetWeights.ResNet18Name);
        Assert.That(init.ImageShape, Is.EqualTo((3, 224, 224)));
        Assert.That(init.Source, Does.Contain("ImageNet ResNet-18"));
        Assert.That(init.EncoderOptions.EmbeddingDimension, Is.EqualTo(512));
        Assert.That(init.EncoderOptions.FirstStageStride, Is.EqualTo(1));
    }

    [Test]
    public void AFileThatIsNotResNet18IsNamed()
    {
        using var folder = TestData.NewFolder();
        EncoderOnnxExporter.Export(new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }), folder["small.onnx"]);
        Assert.That(() => ImageNetWeights.ResNet18(folder["small.onnx"]),
            Throws.TypeOf<InvalidDataException>().With.Message.StartsWith(folder["small.onnx"] + ": "));
    }
}
