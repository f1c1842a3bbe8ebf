using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Objectives;

public class DecoupledContrastiveLossTests
{
    [OneTimeSetUp]
    public void Setup() => TorchRuntime.Initialize();

    // The batch of dcl_reference.py (next to this file), which printed the expected values below in double precision.
    private static readonly float[] Z1 = [1.0f, 0.0f, 2.0f, -1.0f, 0.5f, 1.5f, -0.5f, 0.0f, -1.0f, 0.5f, 0.0f, 1.0f];
    private static readonly float[] Z2 = [0.8f, 0.3f, 1.5f, -0.6f, 0.0f, 1.0f, 0.5f, 0.5f, 1.0f, -0.5f, 0.5f, 0.0f];

    [Test]
    public void ThePositiveLeavesTheDenominator()
    {
        // Two images, identical views e1 and e2, τ = 1. Anchor e1 (view 1): positive e1 (similarity 1), negatives e2 and
        // e2 (0 each): −1 + ln 2, the same for all four anchors. NT-Xent, with the positive in the denominator, is ln(2 + e) − 1.
        using var z = tensor(new float[] { 1, 0, 0, 1 }, new long[] { 2, 2 });
        using var loss = DecoupledContrastiveLoss.Compute(z, z, temperature: 1.0);
        Assert.That(loss.item<float>(), Is.EqualTo(Math.Log(2) - 1).Within(1e-6));
    }

    [TestCase(0.5, 1.1847401591)]
    [TestCase(0.1, 2.3901140167)]
    public void DclMatchesTheIndependentReference(double temperature, double expected)
    {
        using var z1 = tensor(Z1, new long[] { 3, 4 });
        using var z2 = tensor(Z2, new long[] { 3, 4 });
        using var loss = DecoupledContrastiveLoss.Compute(z1, z2, temperature);
        Assert.That(loss.item<float>(), Is.EqualTo(expected).Within(1e-5));
    }

    [Test]
    public void DclwWeightsAndLossMatchTheIndependentReference()
    {
        using var z1 = tensor(Z1, new long[] { 3, 4 });
        using var z2 = tensor(Z2, new long[] { 3, 4 });
        using var weights = DecoupledContrastiveLoss.Weights(z1, z2, sigma: 0.5);
        Assert.That(weights.data<float>().ToArray(), Is.EqualTo(new[] { 0.0204389041, 1.0506568607, 1.9289042352 }).Within(1e-5));
        Assert.That(weights.mean().item<float>(), Is.EqualTo(1).Within(1e-6), "the weights average 1");
        using var loss = DecoupledContrastiveLoss.Compute(z1, z2, temperature: 0.5, sigma: 0.5);
        Assert.That(loss.item<float>(), Is.EqualTo(2.2271804951).Within(1e-5));
    }

    [Test]
    public void GradientsFlowThroughTheLossButNotTheWeights()
    {
        using var generator = new Generator(7);
        using var z1 = randn(new long[] { 16, 8 }, generator: generator).requires_grad_();
        using var z2 = randn(new long[] { 16, 8 }, generator: generator).requires_grad_();
        using var weights = DecoupledContrastiveLoss.Weights(z1, z2);
        Assert.That(weights.requires_grad, Is.False);
        using var loss = DecoupledContrastiveLoss.Compute(z1, z2, 0.1, sigma: 0.5);
        loss.backward();
        foreach (var grad in new[] { z1.grad!, z2.grad! })
        {
            Assert.That(grad.isfinite().all().item<bool>(), Is.True);
            Assert.That(grad.abs().sum().item<float>(), Is.GreaterThan(1e-3));
        }
    }

    [Test]
    public void BadInputIsNamed()
    {
        using var a = ones(4, 8);
        using var b = ones(4, 7);
        Assert.That(() => DecoupledContrastiveLoss.Compute(a, b), Throws.ArgumentException.With.Message.Contains("[4, 8]"));
        Assert.That(() => DecoupledContrastiveLoss.Compute(a, a, sigma: 0), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("σ"));
    }
}
