using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Runtime;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Methods;

public class SupervisedTests
{
    /// <summary>
    /// Distillation's soft labels go through the same loss: against class probabilities q it is the mean over images of
    /// −Σ_k q'_k log softmax(z)_k with q' = (1 − ε) q + ε/K (label smoothing ε), and one-hot probabilities give the loss of
    /// the class indices.
    /// </summary>
    [Test]
    public void LossAgainstClassProbabilitiesIsTheSoftCrossEntropy()
    {
        TorchRuntime.Initialize();
        manual_seed(0);
        using var network = new Supervised(new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }),
            new SupervisedOptions { Classes = 10, LabelSmoothing = 0.1 });
        network.eval();
        using var images = TestData.SampleTrain(6).Batch([0, 1, 2, 3, 4, 5]);
        long[] classes = [9, 0, 0, 3, 0, 2];
        using var indices = tensor(classes);
        using var oneHot = nn.functional.one_hot(indices, 10).to(ScalarType.Float32);
        using var draws = new Generator(1);
        using var soft = rand(6, 10, generator: draws).softmax(1);

        double Loss(Tensor labels)
        {
            using var generator = new Generator(7);
            using var loss = network.Loss(images, new StepContext(generator, 0.5, 1, 1, labels));
            return loss.item<float>();
        }

        // The same seed draws the same views, so the loss can be recomputed by hand from the network's logits.
        using var sameDraws = new Generator(7);
        using var views = new ViewAugmenter(AugmentationOptions.CropAndFlip()).Augment(images, sameDraws);
        using var logProbabilities = nn.functional.log_softmax(network.Logits(views), 1);
        using var smoothed = soft * 0.9 + 0.01;
        var expected = -(smoothed * logProbabilities).sum(1).mean().item<float>();

        Assert.That(Loss(soft), Is.EqualTo(expected).Within(1e-5));
        Assert.That(Loss(oneHot), Is.EqualTo(Loss(indices)).Within(1e-6));
    }

    /// <summary>
    /// With <see cref="SupervisedOptions.StrongViews"/> the classifier trains on the run's views (the method setup's recipe,
    /// here the small-image self-supervised one): the loss is the cross-entropy on those views drawn with the step's seed.
    /// </summary>
    [Test]
    public void StrongViewsTrainOnTheRunsViews()
    {
        var recipe = AugmentationOptions.SmallImages();
        using var network = Network(new SupervisedOptions { Classes = 10, StrongViews = true }, recipe);
        using var images = TestData.SampleTrain(6).Batch([0, 1, 2, 3, 4, 5]);
        using var labels = tensor(new long[] { 9, 0, 0, 3, 0, 2 });

        using var loss = StepLoss(network, images, labels);
        double CrossEntropyOn(AugmentationOptions views)
        {
            using var draws = new Generator(7);
            using var augmented = new ViewAugmenter(views).Augment(images, draws);
            using var expected = nn.functional.cross_entropy(network.Logits(augmented), labels);
            return expected.item<float>();
        }

        Assert.That(loss.item<float>(), Is.EqualTo(CrossEntropyOn(recipe)).Within(1e-5));
        Assert.That(loss.item<float>(), Is.Not.EqualTo(CrossEntropyOn(AugmentationOptions.CropAndFlip())).Within(1e-3));
    }

    /// <summary>
    /// Rows labelled −1 are unlabelled: the loss is the labelled rows' cross-entropy plus λ times FixMatch's term on the
    /// others, with the views drawn in order (labelled rows' views, crop-and-flip views of the unlabelled ones, the run's
    /// views of them) from the step's generator; recomputed here from the network's logits in eval mode.
    /// </summary>
    [Test]
    public void UnlabelledRowsTrainOnFixMatchsTerm()
    {
        var recipe = AugmentationOptions.SmallImages();
        var options = new SupervisedOptions { Classes = 10, LabelSmoothing = 0.1, UnlabelledWeight = 0.5, ConfidenceThreshold = 0 };
        using var network = Network(options, recipe);
        using var images = TestData.SampleTrain(6).Batch([0, 1, 2, 3, 4, 5]);
        using var labels = tensor(new long[] { 9, -1, 0, -1, -1, 2 });

        using var draws = new Generator(7);
        using var labelledRows = tensor(new long[] { 0, 2, 5 });
        using var unlabelledRows = tensor(new long[] { 1, 3, 4 });
        using var unlabelled = images.index_select(0, unlabelledRows);
        using var labelledViews = new ViewAugmenter(AugmentationOptions.CropAndFlip()).Augment(images.index_select(0, labelledRows), draws);
        using var weakViews = new ViewAugmenter(AugmentationOptions.CropAndFlip()).Augment(unlabelled, draws);
        using var strongViews = new ViewAugmenter(recipe).Augment(unlabelled, draws);
        using var supervised = nn.functional.cross_entropy(network.Logits(labelledViews), tensor(new long[] { 9, 0, 2 }), label_smoothing: 0.1);
        var (consistency, confident) = FixMatchLoss.Compute(network.Logits(weakViews), network.Logits(strongViews), 0);

        Assert.That(confident.item<float>(), Is.EqualTo(1), "at τ = 0 every unlabelled row counts");
        Assert.That(consistency.item<float>(), Is.GreaterThan(0));
        using (var loss = StepLoss(network, images, labels))
            Assert.That(loss.item<float>(), Is.EqualTo(supervised.item<float>() + 0.5 * consistency.item<float>()).Within(1e-5));
        options.ConfidenceThreshold = 1;
        using var strict = Network(options, recipe);
        using (var loss = StepLoss(strict, images, labels))
            Assert.That(loss.item<float>(), Is.EqualTo(supervised.item<float>()).Within(1e-5), "at τ = 1 no pseudo-label counts");
        using var generator = new Generator(7);
        Assert.That(network.ViewsInStep(6, new StepContext(generator, 0.5, 1, 1, labels)), Is.EqualTo(3 + 2 * 3),
            "views/s counts a view of each labelled row and two of each unlabelled one");
    }

    /// <summary>The method on a small encoder, the same initial weights every call, in eval mode (no batch-norm coupling between rows).</summary>
    private static Supervised Network(SupervisedOptions options, AugmentationOptions recipe)
    {
        TorchRuntime.Initialize();
        manual_seed(0);
        var network = (Supervised)options.CreateMethod(new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }), new MethodSetup(recipe, 10, 0));
        network.eval();
        return network;
    }

    /// <summary>A step's loss with the views drawn from a generator seeded 7.</summary>
    private static Tensor StepLoss(Supervised network, Tensor images, Tensor labels)
    {
        using var generator = new Generator(7);
        return network.Loss(images, new StepContext(generator, 0.5, 1, 1, labels));
    }
}
