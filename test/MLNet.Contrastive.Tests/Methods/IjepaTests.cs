using TorchSharp;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Methods;

public class IjepaTests
{
    private static IjepaOptions TinyIjepa() => new() { PredictorDimension = 32, PredictorDepth = 1, PredictorHeads = 2 };

    // The same tiny ViT and run as MAE's tests.
    private static EncoderOptions TinyVit() => TestData.TinyVit();

    private static PretrainOptions Run(IjepaOptions method, EncoderOptions encoder, int epochs, int batchSize) => MaeTests.Run(method, encoder, epochs, batchSize);

    [Test]
    public void ResNetEncoderIsRefusedByName() =>
        Assert.That(() => new Pretrainer(Run(TinyIjepa(), new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }, 1, 32)).Fit(TestData.SampleTrain(64)),
            Throws.ArgumentException.With.Message.Contains("needs a Vision Transformer encoder").And.Message.Contains("ResNet"));

    [Test]
    public void PredictorHeadsMustDivideItsWidth() =>
        Assert.That(() => new IjepaOptions { PredictorDimension = 30, PredictorHeads = 4 }.Validate(),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("PredictorHeads"));

    /// <summary>
    /// Six epochs on 512 real images lower the loss of a tiny ViT; the checkpoint keeps the predictor and the target
    /// encoder, and the trained encoder alone is exported: ONNX Runtime's embedding equals TorchSharp's.
    /// </summary>
    [Test]
    public void ShortRunLowersTheLossKeepsPredictorAndTargetAndExportsTheEncoder()
    {
        using var folder = TestData.NewFolder();
        var options = Run(TinyIjepa(), TinyVit(), epochs: 6, batchSize: 128);
        options.CheckpointPath = folder["m.bin"];
        var data = TestData.SampleTrain(512);
        var result = new Pretrainer(options).Fit(data);
        var (first, last) = (result.History.Epochs[0].MeanLoss, result.History.Epochs[^1].MeanLoss);
        Assert.That(last, Is.LessThan(first - 0.03 * Math.Abs(first)), $"mean loss went from {first:F4} to {last:F4}");
        // A falling loss alone could be collapse (constant targets are easy to predict): the embeddings keep the spread
        // and rank of the random-init encoder's (a collapsed one: std·√D ≈ 0, rank ≈ 1).
        torch.manual_seed(3);
        var random = RepresentationMetrics.Measure(Embeddings.FromEncoder(ImageEncoder.Create(TinyVit()), data));
        var trained = RepresentationMetrics.Measure(Embeddings.FromEncoder(result.Encoder, data));
        TestContext.Out.WriteLine($"loss {first:F4} → {last:F4}; std·√D {random.StdOfNormalized / random.ExpectedStd:F3} → {trained.StdOfNormalized / trained.ExpectedStd:F3}, effective rank {random.EffectiveRank:F2} → {trained.EffectiveRank:F2}");
        Assert.That(trained.StdOfNormalized / trained.ExpectedStd, Is.GreaterThan(0.15), "std·√D");
        Assert.That(trained.EffectiveRank, Is.GreaterThan(0.5 * random.EffectiveRank), "effective rank");

        var (_, method) = Checkpoint.LoadMethod(folder["m.bin"]);
        var keys = method.state_dict().Keys;
        Assert.That(keys, Has.Some.EqualTo("predictor.mask_token").And.Some.StartsWith("predictor.predictor_blocks."));
        Assert.That(keys, Has.Some.EqualTo("targetEncoder.pos_embed"));
        var encoder = Checkpoint.LoadEncoder(folder["m.bin"]);
        Assert.That(encoder, Is.InstanceOf<VisionTransformer>());
        Assert.That(encoder.state_dict().Keys, Has.None.Contains("predictor").And.None.Contains("target"));

        TestData.AssertOnnxMatchesTorch(encoder, folder["encoder.onnx"]);
    }
}
