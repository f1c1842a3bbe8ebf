using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Objectives;

public class NceLossTests
{
    [OneTimeSetUp]
    public void Setup() => TorchRuntime.Initialize();

    [Test]
    public void EqualsHandComputedValue()
    {
        // One anchor, P(pos) = 0.5, two noise samples with P = 0.1 and 0.2, Pn = 0.25, so k·Pn = 0.5:
        // −[log(0.5 / 1.0) + log(0.5 / 0.6) + log(0.5 / 0.7)].
        using var positive = tensor(new float[] { 0.5f });
        using var noise = tensor(new float[] { 0.1f, 0.2f }, new long[] { 1, 2 });
        var expected = -(Math.Log(0.5) + Math.Log(0.5 / 0.6) + Math.Log(0.5 / 0.7));
        Assert.That(NceLoss.Compute(positive, noise, 0.25).item<float>(), Is.EqualTo(expected).Within(1e-6));
    }

    [TestCase(4, 3, 0.1)]
    [TestCase(10, 16, 0.01)]
    public void MatchesReferenceFormulaOnRandomInputs(int n, int k, double pn)
    {
        using var generator = new Generator(5);
        using var positive = rand(new long[] { n }, generator: generator) + 0.01;
        using var noise = rand(new long[] { n, k }, generator: generator) * 0.1;
        var p = positive.data<float>().ToArray();
        var q = noise.data<float>().ToArray();
        var kPn = k * pn;
        var expected = -Enumerable.Range(0, n).Average(i =>
            Math.Log(p[i] / (p[i] + kPn)) + Enumerable.Range(0, k).Sum(j => Math.Log(kPn / (q[i * k + j] + kPn))));
        Assert.That(NceLoss.Compute(positive, noise, pn).item<float>(), Is.EqualTo(expected).Within(1e-4));
    }

    [Test]
    public void ProbabilitiesUseTheEstimatedPartitionFunctionAndGradientsAreFinite()
    {
        using var positiveSimilarity = tensor(new float[] { 0.9f, 0.5f }).requires_grad_();
        using var noiseSimilarity = tensor(new float[] { 0.1f, -0.2f, 0.3f, 0.0f }, new long[] { 2, 2 }).requires_grad_();
        var positive = NceLoss.Probabilities(positiveSimilarity, noiseSimilarity, 0.5, poolSize: 10, out var noise);
        // Z = 10 × mean(exp(s / 0.5)) over all six scores.
        var z = 10 * new[] { 0.9, 0.5, 0.1, -0.2, 0.3, 0.0 }.Average(s => Math.Exp(s / 0.5));
        Assert.That(positive[0].item<float>(), Is.EqualTo(Math.Exp(1.8) / z).Within(1e-6));
        Assert.That(noise[1, 0].item<float>(), Is.EqualTo(Math.Exp(0.6) / z).Within(1e-6));
        using var loss = NceLoss.Compute(positive, noise, 0.1);
        loss.backward();
        Assert.That(positiveSimilarity.grad!.isfinite().all().item<bool>() && noiseSimilarity.grad!.isfinite().all().item<bool>(), Is.True);
        Assert.That(positiveSimilarity.grad!.abs().sum().item<float>(), Is.GreaterThan(1e-4));
    }
}
