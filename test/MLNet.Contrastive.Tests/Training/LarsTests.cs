using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Training;

public class LarsTests
{
    /// <summary>
    /// One LARS step without momentum, worked by hand: a 2×2 weight w = [[3, 0], [0, 4]] (‖w‖ = 5) with gradient
    /// g = [[0, 1], [1, 0]] (‖g‖ = √2) and a bias with gradient [1, −2]. lr 0.5, wd 0.1, η 0.02:
    /// trust = η‖w‖ / (‖g‖ + wd‖w‖) = 0.1 / (√2 + 0.5); w ← w − lr · trust · (g + wd·w); the bias takes plain SGD,
    /// neither adapted nor decayed: b ← b − lr · g_b.
    /// </summary>
    [Test]
    public void OneStepMatchesTheHandComputedUpdateAndExcludesBiases()
    {
        var weight = new Parameter(tensor(new float[] { 3, 0, 0, 4 }).view(2, 2));
        var bias = new Parameter(tensor(new float[] { 0.5f, -1 }));
        var loss = (weight * tensor(new float[] { 0, 1, 1, 0 }).view(2, 2)).sum() + (bias * tensor(new float[] { 1, -2 })).sum();
        loss.backward();

        var options = new PretrainOptions { Optimizer = OptimizerKind.Lars, Run = { LearningRate = 0.5, WeightDecay = 0.1 }, SgdMomentum = 0, LarsTrustCoefficient = 0.02 };
        var optimizer = new TrainingOptimizer([new ParameterGroup([weight, bias])], options);
        optimizer.SetLearningRate(0.5);
        optimizer.Step();

        var trust = 0.02 * 5 / (Math.Sqrt(2) + 0.1 * 5);
        double[] w = [3, 0, 0, 4], g = [0, 1, 1, 0];
        var expected = w.Select((x, i) => x - 0.5 * trust * (g[i] + 0.1 * x)).ToArray();
        Assert.That(weight.data<float>().ToArray().Select(v => (double)v), Is.EqualTo(expected).Within(1e-6));
        Assert.That(bias.data<float>().ToArray(), Is.EqualTo(new[] { 0.5f - 0.5f, -1 + 1f }).Within(1e-6));
    }

    [Test]
    public void GroupsTakeTheirFactorsAndFixedGroupsKeepThePeak()
    {
        var a = new Parameter(ones(2, 2));
        var b = new Parameter(ones(2, 2));
        var options = new PretrainOptions { Optimizer = OptimizerKind.Sgd, Run = { LearningRate = 0.4, WeightDecay = 0 }, SgdMomentum = 0};
        var optimizer = new TrainingOptimizer([new ParameterGroup([a], 10), new ParameterGroup([b], FixedLearningRate: true)], options);
        optimizer.SetLearningRate(0.1);
        (a * 1.0).sum().add((b * 1.0).sum()).backward();
        optimizer.Step();
        Assert.That(a.data<float>().ToArray(), Is.All.EqualTo(1 - 0.1 * 10).Within(1e-6));
        Assert.That(b.data<float>().ToArray(), Is.All.EqualTo(1 - 0.4).Within(1e-6));
    }

    [Test]
    public void ByolTrainsWithLars()
    {
        var options = new PretrainOptions
        {
            Method = new ByolOptions(), Optimizer = OptimizerKind.Lars, Run = { Epochs = 2, BatchSize = 64, Seed = 1, Threads = 2, Device = "cpu" },
            Encoder = new MLNet.Contrastive.Models.EncoderOptions { StemWidth = 16, StageWidths = [16, 32] },
        };
        var result = new Pretrainer(options).Fit(TestData.SampleTrain(128));
        Assert.That(result.History.Steps.All(s => double.IsFinite(s.Loss)), Is.True);
        Assert.That(result.History.Steps.Max(s => s.LearningRate), Is.EqualTo(0.3 * 64 / 256).Within(0.01), "LARS defaults to 0.3 × B / 256");
    }
}
