using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Methods;

public class MaeTests
{
    private static MaeOptions TinyMae() => new() { DecoderDimension = 32, DecoderDepth = 1, DecoderHeads = 2 };

    internal static PretrainOptions Run(MethodOptions method, EncoderOptions encoder, int epochs, int batchSize) => new()
    {
        Method = method, Run = { Epochs = epochs, BatchSize = batchSize, Seed = 3, Threads = 2, Device = "cpu", LearningRate = 1e-3 }, WarmupFraction = 0.1,
        Encoder = encoder,
    };

    [Test]
    public void RandomMaskingKeepsTheRightCountAndRestoreUndoesTheShuffle()
    {
        using var generator = new Generator(5);
        var mask = PatchMasking.Random(3, 49, 0.75, generator);
        Assert.That(mask.Keep.shape, Is.EqualTo(new long[] { 3, 12 }), "⌊49 · 0.25⌋ visible patches");
        Assert.That(mask.Mask.sum(1).data<float>().ToArray(), Is.All.EqualTo(37));
        for (var i = 0; i < 3; i++)
        {
            var keep = mask.Keep[i].data<long>().ToArray();
            Assert.That(keep.Distinct().Count(), Is.EqualTo(12));
            Assert.That(keep.Select(k => mask.Mask[i, k].item<float>()), Is.All.EqualTo(0), "kept patches are unmasked");
        }
        // Tokens numbered by patch: the visible ones in the shuffled order, then the masked ones, put back by Restore.
        var tokens = arange(49).expand(3, -1);
        var shuffle = mask.Restore.argsort(1);
        Assert.That(shuffle.narrow(1, 0, 12).eq(mask.Keep).all().item<bool>(), Is.True);
        var restored = tokens.gather(1, shuffle).gather(1, mask.Restore);
        Assert.That(restored.eq(tokens).all().item<bool>(), Is.True);
    }

    [Test]
    public void EncodeVisibleOfEveryPatchInOrderIsTheFullForward()
    {
        manual_seed(2);
        var vit = new VisionTransformer(TestData.TinyVit());
        vit.eval();
        using var images = TestData.SampleTrain(4).Batch([0, 1, 2, 3]);
        var all = arange(49).expand(4, -1);
        Assert.That(vit.EncodeVisible(images, all).allclose(vit.Tokens(images), rtol: 1e-4, atol: 1e-5), Is.True);
        Assert.That(vit.EncodeVisible(images, all.narrow(1, 0, 12)).shape, Is.EqualTo(new long[] { 4, 13, 32 }));
    }

    [Test]
    public void ResNetEncoderIsRefusedByName() =>
        Assert.That(() => new Pretrainer(Run(TinyMae(), new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }, 1, 32)).Fit(TestData.SampleTrain(64)),
            Throws.ArgumentException.With.Message.Contains("needs a Vision Transformer encoder").And.Message.Contains("ResNet"));

    /// <summary>
    /// Six epochs on 512 real images lower the loss of a tiny ViT; the checkpoint keeps the decoder, and the encoder
    /// alone is exported: ONNX Runtime's embedding equals TorchSharp's.
    /// </summary>
    [Test]
    public void ShortRunLowersTheLossKeepsTheDecoderAndExportsTheEncoder()
    {
        using var folder = TestData.NewFolder();
        var options = Run(TinyMae(), TestData.TinyVit(), epochs: 6, batchSize: 128);
        options.CheckpointPath = folder["m.bin"];
        var data = TestData.SampleTrain(512);
        var result = new Pretrainer(options).Fit(data);
        var (first, last) = (result.History.Epochs[0].MeanLoss, result.History.Epochs[^1].MeanLoss);
        Assert.That(last, Is.LessThan(first - 0.03 * Math.Abs(first)), $"mean loss went from {first:F4} to {last:F4}");

        var (_, method) = Checkpoint.LoadMethod(folder["m.bin"]);
        Assert.That(method.state_dict().Keys, Has.Some.StartsWith("decoder.").And.Some.EqualTo("decoder.mask_token"));
        var encoder = Checkpoint.LoadEncoder(folder["m.bin"]);
        Assert.That(encoder, Is.InstanceOf<VisionTransformer>());
        Assert.That(encoder.state_dict().Keys, Has.None.Contains("decoder"));

        TestData.AssertOnnxMatchesTorch(encoder, folder["encoder.onnx"]);
    }
}
