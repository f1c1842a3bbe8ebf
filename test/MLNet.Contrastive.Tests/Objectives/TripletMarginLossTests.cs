using MLNet.Contrastive.Objectives;
using MLNet.Contrastive.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Tests.Objectives;

public class TripletMarginLossTests
{
    [OneTimeSetUp]
    public void Setup() => TorchRuntime.Initialize();

    [Test]
    public void EqualsHandComputedValue()
    {
        // Image 0: views at 0° and 60°; image 1: views at 90° and 180°. Cosine distances 1 − cos:
        // d(a0, p0) = 0.5; a0's negatives at 90° and 180°: 1 and 2. Batch-hard takes 1: max(0, 0.5 − 1 + 0.8) = 0.3.
        // a1 = 90°: p = 180° → 1; negatives 0° → 1, 60° → 1 − cos 30° = 0.134: max(0, 1 − 0.134 + 0.8) = 1.666.
        // p0 = 60° as anchor: positive 0° → 0.5; negatives 90° → 0.134, 180° → 1.5: 0.5 − 0.134 + 0.8 = 1.166.
        // p1 = 180°: positive 90° → 1; negatives 0° → 2, 60° → 1.5: max(0, 1 − 1.5 + 0.8) = 0.3.
        var z1 = Unit(0, 90);
        var z2 = Unit(60, 180);
        var c30 = Math.Cos(Math.PI / 6);
        var expected = (0.3 + (1 - (1 - c30) + 0.8) + (0.5 - (1 - c30) + 0.8) + 0.3) / 4;
        using var loss = TripletMarginLoss.Compute(z1, z2, margin: 0.8, TripletMining.BatchHard);
        Assert.That(loss.item<float>(), Is.EqualTo(expected).Within(1e-5));
    }

    [TestCase(TripletMining.BatchHard, TripletDistance.Cosine)]
    [TestCase(TripletMining.SemiHard, TripletDistance.Cosine)]
    [TestCase(TripletMining.BatchHard, TripletDistance.Euclidean)]
    [TestCase(TripletMining.SemiHard, TripletDistance.Euclidean)]
    public void MatchesReferenceFormulaOnRandomInputs(TripletMining mining, TripletDistance distance)
    {
        using var generator = new Generator(9);
        using var z1 = randn(new long[] { 12, 6 }, generator: generator);
        using var z2 = randn(new long[] { 12, 6 }, generator: generator);
        using var loss = TripletMarginLoss.Compute(z1, z2, 0.3, mining, distance);
        Assert.That(loss.item<float>(), Is.EqualTo(Reference(TestData.Rows(z1).Concat(TestData.Rows(z2)).ToArray(), 0.3, mining, distance)).Within(1e-5));
    }

    [Test]
    public void GradientIsFiniteAndNonZero()
    {
        using var generator = new Generator(2);
        using var z1 = randn(new long[] { 16, 8 }, generator: generator).requires_grad_();
        using var z2 = randn(new long[] { 16, 8 }, generator: generator).requires_grad_();
        using var loss = TripletMarginLoss.Compute(z1, z2, 0.5, TripletMining.SemiHard, TripletDistance.Euclidean);
        loss.backward();
        Assert.That(z1.grad!.isfinite().all().item<bool>() && z2.grad!.isfinite().all().item<bool>(), Is.True);
        Assert.That(z1.grad!.abs().sum().item<float>(), Is.GreaterThan(1e-4));
    }

    private static Tensor Unit(params double[] degrees) =>
        tensor(degrees.SelectMany(d => new[] { (float)Math.Cos(d * Math.PI / 180), (float)Math.Sin(d * Math.PI / 180) }).ToArray(), new long[] { degrees.Length, 2 });

    /// <summary>Loops over the 2N anchors; distances on L2-normalised rows.</summary>
    private static double Reference(double[][] z, double margin, TripletMining mining, TripletDistance distance)
    {
        var unit = z.Select(v => { var norm = Math.Sqrt(v.Sum(x => x * x)); return v.Select(x => x / norm).ToArray(); }).ToArray();
        int total = unit.Length, n = total / 2;
        double D(int i, int k)
        {
            var cos = unit[i].Zip(unit[k], (a, b) => a * b).Sum();
            return distance == TripletDistance.Cosine ? 1 - cos : Math.Sqrt(Math.Max(2 - 2 * cos, 1e-12));
        }
        var sum = 0.0;
        for (var a = 0; a < total; a++)
        {
            var positive = D(a, (a + n) % total);
            var negatives = Enumerable.Range(0, total).Where(k => k % n != a % n).Select(k => D(a, k)).ToList();
            var semiHard = negatives.Where(d => d > positive).ToList();
            var negative = mining == TripletMining.BatchHard ? negatives.Min() : semiHard.Count > 0 ? semiHard.Min() : negatives.Max();
            sum += Math.Max(0, positive - negative + margin);
        }
        return sum / total;
    }
}
