using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Tests.Objectives;

public class MoCoLossTests
{
    /// <summary>−log(e^{q·k/τ} / (e^{q·k/τ} + Σⱼ e^{q·nⱼ/τ})) averaged over queries, in double precision.</summary>
    [Test]
    public void MatchesTheInfoNceFormulaOverTheQueue()
    {
        manual_seed(7);
        using var q = F.normalize(randn(5, 8), dim: 1);
        using var k = F.normalize(randn(5, 8), dim: 1);
        using var queue = F.normalize(randn(11, 8), dim: 1);
        const double tau = 0.2;
        var (queries, keys, negatives) = (TestData.Rows(q).ToArray(), TestData.Rows(k).ToArray(), TestData.Rows(queue).ToArray());
        static double Dot(double[] a, double[] b) => a.Zip(b, (x, y) => x * y).Sum();
        var expected = queries.Select((query, i) =>
        {
            var positive = Math.Exp(Dot(query, keys[i]) / tau);
            return -Math.Log(positive / (positive + negatives.Sum(n => Math.Exp(Dot(query, n) / tau))));
        }).Average();
        Assert.That(MoCoLoss.Compute(q, k, queue, tau).item<float>(), Is.EqualTo(expected).Within(1e-5));
    }

    [Test]
    public void HandComputedWithOneNegative()
    {
        // q = k (q·k = 1), the queue holds −q (q·n = −1), τ = 1: loss = −log(e / (e + e⁻¹)) = log(1 + e⁻²).
        using var q = tensor(new float[] { 1, 0 }).view(1, 2);
        using var queue = tensor(new float[] { -1, 0 }).view(1, 2);
        Assert.That(MoCoLoss.Compute(q, q, queue, 1.0).item<float>(), Is.EqualTo(Math.Log(1 + Math.Exp(-2))).Within(1e-6));
    }

    [Test]
    public void NoGradientReachesKeysOrQueue()
    {
        manual_seed(8);
        using var q = randn(4, 3).requires_grad_();
        using var k = randn(4, 3).requires_grad_();
        using var queue = randn(6, 3).requires_grad_();
        MoCoLoss.Compute(q, k, queue, 0.5).backward();
        Assert.That(q.grad, Is.Not.Null);
        Assert.That(k.grad, Is.Null);
        Assert.That(queue.grad, Is.Null);
    }

    [Test]
    public void AQueueOfAnotherWidthIsNamed() =>
        Assert.That(() => MoCoLoss.Compute(ones(2, 3), ones(2, 3), ones(4, 5), 0.2),
            Throws.ArgumentException.With.Message.Contains("queue must be [K, 3]"));
}
