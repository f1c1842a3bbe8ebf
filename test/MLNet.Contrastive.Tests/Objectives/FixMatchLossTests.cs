using MLNet.Contrastive.Objectives;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Objectives;

public class FixMatchLossTests
{
    private static Tensor Matrix(params float[][] rows) => tensor(rows.SelectMany(r => r).ToArray()).view(rows.Length, rows[0].Length);

    /// <summary>CE(z, k) = log Σ_j e^{z_j} − z_k.</summary>
    private static double CrossEntropy(float[] logits, int target) => Math.Log(logits.Sum(z => Math.Exp(z))) - logits[target];

    /// <summary>
    /// Weak-view softmaxes: row 0 → class 0 at 0.99991, row 1 → class 0 at 0.576 (below τ = 0.95), row 2 → class 2 at
    /// 0.9867. The loss is (CE(strong₀, 0) + 0 + CE(strong₂, 2)) / 3, the mean over the whole batch, and 2 of 3 rows count.
    /// </summary>
    [Test]
    public void ConfidentPseudoLabelsOfWeakViewsAreTheStrongViewsTargets()
    {
        float[][] strong = [[0.5f, 1, -1], [3, 0, 0], [1, 2, 0.25f]];
        using var weakLogits = Matrix([10, 0, 0], [1, 0, 0], [0, 0, 5]).requires_grad_();
        using var strongLogits = Matrix(strong).requires_grad_();

        var (loss, confident) = FixMatchLoss.Compute(weakLogits, strongLogits, 0.95);

        var expected = (CrossEntropy(strong[0], 0) + CrossEntropy(strong[2], 2)) / 3;
        Assert.That(loss.item<float>(), Is.EqualTo(expected).Within(1e-5));
        Assert.That(confident.item<float>(), Is.EqualTo(2.0 / 3).Within(1e-6));
        loss.backward();
        Assert.That(weakLogits.grad, Is.Null, "the pseudo-labels are targets: no gradient flows into the weak views");
        Assert.That(strongLogits.grad!.select(0, 1).abs().sum().item<float>(), Is.Zero, "an unconfident row adds nothing");

        // τ = 0: every row counts, row 1 with its pseudo-label 0; τ = 1: none does.
        var all = (CrossEntropy(strong[0], 0) + CrossEntropy(strong[1], 0) + CrossEntropy(strong[2], 2)) / 3;
        Assert.That(FixMatchLoss.Compute(weakLogits, strongLogits, 0).Loss.item<float>(), Is.EqualTo(all).Within(1e-5));
        Assert.That(FixMatchLoss.Compute(weakLogits, strongLogits, 1).Loss.item<float>(), Is.Zero);
    }

    [Test]
    public void MismatchedShapesAndThresholdsAreRefused()
    {
        using var a = zeros(4, 3);
        using var b = zeros(4, 2);
        Assert.That(() => FixMatchLoss.Compute(a, b, 0.95), Throws.ArgumentException.With.Message.Contains("must both be [N, D]"));
        Assert.That(() => FixMatchLoss.Compute(a, a, 1.5), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("threshold must be in [0, 1]"));
        Assert.That(() => FixMatchLoss.Compute(a, a, double.NaN), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
