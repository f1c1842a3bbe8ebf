using MLNet.Contrastive.Metrics;
using MLNet.Contrastive.Selection;

namespace MLNet.Contrastive.Tests.Selection;

public class SimilarityTests
{
    private const int Side = 28;

    /// <summary>Raw pixels of <paramref name="count"/> Fashion-MNIST images, [count][784] in [0, 1].</summary>
    private static float[][] Images(int count)
    {
        var pixels = Embeddings.FromPixels(TestData.SampleTrain(count));
        return Enumerable.Range(0, count).Select(i => pixels.Row(i).ToArray()).ToArray();
    }

    private static Embeddings Stack(IReadOnlyList<float[]> rows) => new(rows.SelectMany(r => r).ToArray(), rows.Count, rows[0].Length, null);

    /// <summary>
    /// Resampled: 60 % of each pixel and 40 % of its four neighbours' mean — the blur an image saved at another size
    /// and read back at 28 px keeps (halving the resolution instead is a different image to pixels).
    /// </summary>
    private static float[] Resized(float[] image)
    {
        float At(int y, int x) => image[Math.Clamp(y, 0, Side - 1) * Side + Math.Clamp(x, 0, Side - 1)];
        var result = new float[image.Length];
        for (var y = 0; y < Side; y++)
            for (var x = 0; x < Side; x++)
                result[y * Side + x] = 0.6f * At(y, x) + 0.1f * (At(y - 1, x) + At(y + 1, x) + At(y, x - 1) + At(y, x + 1));
        return result;
    }

    /// <summary>Quantised to 16 levels with ±2/255 noise: what a lossy re-encoding leaves.</summary>
    private static float[] Reencoded(float[] image, int seed)
    {
        var random = new Random(seed);
        return image.Select(v => Math.Clamp(MathF.Round(v * 15) / 15 + (random.NextSingle() - 0.5f) * 4 / 255, 0, 1)).ToArray();
    }

    private static double Cosine(float[] a, float[] b) =>
        a.Zip(b, (x, y) => (double)x * y).Sum() / Math.Sqrt(a.Sum(x => (double)x * x) * b.Sum(x => (double)x * x));

    [Test]
    public void PlantedExactResizedAndReencodedCopiesAreGroupedWithTheirOriginal()
    {
        var originals = Images(800);
        var rows = originals.ToList();
        var planted = new List<(int Original, int Copy)>();
        for (var i = 0; i < 30; i++)
        {
            var source = i * 25;
            rows.Add(i % 3 == 0 ? (float[])originals[source].Clone() : i % 3 == 1 ? Resized(originals[source]) : Reencoded(originals[source], i));
            planted.Add((source, rows.Count - 1));
        }
        TestContext.Out.WriteLine($"least cosine of a planted pair: {planted.Min(p => Cosine(rows[p.Original], rows[p.Copy])):F4}");
        var groups = NearDuplicates.Find(Stack(rows), threshold: 0.985);
        var groupOf = groups.SelectMany((g, n) => g.Select(i => (i, n))).ToDictionary(p => p.i, p => p.n);
        Assert.That(planted.All(p => groupOf.TryGetValue(p.Original, out var a) && groupOf.TryGetValue(p.Copy, out var b) && a == b), "every copy found with its original");
        // Few originals are that close to another original: the groups are mostly the planted pairs.
        var extra = groups.Sum(g => g.Length) - 2 * planted.Count;
        TestContext.Out.WriteLine($"{groups.Count} groups, {extra} images beyond the planted pairs");
        Assert.That(extra, Is.LessThan(originals.Length / 20));
        Assert.That(NearDuplicates.Find(Stack(originals.Take(5).ToList()), threshold: 1.0), Is.Empty);
    }

    [Test]
    public void PixelsConfirmWhatTheEmbeddingsSuggest()
    {
        var store = TestData.SampleTrain(4);
        var pixels = store.Images(0, 4).ToArray();
        // Image 2: image 0 with a little noise (a re-encoded copy); image 1 stays a different image.
        var random = new Random(0);
        for (var p = 0; p < 784; p++) pixels[2 * 784 + p] = (byte)Math.Clamp(pixels[p] + random.Next(-3, 4), 0, 255);
        var images = new MLNet.Contrastive.Data.ImageStore(pixels, 1, 28, 28, null, null, ["a", "b", "c", "d"], []);
        // An encoder blind to the difference: the same embedding for the first three (the fourth keeps the mean at zero).
        var same = new Embeddings([1, 0, 1, 0, 1, 0, -3, 0], 4, 2, null);
        Assert.That(NearDuplicates.Find(same, threshold: 0.95), Is.EqualTo(new[] { new[] { 0, 1, 2 } }));
        Assert.That(NearDuplicates.Find(same, images, threshold: 0.95), Is.EqualTo(new[] { new[] { 0, 2 } }));
        Assert.That(NearDuplicates.PixelCorrelation(images.Image(0), images.Image(0)), Is.EqualTo(1.0).Within(1e-12));
    }

    [Test]
    public void TheLayoutTellsACopyFromAnotherPhotoOfTheSameKind()
    {
        // Among 1,500 real images, the two distinct ones whose pixels correlate most while their 7 × 7 layouts differ: two
        // photos of one kind of garment, which a pixel correlation alone would call copies.
        var store = TestData.SampleTrain(1500);
        var layouts = NearDuplicates.Layouts(store);
        var cells = layouts.Length / store.Count;
        double LayoutDifference(int i, int j) => Enumerable.Range(0, cells).Max(k => Math.Abs(layouts[i * cells + k] - layouts[j * cells + k]));
        var (a, b, correlation) = (0, 0, -1.0);
        for (var i = 0; i < store.Count; i++)
            for (var j = i + 1; j < store.Count; j++)
                if (NearDuplicates.PixelCorrelation(store.Image(i), store.Image(j)) is var c && c > correlation && LayoutDifference(i, j) > NearDuplicates.DefaultLayoutTolerance)
                    (a, b, correlation) = (i, j, c);
        TestContext.Out.WriteLine($"images {a} and {b}: pixel correlation {correlation:F4}, layout difference {LayoutDifference(a, b):F3}");
        Assert.That(correlation, Is.GreaterThan(0.97));

        // A resampled copy of image a: each pixel halfway to the mean of its 3 × 3 neighbourhood, about what resizing to
        // 42 px and back (bilinear) leaves.
        var source = store.Image(a).ToArray();
        var copy = new byte[784];
        for (var y = 0; y < 28; y++)
            for (var x = 0; x < 28; x++)
            {
                var (sum, count) = (0, 0);
                for (var dy = -1; dy <= 1; dy++)
                    for (var dx = -1; dx <= 1; dx++)
                        if (y + dy is >= 0 and < 28 && x + dx is >= 0 and < 28) (sum, count) = (sum + source[(y + dy) * 28 + x + dx], count + 1);
                copy[y * 28 + x] = (byte)Math.Round((source[y * 28 + x] + (double)sum / count) / 2);
            }
        var images = new MLNet.Contrastive.Data.ImageStore([.. source, .. store.Image(b), .. copy, .. store.Image(Enumerable.Range(0, 3).First(i => i != a && i != b))], 1, 28, 28, null, null, ["a", "b", "copy", "other"], []);
        var copyLayout = NearDuplicates.Layouts(images)[(2 * cells)..(3 * cells)];
        TestContext.Out.WriteLine($"the copy: pixel correlation {NearDuplicates.PixelCorrelation(source, copy):F4}, " +
            $"layout difference {Enumerable.Range(0, cells).Max(k => Math.Abs(layouts[a * cells + k] - copyLayout[k])):F3}");
        var same = new Embeddings([1, 0, 1, 0, 1, 0, -3, 0], 4, 2, null);
        Assert.That(NearDuplicates.Find(same, images, threshold: 0.95), Is.EqualTo(new[] { new[] { 0, 2 } }));
        // Without the layout check (any difference allowed) the other photo joins the group.
        Assert.That(NearDuplicates.Find(same, images, threshold: 0.95, layoutTolerance: 1), Is.EqualTo(new[] { new[] { 0, 1, 2 } }));
        Assert.That(() => NearDuplicates.Find(same, images, layoutTolerance: double.NaN), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("layoutTolerance"));
        Assert.That(() => NearDuplicates.Find(same, images, pixelThreshold: double.NaN), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("pixelThreshold"));
    }

    [Test]
    public void TheIndexFindsWhatExactSearchFindsAndSurvivesASaveAndOpen()
    {
        var rows = Images(3000);
        var embeddings = Stack(rows);
        var queries = Stack(Enumerable.Range(0, 100).Select(i => rows[i * 29]).ToList());
        var exact = SimilarityIndex.Exact(embeddings, queries, 10);
        using var folder = TestData.NewFolder();
        int[][] found;
        using (var index = SimilarityIndex.Build(embeddings, Enumerable.Range(0, rows.Length).Select(i => $"image{i}.png").ToList()))
        {
            found = Enumerable.Range(0, queries.Count).Select(q => index.Search(queries.Row(q), 10).Rows).ToArray();
            index.Save(folder.Path);
        }
        var recall = found.Zip(exact, (a, e) => a.Intersect(e).Count()).Sum() / (10.0 * queries.Count);
        TestContext.Out.WriteLine($"recall@10 = {recall:F3}");
        Assert.That(recall, Is.GreaterThanOrEqualTo(0.95));
        // Each query is in the index: it is its own nearest neighbour, at similarity 1.
        Assert.That(found.Select((f, q) => f[0] == q * 29), Has.All.True);

        using var opened = SimilarityIndex.Open(folder.Path);
        Assert.That((opened.Count, opened.Dimension, opened.Sources[7]), Is.EqualTo((3000, 784, "image7.png")));
        var (again, similarities) = opened.Search(queries.Row(3), 10);
        Assert.That(again, Is.EqualTo(found[3]));
        Assert.That(similarities[0], Is.EqualTo(1f).Within(1e-4));
        Assert.That(() => opened.Search(new float[5], 10), Throws.ArgumentException.With.Message.Contains("784"));
        Assert.That(() => SimilarityIndex.Open(Path.Combine(folder.Path, "missing")), Throws.InstanceOf<FileNotFoundException>());
    }
}
