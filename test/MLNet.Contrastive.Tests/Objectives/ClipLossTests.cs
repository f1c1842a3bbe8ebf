using MLNet.Contrastive.Objectives;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Objectives;

public class ClipLossTests
{
    /// <summary>CLIP's loss written out in doubles: normalise, s·cosine logits, cross-entropy by rows and by columns, averaged.</summary>
    private static double Reference(double[][] a, double[][] b, double scale)
    {
        static double[] Unit(double[] v) => v.Select(x => x / Math.Sqrt(v.Sum(y => y * y))).ToArray();
        var (ua, ub) = (a.Select(Unit).ToArray(), b.Select(Unit).ToArray());
        var n = a.Length;
        var logits = new double[n, n];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
                logits[i, j] = scale * ua[i].Zip(ub[j], (x, y) => x * y).Sum();
        double imageToText = 0, textToImage = 0;
        for (var i = 0; i < n; i++)
        {
            imageToText += -logits[i, i] + Math.Log(Enumerable.Range(0, n).Sum(j => Math.Exp(logits[i, j])));
            textToImage += -logits[i, i] + Math.Log(Enumerable.Range(0, n).Sum(j => Math.Exp(logits[j, i])));
        }
        return (imageToText / n + textToImage / n) / 2;
    }

    private static double[][] Rows(Tensor matrix) =>
        matrix.data<double>().ToArray().Chunk((int)matrix.shape[1]).ToArray();

    [Test]
    public void LossEqualsTheSymmetricCrossEntropyFormula()
    {
        manual_seed(3);
        var a = randn(5, 4, dtype: ScalarType.Float64);
        var b = randn(5, 4, dtype: ScalarType.Float64);
        var logScale = tensor(Math.Log(2.5), dtype: ScalarType.Float64);

        var loss = ClipLoss.Compute(a, b, logScale).item<double>();

        Assert.That(loss, Is.EqualTo(Reference(Rows(a), Rows(b), 2.5)).Within(1e-10));
    }

    [Test]
    public void LossIsSymmetricInTheTowersAndLowWhenPairsAlign()
    {
        manual_seed(4);
        var a = randn(6, 8, dtype: ScalarType.Float64);
        var b = randn(6, 8, dtype: ScalarType.Float64);
        var logScale = tensor(Math.Log(10.0), dtype: ScalarType.Float64);

        Assert.That(ClipLoss.Compute(a, b, logScale).item<double>(), Is.EqualTo(ClipLoss.Compute(b, a, logScale).item<double>()).Within(1e-12));
        Assert.That(ClipLoss.Compute(a, a * 3, logScale).item<double>(), Is.LessThan(ClipLoss.Compute(a, b, logScale).item<double>()));
    }

    [Test]
    public void TheLogitScaleGetsAGradientAndTheClampBoundsIt()
    {
        manual_seed(5);
        var logScale = tensor(ClipLoss.LogScale(0.07), requires_grad: true);
        ClipLoss.Compute(randn(4, 3), randn(4, 3), logScale).backward();
        Assert.That(logScale.grad, Is.Not.Null);
        Assert.That(Math.Exp(ClipLoss.LogScale(0.07)), Is.EqualTo(1 / 0.07).Within(1e-9));

        using var high = tensor(7.0);
        ClipLoss.Clamp(high);
        Assert.That(high.item<double>(), Is.EqualTo(Math.Log(100)).Within(1e-6), "logit scale at most 100");
        using var low = tensor(-2.0);
        ClipLoss.Clamp(low, maxLogitScale: 50);
        Assert.That(low.item<double>(), Is.EqualTo(0), "temperature at most 1");
    }

    [Test]
    public void MismatchedBatchesAreRefusedByName()
    {
        var error = Assert.Throws<ArgumentException>(() => ClipLoss.Compute(zeros(4, 3), zeros(5, 3), tensor(1.0)));
        Assert.That(error!.Message, Does.Contain("first tower's embeddings").And.Contain("[4, 3]").And.Contain("[5, 3]"));
    }
}
