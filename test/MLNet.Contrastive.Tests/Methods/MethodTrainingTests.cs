using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Tests.Methods;

public class MethodTrainingTests
{
    [TestCase("simclr")]
    [TestCase("rotation")]
    [TestCase("jigsaw")]
    [TestCase("nce")]
    [TestCase("supervised")]
    // Semi-hard mining re-picks each negative just beyond its positive, so that loss stays near the margin by
    // construction (its progress shows in the probe, docs/methods.md); batch-hard's loss falls as training works.
    [TestCase("triplet", TripletMining.BatchHard)]
    public void ShortRunOnRealImagesLowersTheLoss(string method, TripletMining mining = TripletMining.SemiHard)
    {
        var options = new PretrainOptions
        {
            Method = method, Mining = mining, Epochs = 6, BatchSize = 128, Seed = 3, Threads = 2, Device = "cpu", LearningRate = 3e-3, WarmupFraction = 0.1,
            Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] },
        };
        var result = new Pretrainer(options).Fit(TestData.SampleTrain(512));
        var first = result.History.Epochs[0].MeanLoss;
        var last = result.History.Epochs[^1].MeanLoss;
        Assert.That(last, Is.LessThan(first * 0.97), $"{method}: mean loss went from {first:F4} to {last:F4}");
    }

    [Test]
    public void EveryRegisteredMethodHasAName() =>
        Assert.That(PretrainingMethods.Names, Is.EquivalentTo(new[] { "simclr", "rotation", "jigsaw", "triplet", "nce", "supervised" }));

    [Test]
    public void SupervisedTrainingOnUnlabeledImagesIsRejected()
    {
        var unlabeled = new MLNet.Contrastive.Data.ImageStore(new byte[64 * 784], 1, 28, 28, null, null, Enumerable.Range(0, 64).Select(i => $"#{i}").ToArray(), []);
        var options = new PretrainOptions { Method = "supervised", Epochs = 1, BatchSize = 32, Threads = 2, Device = "cpu" };
        Assert.That(() => new Pretrainer(options).Fit(unlabeled),
            Throws.ArgumentException.With.Message.Contains("Supervised training needs labelled images of at least 2 classes").And.Message.Contains("the data has 0"));
    }

    [Test]
    public void JigsawCheckpointCarriesItsPermutations()
    {
        using var folder = TestData.NewFolder();
        var options = new PretrainOptions
        {
            Method = "jigsaw", Epochs = 1, BatchSize = 64, JigsawPermutations = 30, Seed = 8, CheckpointPath = folder["j.bin"],
            Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] },
        };
        new Pretrainer(options).Fit(TestData.SampleTrain(128));
        var (_, method) = Checkpoint.LoadMethod(folder["j.bin"]);
        var state = method.state_dict();
        Assert.That(state["permutations"].shape, Is.EqualTo(new long[] { 30, 9 }));
        Assert.That(((Jigsaw)method).Permutations, Is.EqualTo(MLNet.Contrastive.Objectives.JigsawPuzzle.Permutations(30, 8)));
    }
}
