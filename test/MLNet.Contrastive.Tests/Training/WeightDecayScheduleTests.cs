using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Training;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Training;

public class WeightDecayScheduleTests
{
    [Test]
    public void TheWeightDecayFollowsDinosCosineFromStartToEnd()
    {
        // DINO's cosine_scheduler(0.04, 0.4): end + ½(start − end)(1 + cos(π t)).
        Assert.That(LearningRateSchedule.WeightDecayAt(0, 0.04, 0.4), Is.EqualTo(0.04).Within(1e-15));
        Assert.That(LearningRateSchedule.WeightDecayAt(0.5, 0.04, 0.4), Is.EqualTo(0.22).Within(1e-15));
        Assert.That(LearningRateSchedule.WeightDecayAt(0.25, 0.04, 0.4), Is.EqualTo(0.4 - 0.36 * 0.5 * (1 + Math.Sqrt(0.5))).Within(1e-15));
        Assert.That(LearningRateSchedule.WeightDecayAt(1, 0.04, 0.4), Is.EqualTo(0.4).Within(1e-15));
        Assert.That(LearningRateSchedule.WeightDecayAt(0.7, 0.04, null), Is.EqualTo(0.04));
    }

    [TestCase(OptimizerKind.AdamW)]
    [TestCase(OptimizerKind.Sgd)]
    public void AStepDecaysTheWeightsByTheScheduledValue(OptimizerKind kind)
    {
        // A zero gradient leaves only the decay: AdamW's decoupled w ← w (1 − lr·wd); SGD's first step w ← w − lr·wd·w.
        using var weight = new TorchSharp.Modules.Parameter(tensor(new float[] { 2f, -1f }));
        var options = new PretrainOptions { Optimizer = kind, Run = { LearningRate = 0.1, WeightDecay = 0.04 }, WeightDecayEnd = 0.4 };
        var optimizer = new TrainingOptimizer([new ParameterGroup([weight])], options);
        optimizer.SetLearningRate(0.1);
        var scheduled = LearningRateSchedule.WeightDecayAt(0.5, 0.04, 0.4);
        optimizer.SetWeightDecay(scheduled);
        weight.grad = zeros(2);
        optimizer.Step();
        Assert.That(optimizer.WeightDecay, Is.EqualTo(0.22).Within(1e-15));
        Assert.That(weight.data<float>().ToArray(), Is.EqualTo(new[] { 2f * (1 - 0.1f * 0.22f), -1f * (1 - 0.1f * 0.22f) }).Within(1e-6));
    }

    [Test]
    public void ANegativeFinalWeightDecayIsRefusedByName()
    {
        var options = new PretrainOptions { WeightDecayEnd = -0.1 };
        Assert.That(() => new Pretrainer(options), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("WeightDecayEnd"));
    }
}
