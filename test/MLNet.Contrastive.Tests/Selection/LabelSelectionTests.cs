using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Selection;

namespace MLNet.Contrastive.Tests.Selection;

public class LabelSelectionTests
{
    /// <summary>Raw pixels of 1,500 Fashion-MNIST images: real, unlabelled-looking embeddings.</summary>
    private static readonly Lazy<Embeddings> Pixels = new(() => Embeddings.FromPixels(TestData.SampleTrain(1500)));

    private static readonly int[] EarlierRound = Enumerable.Range(0, 40).Select(i => i * 37).ToArray();

    /// <summary>Unit 2-D points at the given angles (degrees).</summary>
    private static Embeddings Circle(params double[] degrees) =>
        new(degrees.SelectMany(a => new[] { (float)Math.Cos(a * Math.PI / 180), (float)Math.Sin(a * Math.PI / 180) }).ToArray(), degrees.Length, 2, null);

    /// <summary>Offsets of a cluster's 11 points from its centre (index 5), densest in the middle.</summary>
    private static readonly double[] Offsets = [-8, -4, -2, -1, -0.5, 0, 0.5, 1, 2, 4, 8];

    /// <summary>Three tight clusters around 0°, 120° and 240° (point 5 + 11c at the centre), and an outlier at 60° last when asked.</summary>
    private static Embeddings ThreeClusters(bool outlier = false) =>
        Circle([.. new[] { 0.0, 120, 240 }.SelectMany(c => Offsets.Select(o => c + o)), .. outlier ? new[] { 60.0 } : []]);

    private static int[] Select(Embeddings embeddings, SelectionStrategy strategy, int budget, int seed = 0, IReadOnlyCollection<int>? labelled = null) =>
        LabelSelection.Select(embeddings, new LabelSelectionOptions { Strategy = strategy, Budget = budget, Seed = seed, Labelled = labelled });

    [TestCase(SelectionStrategy.Random)]
    [TestCase(SelectionStrategy.KMeans)]
    [TestCase(SelectionStrategy.TypiClust)]
    [TestCase(SelectionStrategy.ProbCover)]
    [TestCase(SelectionStrategy.KCenter)]
    public void EachStrategyChoosesTheBudgetOfNewDistinctRowsAndRepeatsForASeed(SelectionStrategy strategy)
    {
        var chosen = Select(Pixels.Value, strategy, 25, seed: 3, labelled: EarlierRound);
        Assert.That(chosen, Has.Length.EqualTo(25));
        Assert.That(chosen, Is.Unique);
        Assert.That(chosen, Has.All.InRange(0, Pixels.Value.Count - 1));
        Assert.That(chosen.Intersect(EarlierRound), Is.Empty);
        Assert.That(Select(Pixels.Value, strategy, 25, seed: 3, labelled: EarlierRound), Is.EqualTo(chosen));
        // And with no labels at all (the first round).
        Assert.That(Select(Pixels.Value, strategy, 10, seed: 3), Has.Length.EqualTo(10).And.Unique);
    }

    [Test]
    public void KCenterCoversTighterThanRandom()
    {
        var kCenter = LabelSelection.CoveringRadius(Pixels.Value, Select(Pixels.Value, SelectionStrategy.KCenter, 30));
        var random = Enumerable.Range(0, 3).Select(seed => LabelSelection.CoveringRadius(Pixels.Value, Select(Pixels.Value, SelectionStrategy.Random, 30, seed))).Min();
        Assert.That(kCenter, Is.LessThanOrEqualTo(random));
    }

    [Test]
    public void ProbCoverCoversMoreThanRandomAtItsRadius()
    {
        var options = new LabelSelectionOptions { Strategy = SelectionStrategy.ProbCover, Budget = 20 };
        var delta = ProbCoverSelection.PurityDelta(SelectionInput.Create(Pixels.Value, options));
        Assert.That(delta, Is.InRange(0.01, 2.0));
        var probCover = LabelSelection.Coverage(Pixels.Value, LabelSelection.Select(Pixels.Value, options), delta);
        var random = Enumerable.Range(0, 3).Select(seed => LabelSelection.Coverage(Pixels.Value, Select(Pixels.Value, SelectionStrategy.Random, 20, seed), delta)).Max();
        Assert.That(probCover, Is.GreaterThanOrEqualTo(random));
    }

    [Test]
    public void KCenterTakesTheFarthestPointEachTime()
    {
        var points = Circle(0, 30, 60, 90, 180);
        // From 0°: 180° is farthest; then 90° (90° from both) beats 60° (60° from 0°).
        Assert.That(Select(points, SelectionStrategy.KCenter, 2, labelled: [0]), Is.EqualTo(new[] { 4, 3 }));
    }

    [Test]
    public void KMeansTakesTheCentreOfEachCluster()
    {
        var chosen = Select(ThreeClusters(), SelectionStrategy.KMeans, 3);
        Assert.That(chosen.Order(), Is.EqualTo(new[] { 5, 16, 27 }));
    }

    /// <summary>
    /// Rows (10, u, c): a nuisance u spread over [−3, 3] in 25 steps and a class c = ±0.5, the class's direction holding a
    /// twelfth of the nuisance's variance (the way a brightness or size direction can dwarf a class's in real embeddings).
    /// </summary>
    private static Embeddings NuisanceAndClass() =>
        new([.. Enumerable.Range(0, 50).SelectMany(i => new[] { 10f, -3f + 0.25f * (i / 2), i % 2 == 0 ? -0.5f : 0.5f })], 50, 3, null);

    [Test]
    public void WhitenedKMeansFindsTheClassesUnderALargerNuisance()
    {
        var points = NuisanceAndClass();
        for (var seed = 0; seed < 5; seed++)
        {
            var whitened = LabelSelection.Select(points, new LabelSelectionOptions { Strategy = SelectionStrategy.KMeans, Budget = 2, Seed = seed });
            Assert.That(whitened.Select(i => i % 2).Order(), Is.EqualTo(new[] { 0, 1 }), $"seed {seed}: one row of each class");
            // Unwhitened, the two clusters are the nuisance's two halves: one centre at u < 0, one at u > 0.
            var plain = LabelSelection.Select(points, new LabelSelectionOptions { Strategy = SelectionStrategy.KMeans, Budget = 2, Seed = seed, WhitenedComponents = 0 });
            Assert.That(plain.Select(i => Math.Sign(points.Row(i)[1])).Order(), Is.EqualTo(new[] { -1, 1 }), $"seed {seed}: split by the nuisance");
        }
    }

    [Test]
    public void WhiteningKeepsTheDataRankAndGivesUnitRowsOfEqualSpread()
    {
        // 200 rows of rank 2 in 5 dimensions, one direction 20 times the other's spread.
        var random = new Random(1);
        var rows = Enumerable.Range(0, 200).SelectMany(_ =>
        {
            var (a, b) = (20 * (random.NextDouble() - 0.5), random.NextDouble() - 0.5);
            return new[] { (float)(3 + a), (float)b, (float)(a - b), 0f, (float)(2 * b) };
        }).ToArray();
        var (values, dimension) = Whitening.Whiten(rows, 200, 5, components: 50);
        Assert.That(dimension, Is.EqualTo(2), "the zero-variance directions are dropped");
        for (var i = 0; i < 200; i++) Assert.That(VectorMath.Dot(values.AsSpan(2 * i, 2), values.AsSpan(2 * i, 2)), Is.EqualTo(1f).Within(1e-5f));
        // Whitened, both kept directions spread alike: each holds about half of the unit rows' squared length.
        var first = Enumerable.Range(0, 200).Average(i => values[2 * i] * values[2 * i]);
        Assert.That(first, Is.InRange(0.35, 0.65));
        Assert.That(Whitening.Whiten(rows, 200, 5, components: 1).Dimension, Is.EqualTo(1));
        // Blocks of 7 rows (the covariance summed block by block) give what one block gives.
        var (blocked, blockedDimension) = Whitening.Whiten(rows, 200, 5, components: 50, blockRows: 7);
        Assert.That(blockedDimension, Is.EqualTo(2));
        Assert.That(blocked.Zip(values, (a, b) => Math.Abs(a - b)).Max(), Is.LessThan(1e-5f));
    }

    [Test]
    public void TypiClustTakesOneTypicalPointPerClusterAndNeverTheOutlier()
    {
        var points = ThreeClusters(outlier: true);
        var chosen = Select(points, SelectionStrategy.TypiClust, 3);
        Assert.That(chosen.Select(i => i / 11).Order(), Is.EqualTo(new[] { 0, 1, 2 }), "one per cluster");
        // The most typical point of each cluster is in its dense middle (the centre or a point 0.5° from it), never an edge.
        Assert.That(chosen.Select(i => Math.Abs(i % 11 - 5)), Has.All.LessThanOrEqualTo(1));
        // In a second round the clusters already labelled come last: a fourth pick still avoids the outlier.
        Assert.That(Select(points, SelectionStrategy.TypiClust, 1, labelled: chosen), Has.None.EqualTo(33));
    }

    [Test]
    public void TypiClustOnRealEmbeddingsPicksFromDistinctClusters()
    {
        var input = SelectionInput.Create(Pixels.Value, new LabelSelectionOptions { Budget = 12 });
        var (assignment, _) = KMeansClustering.Cluster(input.Values, input.Count, input.Dimension, 12, seed: 0);
        var chosen = Select(Pixels.Value, SelectionStrategy.TypiClust, 12);
        Assert.That(chosen.Select(i => assignment[i]), Is.Unique);
    }

    [Test]
    public void TheCatalogSelectsAsTheLibraryDoes()
    {
        var catalog = MLNet.Contrastive.Stages.MLContextExtensions.SelfSupervised(new Microsoft.ML.MLContext());
        Assert.That(catalog.SelectForLabeling(Pixels.Value, 8, SelectionStrategy.KCenter, EarlierRound, seed: 2),
            Is.EqualTo(Select(Pixels.Value, SelectionStrategy.KCenter, 8, seed: 2, labelled: EarlierRound)));
    }

    [Test]
    public void BadInputIsNamed()
    {
        Assert.That(() => Select(Pixels.Value, SelectionStrategy.Random, 0), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("Budget"));
        Assert.That(() => Select(Circle(0, 90), SelectionStrategy.Random, 2, labelled: [1]), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("unlabelled"));
        Assert.That(() => Select(Circle(0, 90), SelectionStrategy.Random, 1, labelled: [5]), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("Labelled"));
        Assert.That(() => LabelSelection.Select(Pixels.Value, new LabelSelectionOptions { Strategy = SelectionStrategy.KMeans, Budget = 3, WhitenedComponents = -1 }),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("WhitenedComponents"));
        var withNaN = new Embeddings([1f, 0f, 0f, 1f, float.NaN, 1f], 3, 2, null);
        Assert.That(() => Select(withNaN, SelectionStrategy.KMeans, 1), Throws.ArgumentException.With.Message.Contains("row 2 holds a non-finite value"));
        Assert.That(() => LabelSelection.ParseStrategy("best"), Throws.ArgumentException.With.Message.Contains("typiclust"));
        Assert.That(LabelSelection.ParseStrategy("K-Center"), Is.EqualTo(SelectionStrategy.KCenter));
    }
}

/// <summary>The select command's reading of an earlier round (--labelled).</summary>
public class SelectCommandTests
{
    [Test]
    public void LabelledFilesNameIdxRowsByNumberAndFolderImagesByPath()
    {
        using var folder = TestData.NewFolder();
        var idx = TestData.TrainImages;
        var store = TestData.SampleTrain(50);
        var numbers = Path.Combine(folder.Path, "round1.txt");
        File.WriteAllLines(numbers, ["3", "", "17", "3"]);
        Assert.That(MLNet.Contrastive.Cli.Commands.SelectCommand.ReadLabelled(numbers, store, idx), Is.EqualTo(new[] { 3, 17 }));
        File.WriteAllLines(numbers, ["50"]);
        Assert.That(() => MLNet.Contrastive.Cli.Commands.SelectCommand.ReadLabelled(numbers, store, idx),
            Throws.ArgumentException.With.Message.Contains("'50' is not an image number below 50"));

        var images = Path.Combine(folder.Path, "images");
        for (var i = 0; i < 3; i++) TestData.WriteImage(Path.Combine(images, $"im{i}.png"), 8, 8, i, gray: true);
        var files = MLNet.Contrastive.Data.ImageStore.Load(images, null, new MLNet.Contrastive.Data.ImageLoadOptions { Channels = 1, Height = 8, Width = 8 });
        var paths = Path.Combine(folder.Path, "round1-paths.txt");
        File.WriteAllLines(paths, [files.Sources[2], "im0.png"]);
        Assert.That(MLNet.Contrastive.Cli.Commands.SelectCommand.ReadLabelled(paths, files, images), Is.EqualTo(new[] { 2, 0 }));
        File.WriteAllLines(paths, ["other.png"]);
        Assert.That(() => MLNet.Contrastive.Cli.Commands.SelectCommand.ReadLabelled(paths, files, images),
            Throws.ArgumentException.With.Message.Contains("'other.png' is not one of the images"));
    }
}
