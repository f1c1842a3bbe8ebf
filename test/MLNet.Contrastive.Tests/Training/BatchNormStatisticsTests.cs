using MLNet.Contrastive.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MLNet.Contrastive.Tests.Training;

public class BatchNormStatisticsTests
{
    /// <summary>
    /// A batch-norm layer straight on the pixels: after re-estimation on 300 sample images in batches of 100, its running
    /// mean is the mean pixel value of the 300 images and its running variance the average of the three batches'
    /// unbiased variances, both computed here in doubles from the pixels; the layer's momentum and the module's mode come back.
    /// </summary>
    [Test]
    public void RunningStatisticsBecomeTheAverageOfTheBatchesStatistics()
    {
        var data = TestData.SampleTrain(300);
        var norm = BatchNorm2d(1);
        var module = Sequential(("bn", norm));
        module.eval();

        var layers = BatchNormStatistics.Reestimate(module, data, images: 300, batchSize: 100, seed: 3);

        Assert.That(layers, Is.EqualTo(1));
        Assert.That(module.training, Is.False, "the module's mode is restored");
        Assert.That(norm.momentum, Is.EqualTo(0.1).Within(1e-12), "the layer's momentum is restored");
        // Every image is in exactly one batch of 100, whatever the order, so the mean is the pixels' mean; the variance
        // averages each batch's, so the batches are rebuilt in the sampling order.
        var order = Pretrainer.Permutation(300, 3, -1);
        var batchVariances = Enumerable.Range(0, 3).Select(b =>
        {
            var pixels = order.Skip(100 * b).Take(100).SelectMany(i => data.Image(i).ToArray().Select(p => p / 255.0)).ToArray();
            var mean = pixels.Average();
            return pixels.Sum(p => (p - mean) * (p - mean)) / (pixels.Length - 1);
        }).ToArray();
        var allMean = Enumerable.Range(0, 300).SelectMany(i => data.Image(i).ToArray().Select(p => p / 255.0)).Average();
        Assert.That(norm.running_mean!.item<float>(), Is.EqualTo(allMean).Within(1e-5));
        Assert.That(norm.running_var!.item<float>(), Is.EqualTo(batchVariances.Average()).Within(1e-5));
    }

    /// <summary>Weights do not change, and a module without batch norm (a ViT's layer norms) is left alone.</summary>
    [Test]
    public void WeightsAndModulesWithoutBatchNormAreUntouched()
    {
        var data = TestData.SampleTrain(64);
        var conv = Conv2d(1, 4, 3);
        var norm = BatchNorm2d(4);
        var module = Sequential(("conv", conv), ("bn", norm), ("relu", ReLU()));
        var before = module.parameters().Select(p => p.detach().clone()).ToList();
        Assert.That(BatchNormStatistics.Reestimate(module, data, batchSize: 32), Is.EqualTo(1));
        Assert.That(module.parameters().Zip(before, (p, b) => TestData.Same(p.detach(), b)).All(same => same), Is.True);
        Assert.That(norm.running_mean!.abs().sum().item<float>(), Is.GreaterThan(0f));

        var layerNorm = Sequential(("ln", LayerNorm(new long[] { 28 })));
        Assert.That(BatchNormStatistics.Reestimate(layerNorm, data), Is.EqualTo(0));
    }

    [Test]
    public void BadArgumentsAreRefusedByName()
    {
        var data = TestData.SampleTrain(10);
        var module = Sequential(("bn", BatchNorm2d(1)));
        Assert.That(() => BatchNormStatistics.Reestimate(module, data, images: 0), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("images"));
        Assert.That(() => BatchNormStatistics.Reestimate(module, data, batchSize: 1), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("batchSize"));
        Assert.That(() => new PretrainOptions { ReestimateBatchNorm = true }.Validate(), Throws.ArgumentException.With.Message.Contains("Initialization"));
    }
}
