using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Training;

public class PretrainedEncoderTests
{
    private static EncoderOptions Small => new() { StemWidth = 16, StageWidths = [16, 32] };

    private static PretrainOptions Run(MethodOptions method) => new() { Method = method, Run = { Epochs = 1, BatchSize = 64, Seed = 3, Threads = 2, Device = "cpu" } };

    [Test]
    public void AnyMethodStartsFromTheRunsWeights()
    {
        using var folder = TestData.NewFolder();
        var data = TestData.SampleTrain(256);
        var pretraining = Run(new SimClrOptions());
        pretraining.Encoder = Small;
        pretraining.CheckpointPath = folder[RunFolder.CheckpointFile];
        new Pretrainer(pretraining).Fit(data);
        var pretrained = Checkpoint.LoadEncoder(folder[RunFolder.CheckpointFile]).state_dict();

        var continued = Run(new ByolOptions());
        continued.Initialization = PretrainedEncoder.Load(folder.Path);
        continued.ReestimateBatchNorm = false;
        using var session = new Pretrainer(continued).Start(data);
        Assert.That(session.Info.InitializedFrom, Is.EqualTo(folder[RunFolder.CheckpointFile]));
        Assert.That(session.Info.Encoder.StageWidths, Is.EqualTo(new[] { 16, 32 }), "the run takes the pretrained encoder's shape");
        foreach (var (name, tensor) in session.Method.Encoder.state_dict())
            Assert.That(TestData.Same(tensor.cpu(), pretrained[name]), Is.True, name);

        session.Step(Enumerable.Range(0, 64).ToArray(), 0.5, 1);
        var weight = "blocks.1.conv1.weight";
        Assert.That(TestData.Same(session.Method.Encoder.state_dict()[weight].cpu(), pretrained[weight]), Is.False, "training moves on from the copy");
        Assert.That(TestData.Same(Checkpoint.LoadEncoder(folder[RunFolder.CheckpointFile]).state_dict()[weight], pretrained[weight]), Is.True, "the run it came from is untouched");
    }

    /// <summary>
    /// Continued pretraining's defaults: a tenth of the from-scratch learning rate, 1 % warm-up and batch-norm statistics
    /// re-estimated on the new images (the weights themselves copied unchanged); all recorded in the checkpoint, so a
    /// resumed run without the Initialization keeps them; explicit settings win.
    /// </summary>
    [Test]
    public void ContinuedPretrainingLowersTheLearningRateAndReestimatesBatchNorm()
    {
        using var folder = TestData.NewFolder();
        var data = TestData.SampleTrain(256);
        var imported = PretrainedEncoder.From(new ResNetEncoder(Small));
        var continued = Run(new SimClrOptions());
        continued.Initialization = imported;
        continued.CheckpointPath = folder[RunFolder.CheckpointFile];
        Assert.That(Run(new SimClrOptions()).PeakLearningRate, Is.EqualTo(2e-3).Within(1e-12));
        Assert.That(Run(new SimClrOptions()).Warmup, Is.EqualTo(0.05).Within(1e-12));
        Assert.That(continued.PeakLearningRate, Is.EqualTo(2e-4).Within(1e-12));
        Assert.That(continued.Warmup, Is.EqualTo(0.01).Within(1e-12));

        using (var session = new Pretrainer(continued).Start(data))
        {
            var ours = session.Method.Encoder.state_dict();
            foreach (var (name, tensor) in imported.Encoder.state_dict().Where(entry => !entry.Key.EndsWith("num_batches_tracked")))
                Assert.That(TestData.Same(ours[name].cpu(), tensor), Is.EqualTo(!name.Contains("running_")), name);
            session.SaveCheckpoint();
        }
        var stored = Checkpoint.ReadInfo(folder[RunFolder.CheckpointFile]).Options;
        Assert.That(stored.Run.LearningRate, Is.EqualTo(2e-4).Within(1e-12));
        Assert.That(stored.WarmupFraction, Is.EqualTo(0.01).Within(1e-12));

        var resumed = Run(new SimClrOptions());
        resumed.CheckpointPath = folder[RunFolder.CheckpointFile];
        resumed.Resume = true;
        using (var session = new Pretrainer(resumed).Start(data))
            Assert.That(session.Step(Enumerable.Range(0, 64).ToArray(), 0.5, 1).LearningRate, Is.EqualTo(LearningRateSchedule.At(0.5, 2e-4, 0.01)).Within(1e-12),
                "a resumed run keeps the rate it started with");

        var explicitRate = Run(new SimClrOptions());
        explicitRate.Initialization = imported;
        explicitRate.Run.LearningRate = 1e-3;
        explicitRate.WarmupFraction = 0.1;
        Assert.That((explicitRate.PeakLearningRate, explicitRate.Warmup), Is.EqualTo((1e-3, 0.1)));
    }

    [Test]
    public void MismatchedChannelsAndShapesAreNamed()
    {
        var data = TestData.SampleTrain(64);
        var rgb = Run(new SimClrOptions());
        rgb.Initialization = PretrainedEncoder.From(new ResNetEncoder(EncoderOptions.For(3, 28)));
        Assert.That(() => new Pretrainer(rgb).Start(data), Throws.ArgumentException.With.Message.EqualTo(
            "the given encoder: the pretrained encoder takes 3-channel images but these images have 1 channel."));

        var both = Run(new SimClrOptions());
        both.Initialization = PretrainedEncoder.From(new ResNetEncoder(Small));
        both.Encoder = Small;
        Assert.That(() => new Pretrainer(both), Throws.ArgumentException.With.Message.StartsWith("Give either an encoder shape or an initialization"));

        var wider = new ResNetEncoder(new EncoderOptions { StemWidth = 16, StageWidths = [32, 32] });
        Assert.That(() => PretrainedEncoder.From(new ResNetEncoder(Small)).CopyTo(wider), Throws.ArgumentException.With.Message.StartsWith(
            "the given encoder: the pretrained encoder's 'blocks.0.conv1.weight' is [16, 16, 3, 3], the encoder being trained needs [32, 16, 3, 3]"));

        using var empty = TestData.NewFolder();
        Assert.That(() => PretrainedEncoder.Load(empty.Path), Throws.InstanceOf<FileNotFoundException>().With.Message.Contains("the folder holds no checkpoint.bin"));
    }

    [Test]
    public void FrozenPhaseTrainsOnlyTheClassifierThenTheEncoderAtItsOwnRate()
    {
        var data = TestData.SampleTrain(64);
        var run = Run(new SupervisedOptions { FrozenEncoderFraction = 0.5, EncoderLearningRateFactor = 0.1, LabelSmoothing = 0.1 });
        run.Encoder = Small;
        run.Run.WeightDecay = 0;
        using var session = new Pretrainer(run).Start(data);
        var method = (Supervised)session.Method;
        Dictionary<string, Tensor> Snapshot() => method.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone());
        var indices = Enumerable.Range(0, 64).ToArray();

        var before = Snapshot();
        session.Step(indices, 0.2, 1);
        var frozen = Snapshot();
        foreach (var name in before.Keys.Where(k => k.StartsWith("encoder.")))
            Assert.That(TestData.Same(frozen[name], before[name]), Is.True, $"{name} (weights and batch-norm statistics) stay frozen");
        Assert.That(frozen.Where(p => p.Key.StartsWith("classifier.")).All(p => !TestData.Same(p.Value, before[p.Key])), Is.True, "the classifier trains");

        session.Step(indices, 0.6, 1);
        Assert.That(TestData.Same(method.state_dict()["encoder.blocks.0.conv1.weight"], frozen["encoder.blocks.0.conv1.weight"]), Is.False, "after the frozen phase the encoder trains");
    }
}
