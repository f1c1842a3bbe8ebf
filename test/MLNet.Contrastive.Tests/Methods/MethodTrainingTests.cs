using MLNet.Contrastive.Evaluation;
using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Methods;

public class MethodTrainingTests
{
    private static PretrainOptions SmallRun(MethodOptions method, int epochs, int batchSize = 128) => new()
    {
        Method = method, Run = { Epochs = epochs, BatchSize = batchSize, Seed = 3, Threads = 2, Device = "cpu", LearningRate = 3e-3 }, WarmupFraction = 0.1,
        Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] },
    };

    private static IEnumerable<TestCaseData> EveryMethod()
    {
        yield return new TestCaseData(new SimClrOptions()).SetArgDisplayNames("simclr");
        yield return new TestCaseData(new RotationOptions()).SetArgDisplayNames("rotation");
        yield return new TestCaseData(new JigsawOptions()).SetArgDisplayNames("jigsaw");
        yield return new TestCaseData(new NceOptions()).SetArgDisplayNames("nce");
        yield return new TestCaseData(new SupervisedOptions()).SetArgDisplayNames("supervised");
        // Semi-hard mining re-picks each negative just beyond its positive, so that loss stays near the margin by
        // construction (its progress shows in the probe, docs/methods.md); batch-hard's loss falls as training works.
        yield return new TestCaseData(new TripletOptions { Mining = TripletMining.BatchHard }).SetArgDisplayNames("triplet");
        yield return new TestCaseData(new MoCoOptions { QueueSize = 1024 }).SetArgDisplayNames("moco");
        yield return new TestCaseData(new ByolOptions()).SetArgDisplayNames("byol");
        yield return new TestCaseData(new SimSiamOptions()).SetArgDisplayNames("simsiam");
        yield return new TestCaseData(new BarlowTwinsOptions()).SetArgDisplayNames("barlow");
        yield return new TestCaseData(new VicRegOptions()).SetArgDisplayNames("vicreg");
        yield return new TestCaseData(new SwavOptions { Prototypes = 30, LocalCrops = 2 }).SetArgDisplayNames("swav");
        yield return new TestCaseData(new DclOptions()).SetArgDisplayNames("dcl");
        yield return new TestCaseData(new DclwOptions()).SetArgDisplayNames("dclw");
        yield return new TestCaseData(new NnclrOptions { SupportSize = 256 }).SetArgDisplayNames("nnclr");
    }

    /// <summary>
    /// Six epochs on 512 real images lower the mean loss, and the encoder has not collapsed: the spread of its
    /// normalised embeddings (1 = uniform, 0 = one point) and their effective rank stay above floors that a
    /// collapsed encoder (std·√D ≈ 0, rank ≈ 1) misses by far (the random-init encoder of this shape: about 0.3 and 6).
    /// </summary>
    [TestCaseSource(nameof(EveryMethod))]
    public void ShortRunOnRealImagesLowersTheLossWithoutCollapse(MethodOptions method)
    {
        var data = TestData.SampleTrain(512);
        var result = new Pretrainer(SmallRun(method, epochs: 6)).Fit(data);
        // MoCo starts with a queue of random unit vectors, easy negatives; its loss rises until real keys fill the
        // queue (4 steps here), so its progress counts from the second epoch.
        var first = result.History.Epochs[method is MoCoOptions ? 1 : 0].MeanLoss;
        var last = result.History.Epochs[^1].MeanLoss;
        Assert.That(last, Is.LessThan(first - 0.03 * Math.Abs(first)), $"{method.Name}: mean loss went from {first:F4} to {last:F4}");

        var signals = RepresentationMetrics.Measure(Embeddings.FromEncoder(result.Encoder, data));
        Assert.That(signals.StdOfNormalized / signals.ExpectedStd, Is.GreaterThan(0.15), $"{method.Name}: std·√D");
        Assert.That(signals.EffectiveRank, Is.GreaterThan(3.0), $"{method.Name}: effective rank");
    }

    [Test]
    public void EveryRegisteredMethodHasAName() =>
        Assert.That(PretrainingMethods.Names, Is.EquivalentTo(new[]
            { "simclr", "moco", "byol", "simsiam", "barlow", "vicreg", "rotation", "jigsaw", "triplet", "nce", "swav", "clip", "supervised", "distill", "dcl", "dclw", "nnclr", "dino", "mae", "ibot", "ijepa" }));

    [Test]
    public void SupervisedTrainingOnUnlabeledImagesIsRejected()
    {
        var unlabeled = new MLNet.Contrastive.Data.ImageStore(new byte[64 * 784], 1, 28, 28, null, null, Enumerable.Range(0, 64).Select(i => $"#{i}").ToArray(), []);
        Assert.That(() => new Pretrainer(SmallRun(new SupervisedOptions(), 1, 32)).Fit(unlabeled),
            Throws.ArgumentException.With.Message.Contains("Supervised training needs labelled images of at least 2 classes").And.Message.Contains("the data has 0"));
    }

    private static IEnumerable<TestCaseData> EveryMethodWithOtherSettings()
    {
        yield return new TestCaseData(new SimClrOptions { Temperature = 0.35, ProjectionDimension = 48 });
        yield return new TestCaseData(new MoCoOptions { QueueSize = 96, Temperature = 0.15, Momentum = 0.9, ShuffleGroups = 2 });
        yield return new TestCaseData(new ByolOptions { BaseMomentum = 0.95, PredictorHiddenDimension = 64, PredictorLearningRateFactor = 10 });
        yield return new TestCaseData(new SimSiamOptions { PredictorHiddenDimension = 32, FixedPredictorLearningRate = false });
        yield return new TestCaseData(new BarlowTwinsOptions { ProjectionDimension = 64, Lambda = 0.01 });
        yield return new TestCaseData(new VicRegOptions { ProjectionDimension = 64, VarianceWeight = 10 });
        yield return new TestCaseData(new RotationOptions { Augment = false, HiddenDimension = 64 });
        yield return new TestCaseData(new JigsawOptions { Permutations = 30 });
        yield return new TestCaseData(new TripletOptions { Margin = 0.3, Mining = TripletMining.BatchHard, Distance = TripletDistance.Euclidean });
        yield return new TestCaseData(new SwavOptions { Prototypes = 20, Temperature = 0.2, Epsilon = 0.03, LocalCrops = 2, LocalCropSize = 12, QueueLength = 64 });
        yield return new TestCaseData(new NceOptions { NoiseSamples = 5, Temperature = 0.5 });
        yield return new TestCaseData(new SupervisedOptions());
        yield return new TestCaseData(new DclOptions { Temperature = 0.3, ProjectionDimension = 48 });
        yield return new TestCaseData(new DclwOptions { Temperature = 0.2, Sigma = 0.3 });
        yield return new TestCaseData(new NnclrOptions { Temperature = 0.2, SupportSize = 96, PredictorHiddenDimension = 64 });
        yield return new TestCaseData(new DinoOptions { Prototypes = 64, HiddenDimension = 64, BottleneckDimension = 32, TeacherTemperature = 0.05, LocalCrops = 2, LocalCropSize = 12 });
    }

    /// <summary>Each method's own settings come back from its checkpoint, and the checkpoint rebuilds the method (supervised: with the data's class count).</summary>
    [TestCaseSource(nameof(EveryMethodWithOtherSettings))]
    public void MethodSettingsRoundTripThroughTheCheckpoint(MethodOptions method)
    {
        using var folder = TestData.NewFolder();
        var options = SmallRun(method, epochs: 1, batchSize: 32);
        options.CheckpointPath = folder["c.bin"];
        new Pretrainer(options).Fit(TestData.SampleTrain(64));

        var (info, loaded) = Checkpoint.LoadMethod(folder["c.bin"]);
        Assert.That(info.Options.Method.GetType(), Is.EqualTo(method.GetType()));
        var expected = method is SupervisedOptions ? new SupervisedOptions { Classes = 10 } : method;
        foreach (var property in method.GetType().GetProperties().Where(p => p.CanWrite))
            Assert.That(property.GetValue(info.Options.Method), Is.EqualTo(property.GetValue(expected)), $"{method.Name}.{property.Name}");
        Assert.That(loaded.Options.Name, Is.EqualTo(method.Name));
        Assert.That(Checkpoint.LoadEncoder(folder["c.bin"]).OutputDimension, Is.EqualTo(32));
    }

    [Test]
    public void JigsawCheckpointCarriesItsPermutations()
    {
        using var folder = TestData.NewFolder();
        var options = SmallRun(new JigsawOptions { Permutations = 30 }, epochs: 1, batchSize: 64);
        options.Run.Seed = 8;
        options.CheckpointPath = folder["j.bin"];
        new Pretrainer(options).Fit(TestData.SampleTrain(128));
        var (_, method) = Checkpoint.LoadMethod(folder["j.bin"]);
        var state = method.state_dict();
        Assert.That(state["permutations"].shape, Is.EqualTo(new long[] { 30, 9 }));
        Assert.That(((Jigsaw)method).Permutations, Is.EqualTo(JigsawPuzzle.Permutations(30, 8)));
    }

    [Test]
    public void SwavCarriesItsQueueInTheCheckpoint()
    {
        using var folder = TestData.NewFolder();
        var options = SmallRun(new SwavOptions { Prototypes = 20, LocalCrops = 2, QueueLength = 64, QueueStartFraction = 0 }, epochs: 2, batchSize: 32);
        options.CheckpointPath = folder["s.bin"];
        // Four steps of 32: each view's queue of 64 is full after two, and used from the third.
        var result = new Pretrainer(options).Fit(TestData.SampleTrain(64));
        Assert.That(result.History.Steps.All(s => double.IsFinite(s.Loss)), Is.True);

        var (_, method) = Checkpoint.LoadMethod(folder["s.bin"]);
        var state = method.state_dict();
        Assert.That(state["queue"].shape, Is.EqualTo(new long[] { 2, 64, 128 }));
        Assert.That(state["queued"].item<long>(), Is.EqualTo(64));
        Assert.That(state["queue"].abs().sum().item<float>(), Is.GreaterThan(0));
        Assert.That(((Swav)method).LocalCropSize(28), Is.EqualTo(16));
        using var norms = ((Swav)method).Prototypes.norm(1);
        Assert.That(TestData.Rows(norms.unsqueeze(1)).Select(r => r[0]), Is.All.EqualTo(1).Within(0.05), "prototypes are renormalised every step");
    }
}
