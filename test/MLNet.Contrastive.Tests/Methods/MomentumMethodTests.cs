using MLNet.Contrastive.Augmentation;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Methods;

public class MomentumMethodTests
{
    private static readonly EncoderOptions Small = new() { StemWidth = 16, StageWidths = [16, 32] };
    private static MethodSetup Setup => new(AugmentationOptions.SmallImages(), 0, 0);

    [TestCase(0.0, 0.99)]
    [TestCase(0.5, 0.995)]
    [TestCase(1.0, 1.0)]
    public void TauRisesFromItsBaseToOneAlongACosine(double progress, double expected) =>
        Assert.That(MomentumTarget.Tau(0.99, progress), Is.EqualTo(expected).Within(1e-12));

    [Test]
    public void MovingAverageUpdateMatchesTheFormulaAndLeavesTheTargetFrozen()
    {
        manual_seed(1);
        var online = nn.Linear(3, 2);
        var target = nn.Linear(3, 2);
        var momentum = new MomentumTarget((online, target));
        Assert.That(target.parameters().All(p => !p.requires_grad), Is.True);
        Assert.That(target.weight!.data<float>().ToArray(), Is.EqualTo(online.weight!.data<float>().ToArray()));

        using (no_grad()) online.weight.add_(1.0);
        var before = target.weight.data<float>().ToArray();
        var source = online.weight.data<float>().ToArray();
        momentum.Update(0.9);
        var after = target.weight.data<float>().ToArray();
        for (var i = 0; i < after.Length; i++) Assert.That(after[i], Is.EqualTo(0.9 * before[i] + 0.1 * source[i]).Within(1e-6));
    }

    [Test]
    public void ByolTrainsOnlyTheOnlineNetworkAndMovesTheTargetAfterEachStep()
    {
        manual_seed(2);
        var encoder = new ResNetEncoder(Small);
        var byol = new Byol(encoder, new ByolOptions { PredictorLearningRateFactor = 10 }, Setup);
        var groups = byol.ParameterGroups().ToList();
        var trained = groups.SelectMany(g => g.Parameters).ToHashSet();
        Assert.That(trained, Has.Count.EqualTo(byol.parameters().Count(p => p.requires_grad)));
        Assert.That(byol.parameters().Where(p => !p.requires_grad).Count(), Is.GreaterThan(0), "the target has parameters, all frozen");
        Assert.That(groups[1].LearningRateFactor, Is.EqualTo(10));

        var targetWeight = byol.named_parameters().First(p => p.name.StartsWith("targetEncoder")).parameter;
        var before = targetWeight.data<float>().ToArray();
        using (no_grad()) foreach (var p in encoder.parameters()) p.add_(0.5);
        using var generator = new Generator(1);
        byol.AfterStep(new StepContext(generator, progress: 0.5, epoch: 1, step: 1));
        Assert.That(byol.Momentum, Is.EqualTo(0.995).Within(1e-12));
        var after = targetWeight.data<float>().ToArray();
        for (var i = 0; i < after.Length; i++) Assert.That(after[i], Is.EqualTo(before[i] + 0.005 * 0.5).Within(1e-5));
    }

    [Test]
    public void MoCoQueueIsFirstInFirstOutAndWraps()
    {
        manual_seed(3);
        var moco = new MoCo(new ResNetEncoder(Small), new MoCoOptions { QueueSize = 8, ProjectionDimension = 4 }, Setup);
        using var first = arange(12, dtype: ScalarType.Float32).view(3, 4);
        using var second = (arange(24, dtype: ScalarType.Float32).view(6, 4) + 100);
        moco.Enqueue(first);
        Assert.That(moco.QueuePosition, Is.EqualTo(3));
        moco.Enqueue(second);
        Assert.That(moco.QueuePosition, Is.EqualTo(1));
        var queue = moco.Queue.data<float>().ToArray();
        // Slots 3…7 hold the first five new keys, slot 0 the sixth (it replaced the oldest); slots 1 and 2 keep the first batch's last rows.
        Assert.That(queue[(3 * 4)..(8 * 4)], Is.EqualTo(second.data<float>().ToArray()[..20]));
        Assert.That(queue[..4], Is.EqualTo(second.data<float>().ToArray()[20..]));
        Assert.That(queue[4..12], Is.EqualTo(first.data<float>().ToArray()[4..]));
    }

    [Test]
    public void MoCoResumedFromItsCheckpointRepeatsTheUninterruptedRun()
    {
        // MoCo's loss depends on the queue: equal losses after the resume show the queue and its position came back.
        var data = TestData.SampleTrain(256);
        using var folder = TestData.NewFolder();
        PretrainOptions Options(string? checkpoint = null, bool resume = false) => new()
        {
            Method = new MoCoOptions { QueueSize = 512 }, Run = { Epochs = 3, BatchSize = 64, Seed = 5, Threads = 2, Device = "cpu" },
            Encoder = Small, CheckpointPath = checkpoint, Resume = resume,
        };
        var uninterrupted = new Pretrainer(Options()).Fit(data);

        var checkpoint = folder["moco.bin"];
        using var stop = new CancellationTokenSource();
        Assert.That(() => new Pretrainer(Options(checkpoint)).Fit(data, new Progress(p => { if (p.Step == 8) stop.Cancel(); }), stop.Token),
            Throws.InstanceOf<OperationCanceledException>());
        var (_, saved) = Checkpoint.LoadMethod(checkpoint);
        Assert.That(((MoCo)saved).QueuePosition, Is.EqualTo(8 * 2 * 64 % 512));

        var resumed = new Pretrainer(Options(checkpoint, resume: true)).Fit(data);
        Assert.That(resumed.History.Steps.Skip(8).Select(s => s.Loss), Is.EqualTo(uninterrupted.History.Steps.Skip(8).Select(s => s.Loss)).Within(1e-4));
    }

    [Test]
    public void MoCoRefusesABatchItsQueueCannotHold()
    {
        var options = new PretrainOptions
        {
            Method = new MoCoOptions { QueueSize = 64 }, Run = { Epochs = 1, BatchSize = 64, Threads = 2, Device = "cpu" }, Encoder = Small,
        };
        Assert.That(() => new Pretrainer(options).Fit(TestData.SampleTrain(128)),
            Throws.ArgumentException.With.Message.Contains("queue (64 keys) must hold at least one step's keys (2 × batch = 128)"));
    }

    internal sealed class Progress(Action<PretrainProgress> report) : IProgress<PretrainProgress>
    {
        public void Report(PretrainProgress value) => report(value);
    }
}
