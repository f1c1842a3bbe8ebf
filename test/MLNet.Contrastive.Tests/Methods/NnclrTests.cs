using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Runtime;
using MLNet.Contrastive.Training;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Methods;

public class NnclrTests
{
    [OneTimeSetUp]
    public void Setup() => TorchRuntime.Initialize();

    [Test]
    public void TheNearestNeighbourIsTheMostSimilarSupportRowAsStored()
    {
        // Support rows: east, north, west, and north-east stored at length 3√2. By cosine: (2, 0.1) is nearest east;
        // (0.5, 0.6) north-east (0.996 against north's 0.768), returned at its stored length; (−1, −0.2) west; and
        // (0.1, −1), which is far from every row, east (cosine 0.10 against north-east's −0.64 and west's −0.10).
        using var support = tensor(new float[] { 1, 0, 0, 1, -1, 0, 3, 3 }, new long[] { 4, 2 });
        using var queries = tensor(new float[] { 2, 0.1f, 0.5f, 0.6f, -1, -0.2f, 0.1f, -1 }, new long[] { 4, 2 }).requires_grad_(true);
        using var nearest = NnclrLoss.NearestNeighbours(queries, support);
        Assert.That(nearest.data<float>().ToArray(), Is.EqualTo(new float[] { 1, 0, 3, 3, -1, 0, 1, 0 }));
        Assert.That(nearest.requires_grad, Is.False);
    }

    [Test]
    public void TheLossIsNtXentOfTheNeighboursAgainstTheOtherViewsPredictions()
    {
        using var generator = new Generator(3);
        using var z1 = randn(new long[] { 6, 4 }, generator: generator);
        using var z2 = randn(new long[] { 6, 4 }, generator: generator);
        using var p1 = randn(new long[] { 6, 4 }, generator: generator).requires_grad_(true);
        using var p2 = randn(new long[] { 6, 4 }, generator: generator).requires_grad_(true);
        using var support = randn(new long[] { 10, 4 }, generator: generator);
        using var loss = NnclrLoss.Compute(z1, z2, p1, p2, support, 0.2);
        using var expected = (NtXentLoss.Compute(NnclrLoss.NearestNeighbours(z1, support), p2, 0.2) + NtXentLoss.Compute(NnclrLoss.NearestNeighbours(z2, support), p1, 0.2)) / 2;
        Assert.That(loss.item<float>(), Is.EqualTo(expected.item<float>()).Within(1e-6));
        loss.backward();
        Assert.That(p1.grad!.abs().sum().item<float>(), Is.GreaterThan(0));
        Assert.That(() => NnclrLoss.Compute(z1, z2, p1, p2, zeros(3, 5)), Throws.ArgumentException.With.Message.Contains("support [K ≥ 1, D]"));
    }

    [Test]
    public void TheSupportSetIsInTheCheckpointAndAResumeContinuesIt()
    {
        // NNCLR's loss depends on the support set: equal losses after the resume show it and its position came back.
        var data = TestData.SampleTrain(256);
        using var folder = TestData.NewFolder();
        PretrainOptions Options(string? checkpoint = null, bool resume = false) => new()
        {
            Method = new NnclrOptions { SupportSize = 384 }, Run = { Epochs = 3, BatchSize = 64, Seed = 5, Threads = 2, Device = "cpu" },
            Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] }, CheckpointPath = checkpoint, Resume = resume,
        };
        var uninterrupted = new Pretrainer(Options()).Fit(data);

        var checkpoint = folder["nnclr.bin"];
        using var stop = new CancellationTokenSource();
        Assert.That(() => new Pretrainer(Options(checkpoint)).Fit(data, new MomentumMethodTests.Progress(p => { if (p.Step == 8) stop.Cancel(); }), stop.Token),
            Throws.InstanceOf<OperationCanceledException>());
        var (_, saved) = Checkpoint.LoadMethod(checkpoint);
        var state = saved.state_dict();
        Assert.That(state["support"].shape, Is.EqualTo(new long[] { 384, 128 }));
        // Eight steps of 64 second views: the 384 rows filled, the ring wrapped to 512 mod 384.
        Assert.That((state["support_count"].item<long>(), state["support_position"].item<long>()), Is.EqualTo((384L, 128L)));
        using var norms = state["support"].norm(1);
        Assert.That(TestData.Rows(norms.unsqueeze(1)).Select(r => r[0]), Is.All.EqualTo(1).Within(1e-4), "normalised projections");

        var resumed = new Pretrainer(Options(checkpoint, resume: true)).Fit(data);
        Assert.That(resumed.History.Steps.Skip(8).Select(s => s.Loss), Is.EqualTo(uninterrupted.History.Steps.Skip(8).Select(s => s.Loss)).Within(1e-4));
    }

    [Test]
    public void ABatchLargerThanTheSupportSetIsRefused() =>
        Assert.That(() => new Pretrainer(new PretrainOptions
        {
            Method = new NnclrOptions { SupportSize = 32 }, Run = { Epochs = 1, BatchSize = 64, Threads = 2, Device = "cpu" },
            Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] },
        }).Fit(TestData.SampleTrain(64)), Throws.ArgumentException.With.Message.Contains("support set (32 projections) must hold at least one step's (64)"));
}
