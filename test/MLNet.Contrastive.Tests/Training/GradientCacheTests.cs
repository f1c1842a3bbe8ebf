using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Data;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Training;

public class GradientCacheTests
{
    private static PretrainingMethod Method(string name, int seed = 0)
    {
        manual_seed(seed);
        var encoder = new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] });
        return PretrainingMethods.Defaults(name).CreateMethod(encoder, new MethodSetup(AugmentationOptions.ForImageSize(28, 28), 0, seed));
    }

    private static Tensor Images(int count) => TestData.SampleTrain(count).Batch(Enumerable.Range(0, count).ToArray());

    private static Dictionary<string, Tensor> Gradients(nn.Module module) =>
        module.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());

    /// <summary>The gradient-cached loss and every parameter's gradient, the views drawn from seed 5.</summary>
    private static (double Loss, Dictionary<string, Tensor> Gradients) Cached(PretrainingMethod method, Tensor images, int chunkImages)
    {
        method.zero_grad();
        using var generator = new Generator(5);
        var (loss, backward) = GradientCache.Loss(method, images, new StepContext(generator, 0.5, 1, 1), chunkImages);
        backward();
        return (loss.item<double>(), Gradients(method));
    }

    [TestCase("simclr")]
    [TestCase("moco")]
    [TestCase("nce")]
    [TestCase("triplet")]
    [TestCase("barlow")]
    [TestCase("vicreg")]
    [TestCase("dclw")]
    [TestCase("nnclr")]
    public void CachedGradientsEqualTheWholeBatchs(string name)
    {
        // float64 and eval-mode batch norm: each row's embedding is then independent of the rows beside it, so chunking
        // changes nothing but the order of the sums.
        var method = Method(name);
        method.to(ScalarType.Float64).eval();
        using var images = Images(16).to(ScalarType.Float64);

        method.zero_grad();
        using var wholeGenerator = new Generator(5);
        var whole = method.Loss(images, new StepContext(wholeGenerator, 0.5, 1, 1));
        whole.backward();
        var expected = Gradients(method);

        var (cached, actual) = Cached(method, images, chunkImages: 3);

        Assert.That(cached, Is.EqualTo(whole.item<double>()).Within(1e-12));
        Assert.That(actual.Keys, Is.EquivalentTo(expected.Keys));
        var largest = expected.Values.Max(g => g.abs().max().item<double>());
        Assert.That(largest, Is.GreaterThan(0));
        foreach (var (parameter, gradient) in expected)
        {
            // A gradient that is zero in exact arithmetic (the last bias under Barlow Twins' and VICReg's shift-invariant
            // losses) is rounding noise on both sides: it is compared against a millionth of the largest gradient.
            var scale = Math.Max(gradient.abs().max().item<double>(), 1e-6 * largest);
            Assert.That((actual[parameter] - gradient).abs().max().item<double>() / scale, Is.LessThan(1e-6), parameter);
        }
    }

    [Test]
    public void CachedGradientsEqualTheWholeBatchsForClip()
    {
        // CLIP packs each pair into one row; the learned logit scale gets its gradient from the whole-batch loss.
        manual_seed(0);
        var sample = TestData.SampleTrain(16);
        var pairs = TextPairs.Create(Enumerable.Range(0, 16).Select(i => $"item {sample.Labels![i]} number {i % 3}").ToList());
        var encoder = new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] });
        var method = new ClipOptions().CreateMethod(encoder, new MethodSetup(AugmentationOptions.ForImageSize(28, 28), 0, 0, pairs));
        method.to(ScalarType.Float64).eval();
        var indices = Enumerable.Range(0, 16).ToArray();
        using var images = sample.Batch(indices).to(ScalarType.Float64);
        using var features = pairs.Batch(indices).to(ScalarType.Float64);

        method.zero_grad();
        using var wholeGenerator = new Generator(5);
        var whole = method.Loss(images, new StepContext(wholeGenerator, 0.5, 1, 1, pairs: features));
        whole.backward();
        var expected = Gradients(method);

        method.zero_grad();
        using var cachedGenerator = new Generator(5);
        var (cached, backward) = GradientCache.Loss(method, images, new StepContext(cachedGenerator, 0.5, 1, 1, pairs: features), chunkImages: 3);
        backward();
        var actual = Gradients(method);

        Assert.That(cached.item<double>(), Is.EqualTo(whole.item<double>()).Within(1e-12));
        Assert.That(actual.Keys, Is.EquivalentTo(expected.Keys));
        Assert.That(expected.Keys, Does.Contain("log_scale"));
        Assert.That(expected.Keys.Count(k => k.StartsWith("text_tower.", StringComparison.Ordinal)), Is.EqualTo(4), "the text tower's two layers");
        foreach (var (parameter, gradient) in expected)
        {
            var scale = Math.Max(gradient.abs().max().item<double>(), 1e-12);
            Assert.That((actual[parameter] - gradient).abs().max().item<double>() / scale, Is.LessThan(1e-6), parameter);
        }
    }

    [Test]
    public void OnlyOneChunkOfViewsPassesThroughTheEncoderWithAGraph()
    {
        // What a step keeps for backward is the activations of the passes made with a graph: each must hold one chunk,
        // whatever the batch; the whole batch's rows pass only without a graph, and only their embeddings are kept.
        var method = new RecordingMethod((TwoViewMethod)Method("simclr"));
        method.train();
        using var images = Images(32);
        using var generator = new Generator(5);
        var (_, backward) = GradientCache.Loss(method, images, new StepContext(generator, 0.5, 1, 1), chunkImages: 4);
        backward();

        Assert.That(method.Passes.Where(p => p.WithGraph).Select(p => p.Rows), Is.EqualTo(Enumerable.Repeat(4L, 16)), "sixteen passes of one view of 4 images with a graph");
        Assert.That(method.Passes.Where(p => !p.WithGraph).Select(p => p.Rows), Is.EqualTo(Enumerable.Repeat(4L, 16)), "and the same passes once without");
    }

    [Test]
    public void InTrainModeTheCachedGradientIsThatOfOneGraphOverTheSamePasses()
    {
        // Train-mode batch norm couples the rows of a pass (each is normalised by its own statistics), so the cached
        // gradient is exact only because both passes group the views alike: one view of 4 images per pass. It must
        // equal the gradient of one graph that embeds those passes with autograd and takes the objective of all of them.
        var method = Method("simclr");
        method.to(ScalarType.Float64).train();
        var objective = (IEmbeddingObjective)method;
        using var images = Images(16).to(ScalarType.Float64);

        method.zero_grad();
        using var referenceGenerator = new Generator(5);
        var referenceContext = new StepContext(referenceGenerator, 0.5, 1, 1);
        var views = objective.Views(images, referenceContext);
        var reference = objective.Objective(cat(views.split(4).Select(objective.Embed).ToArray()), referenceContext);
        reference.backward();
        var expected = Gradients(method);

        var (cached, actual) = Cached(method, images, chunkImages: 4);

        Assert.That(cached, Is.EqualTo(reference.item<double>()).Within(1e-12));
        Assert.That(actual.Keys, Is.EquivalentTo(expected.Keys));
        foreach (var (parameter, gradient) in expected)
        {
            var scale = Math.Max(gradient.abs().max().item<double>(), 1e-12);
            Assert.That((actual[parameter] - gradient).abs().max().item<double>() / scale, Is.LessThan(1e-6), parameter);
        }
    }

    /// <summary>A method that records the rows and the autograd mode of every embedding pass of the method it wraps.</summary>
    private sealed class RecordingMethod : PretrainingMethod, IEmbeddingObjective
    {
        private readonly TwoViewMethod inner;

        public RecordingMethod(TwoViewMethod inner) : base(nameof(RecordingMethod), inner.Encoder, inner.Options)
        {
            this.inner = inner;
            register_module("inner", inner);
        }

        public List<(long Rows, bool WithGraph)> Passes { get; } = [];

        public override int ViewsPerImage => inner.ViewsPerImage;

        public override Tensor Loss(Tensor images, StepContext context) => inner.Loss(images, context);

        public Tensor Views(Tensor images, StepContext context) => inner.Views(images, context);

        public Tensor Embed(Tensor views)
        {
            Passes.Add((views.shape[0], is_grad_enabled()));
            return inner.Embed(views);
        }

        public Tensor Objective(Tensor embeddings, StepContext context) => inner.Objective(embeddings, context);

        public (Tensor Loss, Tensor Gradient)? ObjectiveWithGradient(Tensor embeddings, StepContext context) => inner.ObjectiveWithGradient(embeddings, context);
    }

    [Test]
    public void TheSecondPassLeavesBatchNormStatisticsAsTheFirstLeftThem()
    {
        var method = Method("simclr");
        method.train();
        using var images = Images(16);
        var running = method.named_buffers().Where(b => b.name.EndsWith("running_mean", StringComparison.Ordinal)).ToList();
        var before = running.Select(b => b.buffer.clone()).ToList();
        using var generator = new Generator(5);
        var (_, backward) = GradientCache.Loss(method, images, new StepContext(generator, 0.5, 1, 1), chunkImages: 4);
        var afterFirstPass = running.Select(b => b.buffer.clone()).ToList();
        backward();

        Assert.That(afterFirstPass.Zip(before).Any(p => !TestData.Same(p.First, p.Second)), Is.True, "the first pass moves the statistics");
        foreach (var ((_, buffer), first) in running.Zip(afterFirstPass))
            Assert.That(TestData.Same(buffer, first), Is.True, "the second pass restores them");
    }

    [Test]
    public void PretrainingWithChunksRunsAndOtherMethodsAreRefused()
    {
        var data = TestData.SampleTrain(128);
        var result = new Pretrainer(new PretrainOptions
        {
            Run = { Epochs = 1, BatchSize = 64, Seed = 1 }, ChunkSize = 16, Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] },
        }).Fit(data);
        Assert.That(result.History.Steps, Has.Count.EqualTo(2));
        Assert.That(result.History.Steps.All(s => double.IsFinite(s.Loss)), Is.True);

        Assert.That(() => new Pretrainer(new PretrainOptions { Method = new ByolOptions(), Run = { Epochs = 1, BatchSize = 64 }, ChunkSize = 16 }).Fit(data),
            Throws.ArgumentException.With.Message.StartsWith("Gradient caching (chunk size 16) needs a method whose loss couples the batch only through embeddings"));
        Assert.That(() => new Pretrainer(new PretrainOptions { ChunkSize = 0 }), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [TestCase(OptimizerKind.Lars, LearningRateScaling.Sqrt, 1024, 2.4)]
    [TestCase(OptimizerKind.Lars, LearningRateScaling.Linear, 1024, 1.2)]
    [TestCase(OptimizerKind.Sgd, LearningRateScaling.Sqrt, 256, 1.2)]
    [TestCase(OptimizerKind.Sgd, LearningRateScaling.Linear, 256, 0.3)]
    public void DefaultLearningRatesFollowTheScalingRule(OptimizerKind optimizer, LearningRateScaling scaling, int batch, double expected) =>
        Assert.That(new PretrainOptions { Optimizer = optimizer, LearningRateScaling = scaling, Run = { BatchSize = batch }}.PeakLearningRate,
            Is.EqualTo(expected).Within(1e-12));
}
