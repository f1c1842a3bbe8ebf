using MLNet.Contrastive.Training;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MLNet.Contrastive.Tests.Training;

public class WeightAveragingTests
{
    private static Module<Tensor, Tensor> Network(float weight, float bias, float runningMean, long steps)
    {
        var linear = Linear(2, 1);
        var norm = BatchNorm1d(1);
        using (no_grad())
        {
            linear.weight!.copy_(tensor(new[] { weight, 2 * weight }).reshape(1, 2));
            linear.bias!.copy_(tensor(new[] { bias }));
            norm.running_mean!.copy_(tensor(new[] { runningMean }));
            norm.num_batches_tracked!.copy_(tensor(steps));
        }
        return Sequential(("fc", linear), ("bn", norm));
    }

    /// <summary>Three networks' weights 1, 2, 6 (mean 3), biases 0, 0, 3 (mean 1), running means 3, 6, 9 (mean 6): averaged by hand.</summary>
    [Test]
    public void EveryFloatingPointTensorBecomesTheMeanAndStepCountsStayTheTargets()
    {
        var target = Network(1, 0, 3, 10);
        WeightAveraging.Average(target, [Network(2, 0, 6, 20), Network(6, 3, 9, 30)]);

        var state = target.state_dict();
        Assert.That(state["fc.weight"].data<float>().ToArray(), Is.EqualTo(new[] { 3f, 6f }).Within(1e-6));
        Assert.That(state["fc.bias"].item<float>(), Is.EqualTo(1f).Within(1e-6));
        Assert.That(state["bn.running_mean"].item<float>(), Is.EqualTo(6f).Within(1e-6));
        Assert.That(state["bn.running_var"].item<float>(), Is.EqualTo(1f).Within(1e-6), "all three start at 1");
        Assert.That(state["bn.num_batches_tracked"].item<long>(), Is.EqualTo(10), "an integer buffer is not averaged");
        Assert.That(target.parameters().All(p => p.requires_grad), Is.True, "the parameters stay trainable");
    }

    /// <summary>Weights near float32's largest value average to themselves, not to infinity (their sum would overflow).</summary>
    [Test]
    public void LargeWeightsDoNotOverflow()
    {
        var target = Network(1.5e38f, 0, 0, 0);
        WeightAveraging.Average(target, [Network(1.5e38f, 0, 0, 0)]);
        Assert.That(target.state_dict()["fc.weight"].data<float>().ToArray(), Is.EqualTo(new[] { 1.5e38f, 3e38f }).Within(1e32f), "3e38 + 3e38 would be infinite");
    }

    /// <summary>A layer registered under two names (as a method's encoder is) is averaged once: (1 + 3) / 2, not ((1 + 3) / 2 + 3) / 2.</summary>
    [Test]
    public void ATensorUnderTwoNamesIsAveragedOnce()
    {
        var target = new Aliased(1);
        WeightAveraging.Average(target, [new Aliased(3)]);
        Assert.That(target.state_dict().Keys, Is.EquivalentTo(new[] { "first.weight", "again.weight" }));
        Assert.That(target.state_dict()["first.weight"].item<float>(), Is.EqualTo(2f));
    }

    /// <summary>One layer in two fields, each registered under its own name.</summary>
    private sealed class Aliased : Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear first;
        private readonly TorchSharp.Modules.Linear again;

        public Aliased(float weight) : base(nameof(Aliased))
        {
            first = again = Linear(1, 1, hasBias: false);
            using (no_grad()) first.weight!.copy_(tensor(new[] { weight }).reshape(1, 1));
            RegisterComponents();
        }

        public override Tensor forward(Tensor input) => again.forward(first.forward(input));
    }

    [Test]
    public void AnotherArchitectureIsRefusedByName()
    {
        var target = Network(1, 0, 0, 0);
        var wider = Sequential(("fc", Linear(3, 1)), ("bn", BatchNorm1d(1)));
        var renamed = Sequential(("head", Linear(2, 1)), ("bn", BatchNorm1d(1)));

        var shape = Assert.Throws<ArgumentException>(() => WeightAveraging.Average(target, [wider]))!;
        Assert.That(shape.Message, Does.Contain("fc.weight of shape [1, 3], the target [1, 2]"));
        var names = Assert.Throws<ArgumentException>(() => WeightAveraging.Average(target, [renamed]))!;
        Assert.That(names.Message, Does.Contain("fc.weight").And.Contain("head.weight"));
        Assert.That(target.state_dict()["fc.weight"].data<float>().ToArray(), Is.EqualTo(new[] { 1f, 2f }), "nothing changed before the refusal");
    }
}
