using MLNet.Contrastive.Data;
using MLNet.Contrastive.Metrics;

namespace MLNet.Contrastive.Selection;

/// <summary>
/// Groups of near-identical images: rows whose centred embeddings' cosine similarity reaches a threshold, joined
/// transitively (a union–find over every such pair, found by exact search). The mean embedding is subtracted first: an
/// encoder's pooled features after a ReLU all lie in one orthant, where any two images of a set have a cosine near 1.
/// </summary>
public static class NearDuplicates
{
    /// <summary>The default cosine-similarity threshold of <see cref="Find(Embeddings, double)"/>.</summary>
    public const double DefaultThreshold = 0.9;

    /// <summary>
    /// The groups of two or more rows joined by pairs of (centred) similarity ≥ <paramref name="threshold"/>, each ascending,
    /// ordered by their first row.
    /// </summary>
    public static IReadOnlyList<int[]> Find(Embeddings embeddings, double threshold = DefaultThreshold) => Find(embeddings, threshold, null);

    /// <summary>
    /// As <see cref="Find(Embeddings, double)"/>, and a pair counts only when the two images (rows of
    /// <paramref name="images"/>, as read at the encoder's size) are copies of one another: an encoder trained to ignore
    /// crops and colour puts distinct images of one kind as close as copies. Their pixels must correlate at
    /// <paramref name="pixelThreshold"/> or more (Pearson), and their layouts — the mean of each cell of a 7 × 7 grid, per
    /// channel — differ nowhere by more than <paramref name="layoutTolerance"/> of the pixel range. Resizing and JPEG
    /// re-encoding change pixels (a resized copy's correlation fell to 0.91) but not the coarse layout; two photos of
    /// one kind of garment correlate as well (0.97–0.99) but differ somewhere in the layout.
    /// </summary>
    public static IReadOnlyList<int[]> Find(Embeddings embeddings, ImageStore images, double threshold = DefaultThreshold,
        double pixelThreshold = DefaultPixelThreshold, double layoutTolerance = DefaultLayoutTolerance)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count != embeddings.Count) throw new ArgumentException($"images: {images.Count:N0} images for {embeddings.Count:N0} embeddings.", nameof(images));
        if (pixelThreshold is < -1 or > 1 || double.IsNaN(pixelThreshold)) throw new ArgumentOutOfRangeException(nameof(pixelThreshold), pixelThreshold, "pixelThreshold: a correlation in [-1, 1].");
        if (!(layoutTolerance >= 0)) throw new ArgumentOutOfRangeException(nameof(layoutTolerance), layoutTolerance, "layoutTolerance: a fraction of the pixel range, 0 or more.");
        var layouts = Layouts(images);
        var cells = layouts.Length / images.Count;
        var tolerance = (float)layoutTolerance;
        return Find(embeddings, threshold, (i, j) =>
            SameLayout(layouts.AsSpan(i * cells, cells), layouts.AsSpan(j * cells, cells), tolerance)
            && PixelCorrelation(images.Image(i), images.Image(j)) >= pixelThreshold);
    }

    /// <summary>The default pixel correlation of <see cref="Find(Embeddings, ImageStore, double, double, double)"/>.</summary>
    public const double DefaultPixelThreshold = 0.9;

    /// <summary>The default largest difference of two copies' 7 × 7 layouts, a fraction of the pixel range (<see cref="Find(Embeddings, ImageStore, double, double, double)"/>).</summary>
    public const double DefaultLayoutTolerance = 0.05;

    /// <summary>Cells per side of the layout grid.</summary>
    private const int Grid = 7;

    /// <summary>Every image's layout: the mean of each of the 7 × 7 cells, per channel, in [0, 1]; [N, C·7·7] row-major.</summary>
    internal static float[] Layouts(ImageStore images)
    {
        var (c, h, w) = (images.Channels, images.Height, images.Width);
        var cells = c * Grid * Grid;
        var layouts = new float[(long)images.Count * cells];
        for (var n = 0; n < images.Count; n++)
        {
            var pixels = images.Image(n);
            for (var k = 0; k < c; k++)
                for (var gy = 0; gy < Grid; gy++)
                    for (var gx = 0; gx < Grid; gx++)
                    {
                        var (y0, y1, x0, x1) = (gy * h / Grid, Math.Max((gy + 1) * h / Grid, gy * h / Grid + 1), gx * w / Grid, Math.Max((gx + 1) * w / Grid, gx * w / Grid + 1));
                        long sum = 0;
                        for (var y = y0; y < y1; y++)
                            for (var x = x0; x < x1; x++) sum += pixels[(k * h + y) * w + x];
                        layouts[(long)n * cells + (k * Grid + gy) * Grid + gx] = sum / (255f * (y1 - y0) * (x1 - x0));
                    }
        }
        return layouts;
    }

    private static bool SameLayout(ReadOnlySpan<float> a, ReadOnlySpan<float> b, float tolerance)
    {
        for (var i = 0; i < a.Length; i++)
            if (Math.Abs(a[i] - b[i]) > tolerance) return false;
        return true;
    }

    private static IReadOnlyList<int[]> Find(Embeddings embeddings, double threshold, Func<int, int, bool>? confirm)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        if (threshold is <= -1 or > 1) throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "threshold: a cosine similarity in (-1, 1].");
        var n = embeddings.Count;
        var values = VectorMath.Normalized(Centred(embeddings));
        var parent = Enumerable.Range(0, n).ToArray();
        var limit = (float)threshold;
        ExactNeighbours.SimilarityBlocks(values, n, values, n, embeddings.Dimension, (start, rows, similarities) =>
        {
            for (var r = 0; r < rows; r++)
            {
                var i = start + r;
                var row = similarities.AsSpan(r * n, n);
                for (var j = i + 1; j < n; j++)
                    if (row[j] >= limit && (confirm is null || confirm(i, j))) parent[Root(i)] = Root(j);
            }
        });
        return Enumerable.Range(0, n).GroupBy(Root).Where(g => g.Count() > 1).Select(g => g.Order().ToArray()).OrderBy(g => g[0]).ToList();

        int Root(int i)
        {
            while (parent[i] != i) i = parent[i] = parent[parent[i]];
            return i;
        }
    }

    /// <summary>Pearson's correlation of two images' pixel values (1 when both are flat).</summary>
    internal static double PixelCorrelation(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
        for (var p = 0; p < a.Length; p++)
        {
            double x = a[p], y = b[p];
            sa += x; sb += y; saa += x * x; sbb += y * y; sab += x * y;
        }
        var n = a.Length;
        var (va, vb) = (saa - sa * sa / n, sbb - sb * sb / n);
        return va <= 0 || vb <= 0 ? (va <= 0 && vb <= 0 ? 1 : 0) : (sab - sa * sb / n) / Math.Sqrt(va * vb);
    }

    /// <summary>The rows minus their mean row.</summary>
    internal static Embeddings Centred(Embeddings embeddings)
    {
        var (n, d) = (embeddings.Count, embeddings.Dimension);
        var mean = new double[d];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < d; j++) mean[j] += embeddings.Values[i * d + j];
        var values = new float[embeddings.Values.Length];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < d; j++) values[i * d + j] = (float)(embeddings.Values[i * d + j] - mean[j] / n);
        return new Embeddings(values, n, d, embeddings.Labels);
    }
}
