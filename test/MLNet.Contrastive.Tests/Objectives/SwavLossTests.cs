using MLNet.Contrastive.Objectives;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Tests.Objectives;

public class SwavLossTests
{
    /// <summary>SwAV's distributed_sinkhorn on one process, written out in doubles over the K × B transposed matrix.</summary>
    private static double[][] ReferenceCodes(double[][] scores, double epsilon, int iterations)
    {
        int b = scores.Length, k = scores[0].Length;
        var q = new double[k, b];
        for (var i = 0; i < b; i++)
            for (var j = 0; j < k; j++) q[j, i] = Math.Exp(scores[i][j] / epsilon);
        void Scale(Func<int, int, bool> inGroup, int groups, bool byRow, double target)
        {
            for (var g = 0; g < groups; g++)
            {
                double sum = 0;
                for (var j = 0; j < k; j++) for (var i = 0; i < b; i++) if (inGroup(byRow ? j : i, g)) sum += q[j, i];
                for (var j = 0; j < k; j++) for (var i = 0; i < b; i++) if (inGroup(byRow ? j : i, g)) q[j, i] *= target / sum;
            }
        }
        Scale((_, _) => true, 1, true, 1);
        for (var t = 0; t < iterations; t++)
        {
            Scale((row, g) => row == g, k, true, 1.0 / k);       // each prototype's total → 1 / K
            Scale((column, g) => column == g, b, false, 1.0 / b); // each sample's total → 1 / B
        }
        return Enumerable.Range(0, b).Select(i => Enumerable.Range(0, k).Select(j => q[j, i] * b).ToArray()).ToArray();
    }

    [Test]
    public void SinkhornKnoppMatchesSwavsAlgorithmAndItsMarginals()
    {
        manual_seed(3);
        using var scores = F.normalize(randn(24, 8), dim: 1).mm(F.normalize(randn(6, 8), dim: 1).t());   // cosines [B = 24, K = 6]
        var codes = SwavLoss.SinkhornKnopp(scores, 0.05, 3);
        var expected = ReferenceCodes(TestData.Rows(scores).ToArray(), 0.05, 3);
        var actual = TestData.Rows(codes).ToArray();
        for (var i = 0; i < expected.Length; i++) Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-5), $"row {i}");

        // Rows are assignments (sum 1); with enough iterations every prototype gets B / K of the batch.
        Assert.That(TestData.Rows(codes.sum(1).unsqueeze(1)).Select(r => r[0]), Is.All.EqualTo(1).Within(1e-4));
        var converged = SwavLoss.SinkhornKnopp(scores, 0.05, 200);
        Assert.That(TestData.Rows(converged.sum(1).unsqueeze(1)).Select(r => r[0]), Is.All.EqualTo(1).Within(1e-4));
        Assert.That(TestData.Rows(converged.sum(0, keepdim: false).unsqueeze(1)).Select(r => r[0]), Is.All.EqualTo(24.0 / 6).Within(1e-4));
    }

    [Test]
    public void SinkhornKnoppStaysFiniteAtSmallEpsilon()
    {
        // exp(1 / 0.01) overflows float32; the maximum is subtracted first.
        using var scores = tensor(new float[] { 1, -1, -1, 1, 0.9f, 0.8f }).view(3, 2);
        var codes = SwavLoss.SinkhornKnopp(scores, 0.01, 3);
        Assert.That(codes.isfinite().all().item<bool>(), Is.True);
        Assert.That(codes[0, 0].item<float>(), Is.GreaterThan(0.99f));
    }

    [Test]
    public void SwappedPredictionMatchesTheCrossEntropyFormula()
    {
        manual_seed(5);
        var codes = new[] { softmax(randn(4, 3), 1), softmax(randn(4, 3), 1) };
        var scores = new[] { randn(4, 3), randn(4, 3), randn(4, 3) };   // two global crops and one small one
        const double tau = 0.1;
        double CrossEntropy(Tensor q, Tensor s) =>
            TestData.Rows(q).Zip(TestData.Rows(s), (qr, sr) =>
            {
                var logZ = Math.Log(sr.Sum(v => Math.Exp(v / tau)));
                return -qr.Zip(sr, (qv, sv) => qv * (sv / tau - logZ)).Sum();
            }).Average();
        // Code 0 predicted from crops 1 and 2, code 1 from crops 0 and 2: four pairs.
        var expected = (CrossEntropy(codes[0], scores[1]) + CrossEntropy(codes[0], scores[2]) + CrossEntropy(codes[1], scores[0]) + CrossEntropy(codes[1], scores[2])) / 4;
        Assert.That(SwavLoss.SwappedPrediction(codes, scores, tau).item<float>(), Is.EqualTo(expected).Within(1e-4));
    }

    [Test]
    public void CodesGetNoGradient()
    {
        var codes = new[] { softmax(randn(4, 3), 1).requires_grad_(true), softmax(randn(4, 3), 1) };
        var scores = new[] { randn(4, 3).requires_grad_(true), randn(4, 3) };
        SwavLoss.SwappedPrediction(codes, scores, 0.1).backward();
        Assert.That(codes[0].grad, Is.Null);
        Assert.That(scores[0].grad, Is.Not.Null);
    }
}
