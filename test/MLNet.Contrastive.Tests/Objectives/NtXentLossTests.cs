using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Objectives;

public class NtXentLossTests
{
    [OneTimeSetUp]
    public void Setup() => TorchRuntime.Initialize();

    [Test]
    public void EqualsHandComputedValue()
    {
        // Two images, identical views e1 and e2, τ = 1. Anchor e1 (view 1) sees similarities
        // 0 (e2), 1 (its positive e1 in view 2), 0 (e2 in view 2): loss = −log(e / (1 + e + 1)) = ln(2 + e) − 1,
        // the same for all four anchors by symmetry.
        using var z = tensor(new float[] { 1, 0, 0, 1 }, new long[] { 2, 2 });
        using var loss = NtXentLoss.Compute(z, z, temperature: 1.0);
        Assert.That(loss.item<float>(), Is.EqualTo(Math.Log(2 + Math.E) - 1).Within(1e-6));
    }

    [Test]
    public void ScaleOfInputsDoesNotMatterAndTemperatureSharpens()
    {
        // Views (3, 4) and (0.6, 0.8) are the same direction, so the L2-normalised loss equals the unit-vector loss.
        // With z1 = [(1, 0), (0, 1)], z2 = [(0.6, 0.8), (0.8, −0.6)], τ = 0.5, anchor 0 (view 1) has
        // similarities (0, 0.6, 0.8) to (z1[1], z2[0], z2[1]), positive 0.6:
        // −log(e^1.2 / (e^0 + e^1.2 + e^1.6)).
        using var z1 = tensor(new float[] { 3, 0, 0, 5 }, new long[] { 2, 2 });
        using var z2 = tensor(new float[] { 0.6f, 0.8f, 8f, -6f }, new long[] { 2, 2 });
        using var loss = NtXentLoss.Compute(z1, z2, temperature: 0.5);
        double Term(double positive, params double[] others) => -Math.Log(Math.Exp(positive) / (Math.Exp(positive) + others.Sum(Math.Exp)));
        // Similarities / τ: z1[0]·z1[1] = 0, z1[0]·z2[0] = .6, z1[0]·z2[1] = .8, z1[1]·z2[0] = .8, z1[1]·z2[1] = −.6, z2[0]·z2[1] = 0.
        var expected = (Term(1.2, 0, 1.6) + Term(-1.2, 0, 1.6) + Term(1.2, 1.6, 0) + Term(-1.2, 1.6, 0)) / 4;
        Assert.That(loss.item<float>(), Is.EqualTo(expected).Within(1e-5));
    }

    [TestCase(8, 16, 0.1)]
    [TestCase(5, 3, 0.5)]
    [TestCase(32, 128, 0.2)]
    public void MatchesReferenceFormulaOnRandomInputs(int n, int d, double temperature)
    {
        using var generator = new Generator(42);
        using var z1 = randn(new long[] { n, d }, generator: generator);
        using var z2 = randn(new long[] { n, d }, generator: generator);
        using var loss = NtXentLoss.Compute(z1, z2, temperature);
        Assert.That(loss.item<float>(), Is.EqualTo(Reference(TestData.Rows(z1).Concat(TestData.Rows(z2)).ToArray(), temperature)).Within(1e-4));
    }

    [Test]
    public void GradientIsFiniteAndNonZero()
    {
        using var generator = new Generator(7);
        using var z1 = randn(new long[] { 16, 8 }, generator: generator).requires_grad_();
        using var z2 = randn(new long[] { 16, 8 }, generator: generator).requires_grad_();
        using var loss = NtXentLoss.Compute(z1, z2, 0.2);
        loss.backward();
        foreach (var grad in new[] { z1.grad!, z2.grad! })
        {
            Assert.That(grad.isfinite().all().item<bool>(), Is.True);
            Assert.That(grad.abs().sum().item<float>(), Is.GreaterThan(1e-3));
        }
    }

    [Test]
    public void RejectsMismatchedShapesAndSingleImageBatches()
    {
        using var a = ones(4, 8);
        using var b = ones(4, 7);
        Assert.That(() => NtXentLoss.Compute(a, b), Throws.ArgumentException.With.Message.Contains("[4, 8]"));
        using var single = ones(1, 8);
        Assert.That(() => NtXentLoss.Compute(single, single), Throws.ArgumentException.With.Message.Contains("two images"));
    }

    [TestCase(5)]
    [TestCase(12)]
    [TestCase(1024)]
    public void BlockwiseGradientEqualsAutograd(int blockRows)
    {
        // float64, 2N = 12 views: blocks of 5 leave a ragged last block, 12 and 1024 take all rows at once.
        manual_seed(11);
        using var z1 = randn(6, 4, dtype: ScalarType.Float64).requires_grad_(true);
        using var z2 = randn(6, 4, dtype: ScalarType.Float64).requires_grad_(true);
        var expected = NtXentLoss.Compute(z1, z2, 0.3);
        expected.backward();
        var (loss, gradient1, gradient2) = NtXentLoss.ComputeWithGradient(z1, z2, 0.3, blockRows);
        Assert.That(loss.item<double>(), Is.EqualTo(expected.item<double>()).Within(1e-12));
        Assert.That((gradient1 - z1.grad!).abs().max().item<double>(), Is.LessThan(1e-12));
        Assert.That((gradient2 - z2.grad!).abs().max().item<double>(), Is.LessThan(1e-12));
    }

    /// <summary>Straight from the definition: rows 0..N−1 are view 1, N..2N−1 view 2; positive of i is (i + N) mod 2N.</summary>
    private static double Reference(double[][] z, double temperature)
    {
        var unit = z.Select(v => { var norm = Math.Sqrt(v.Sum(x => x * x)); return v.Select(x => x / norm).ToArray(); }).ToArray();
        int total = unit.Length, n = total / 2;
        double Similarity(int i, int k) => unit[i].Zip(unit[k], (a, b) => a * b).Sum() / temperature;
        var sum = 0.0;
        for (var i = 0; i < total; i++)
        {
            var denominator = Enumerable.Range(0, total).Where(k => k != i).Sum(k => Math.Exp(Similarity(i, k)));
            sum += -Math.Log(Math.Exp(Similarity(i, (i + n) % total)) / denominator);
        }
        return sum / total;
    }
}
