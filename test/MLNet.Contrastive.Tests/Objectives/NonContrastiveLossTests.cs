using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Objectives;

/// <summary>BYOL, SimSiam, Barlow Twins and VICReg losses against hand-computed values and plain loops in double precision.</summary>
public class NonContrastiveLossTests
{
    private static Tensor Matrix(params float[][] rows) => tensor(rows.SelectMany(r => r).ToArray()).view(rows.Length, rows[0].Length);

    private static double Cosine(double[] a, double[] b) =>
        a.Zip(b, (x, y) => x * y).Sum() / Math.Sqrt(a.Sum(x => x * x)) / Math.Sqrt(b.Sum(x => x * x));

    [Test]
    public void ByolLossIsTwoMinusTwiceTheCosine()
    {
        // Rows: same direction (cos 1 → 0), orthogonal (cos 0 → 2), opposite (cos −1 → 4); the mean is 2.
        using var p = Matrix([2, 0], [1, 0], [0, 3]);
        using var z = Matrix([5, 0], [0, 7], [0, -1]);
        Assert.That(ByolLoss.Compute(p, z).item<float>(), Is.EqualTo(2.0).Within(1e-6));
    }

    [Test]
    public void SimSiamLossIsTheNegativeMeanCosineAndStopsTheTargetsGradient()
    {
        manual_seed(4);
        using var p = randn(6, 5).requires_grad_();
        using var z = randn(6, 5).requires_grad_();
        var loss = SimSiamLoss.Compute(p, z);
        var expected = -TestData.Rows(p.detach()).Zip(TestData.Rows(z.detach()), Cosine).Average();
        Assert.That(loss.item<float>(), Is.EqualTo(expected).Within(1e-5));
        loss.backward();
        Assert.That(p.grad is not null && p.grad.abs().sum().item<float>() > 0, Is.True);
        Assert.That(z.grad, Is.Null, "no gradient flows into the target branch");
        Assert.That(ByolLoss.Compute(p, z).item<float>(), Is.EqualTo(2 + 2 * expected).Within(1e-5));
    }

    [Test]
    public void BarlowTwinsLossMatchesTheCrossCorrelationFormula()
    {
        manual_seed(5);
        using var z1 = randn(16, 6);
        using var z2 = randn(16, 6) + 0.5 * z1;
        const double lambda = 0.2;
        var (a, b) = (Standardize(TestData.Rows(z1).ToArray()), Standardize(TestData.Rows(z2).ToArray()));
        double expected = 0;
        for (var i = 0; i < 6; i++)
            for (var j = 0; j < 6; j++)
            {
                var c = Enumerable.Range(0, 16).Sum(n => a[n][i] * b[n][j]) / 16;
                expected += i == j ? (1 - c) * (1 - c) : lambda * c * c;
            }
        Assert.That(BarlowTwinsLoss.Compute(z1, z2, lambda).item<float>(), Is.EqualTo(expected).Within(1e-4 * expected));
    }

    [Test]
    public void BarlowTwinsLossIsZeroForIdenticalDecorrelatedViews()
    {
        // Two orthogonal ±1 columns: standardised, each has correlation 1 with itself and 0 with the other.
        using var z = Matrix([1, 1], [1, -1], [-1, 1], [-1, -1]);
        Assert.That(BarlowTwinsLoss.Compute(z, z, 1.0).item<float>(), Is.EqualTo(0).Within(1e-4));
    }

    [Test]
    public void VicRegTermsMatchTheirFormulas()
    {
        manual_seed(6);
        using var z1 = randn(12, 5) * 0.7;
        using var z2 = randn(12, 5) * 1.3;
        var (a, b) = (TestData.Rows(z1).ToArray(), TestData.Rows(z2).ToArray());
        var invariance = a.Zip(b, (x, y) => x.Zip(y, (u, v) => (u - v) * (u - v)).Sum()).Sum() / (12 * 5);
        double Variance(double[][] rows) => Enumerable.Range(0, 5).Average(d =>
        {
            var mean = rows.Average(r => r[d]);
            var std = Math.Sqrt(rows.Sum(r => (r[d] - mean) * (r[d] - mean)) / 11 + 1e-4);
            return Math.Max(0, 1 - std);
        });
        double Covariance(double[][] rows)
        {
            var means = Enumerable.Range(0, 5).Select(d => rows.Average(r => r[d])).ToArray();
            double sum = 0;
            for (var i = 0; i < 5; i++)
                for (var j = 0; j < 5; j++)
                    if (i != j)
                    {
                        var c = rows.Sum(r => (r[i] - means[i]) * (r[j] - means[j])) / 11;
                        sum += c * c;
                    }
            return sum / 5;
        }
        var variance = (Variance(a) + Variance(b)) / 2;
        var covariance = Covariance(a) + Covariance(b);
        var (loss, inv, var, cov) = VicRegLoss.Terms(z1, z2);
        Assert.That(inv.item<float>(), Is.EqualTo(invariance).Within(1e-5));
        Assert.That(var.item<float>(), Is.EqualTo(variance).Within(1e-5));
        Assert.That(cov.item<float>(), Is.EqualTo(covariance).Within(1e-5));
        Assert.That(loss.item<float>(), Is.EqualTo(25 * invariance + 25 * variance + covariance).Within(1e-4));
    }

    [Test]
    public void VicRegVarianceTermPunishesACollapsedBatch()
    {
        using var collapsed = ones(8, 4);
        var (_, invariance, variance, covariance) = VicRegLoss.Terms(collapsed, collapsed);
        Assert.That(invariance.item<float>(), Is.EqualTo(0));
        Assert.That(variance.item<float>(), Is.EqualTo(1 - 0.01).Within(1e-6), "std is 0, so each dimension's hinge is 1 − √1e-4");
        Assert.That(covariance.item<float>(), Is.EqualTo(0));
    }

    private static double[][] Standardize(double[][] rows)
    {
        var d = rows[0].Length;
        var mean = Enumerable.Range(0, d).Select(j => rows.Average(r => r[j])).ToArray();
        var std = Enumerable.Range(0, d).Select(j => Math.Sqrt(rows.Average(r => (r[j] - mean[j]) * (r[j] - mean[j])) + 1e-5)).ToArray();
        return rows.Select(r => r.Select((v, j) => (v - mean[j]) / std[j]).ToArray()).ToArray();
    }
}
