using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Methods;

public class IbotTests
{
    // DinoTests' short-run settings (τ_t fixed at 0.04, a slower centre) on a small head.
    private static IbotOptions Small() => new()
    {
        Prototypes = 128, HiddenDimension = 128, BottleneckDimension = 64, LocalCrops = 2, TeacherTemperature = 0.04, CenterMomentum = 0.99,
    };

    private static PretrainOptions Run(IbotOptions method, EncoderOptions encoder, int epochs, int batchSize) => new()
    {
        Method = method, Run = { Epochs = epochs, BatchSize = batchSize, Seed = 3, Threads = 2, Device = "cpu", LearningRate = 5e-4 }, WarmupFraction = 0.1,
        Encoder = encoder,
    };

    [Test]
    public void RandomRatiosHideBetweenATenthAndAHalfOfEachImage()
    {
        using var generator = new Generator(7);
        var mask = PatchMasking.RandomRatios(64, 49, 0.1, 0.5, generator);
        Assert.That(mask.shape, Is.EqualTo(new long[] { 64, 49 }));
        var counts = mask.sum(1).data<float>().ToArray();
        Assert.That(counts, Is.All.InRange(4, 24), "⌊49 · 0.1⌋ to ⌊49 · 0.5⌋ patches");
        Assert.That(counts.Distinct().Count(), Is.GreaterThan(5), "the ratio is drawn per image");
        Assert.That(mask.eq(0).logical_or(mask.eq(1)).all().item<bool>(), Is.True);
    }

    /// <summary>The mask hook: no patch masked is the plain forward; masked patches see the token, which takes a gradient.</summary>
    [Test]
    public void EncodeMaskedReplacesOnlyTheMaskedPatches()
    {
        manual_seed(2);
        var vit = new VisionTransformer(TestData.TinyVit());
        vit.eval();
        using var images = TestData.SampleTrain(4).Batch([0, 1, 2, 3]);
        var token = randn(32).requires_grad_();
        Assert.That(vit.EncodeMasked(images, zeros(4, 49), token).allclose(vit.Tokens(images), rtol: 1e-4, atol: 1e-5), Is.True);
        var mask = zeros(4, 49);
        mask[0, 3] = tensor(1f);
        var masked = vit.EncodeMasked(images, mask, token);
        Assert.That(masked[1].allclose(vit.Tokens(images)[1], rtol: 1e-4, atol: 1e-5), Is.True, "other images unchanged");
        Assert.That(masked[0].allclose(vit.Tokens(images)[0], rtol: 1e-4, atol: 1e-5), Is.False);
        masked.sum().backward();
        Assert.That(token.grad is not null && token.grad.abs().sum().item<float>() > 0, Is.True);
        Assert.That(() => vit.EncodeMasked(images, zeros(4, 48), token), Throws.ArgumentException.With.Message.Contains("[N = 4, L = 49]"));
    }

    [Test]
    public void ResNetEncoderIsRefusedByName() =>
        Assert.That(() => new Pretrainer(Run(Small(), new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }, 1, 32)).Fit(TestData.SampleTrain(64)),
            Throws.ArgumentException.With.Message.Contains("needs a Vision Transformer encoder").And.Message.Contains("ResNet"));

    /// <summary>
    /// Six epochs on 512 real images with a tiny ViT lower the loss without collapse (the teacher's entropy away from 0
    /// and log K); the checkpoint carries both centres and the mask token and rebuilds them; the exported encoder has
    /// neither, and ONNX Runtime's embedding equals TorchSharp's.
    /// </summary>
    [Test]
    public void ShortRunLowersTheLossRoundTripsAndExportsTheEncoder()
    {
        using var folder = TestData.NewFolder();
        var options = Run(Small(), TestData.TinyVit(), epochs: 6, batchSize: 128);
        options.CheckpointPath = folder["i.bin"];
        var result = new Pretrainer(options).Fit(TestData.SampleTrain(512));

        var (first, last) = (result.History.Epochs[0].MeanLoss, result.History.Epochs[^1].MeanLoss);
        Assert.That(last, Is.LessThan(first - 0.03 * Math.Abs(first)), $"mean loss went from {first:F4} to {last:F4}");
        var monitors = result.History.Steps[^1].Monitors!;
        Assert.That(monitors["TeacherEntropy"], Is.InRange(0.05, 0.95 * Math.Log(128)), "teacher entropy");
        Assert.That(monitors["PatchLoss"], Is.GreaterThan(0).And.LessThan(result.History.Steps[^1].Loss));
        TestContext.Out.WriteLine($"loss {first:F4} → {last:F4}; teacher entropy {monitors["TeacherEntropy"]:F3}, patch loss {monitors["PatchLoss"]:F3}");

        var trained = (Ibot)result.Method;
        var (info, method) = Checkpoint.LoadMethod(folder["i.bin"]);
        Assert.That(info.Options.Method, Is.InstanceOf<IbotOptions>());
        var loaded = (Ibot)method;
        Assert.That(loaded.PatchCenter.abs().sum().item<float>(), Is.GreaterThan(0));
        Assert.That(TestData.Same(loaded.PatchCenter, trained.PatchCenter), Is.True, "PatchCenter");
        Assert.That(TestData.Same(loaded.Center, trained.Center), Is.True, "Center");
        Assert.That(TestData.Same(loaded.MaskToken, trained.MaskToken), Is.True, "MaskToken");
        Assert.That(loaded.MaskToken.abs().sum().item<float>(), Is.GreaterThan(0), "the mask token trained");

        var encoder = Checkpoint.LoadEncoder(folder["i.bin"]);
        Assert.That(encoder, Is.InstanceOf<VisionTransformer>());
        Assert.That(encoder.state_dict().Keys, Has.None.Contains("mask_token").And.None.Contains("center"));
        TestData.AssertOnnxMatchesTorch(encoder, folder["encoder.onnx"]);
    }
}
