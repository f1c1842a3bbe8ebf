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
    public const double DefaultThreshold = 0.95;

    /// <summary>
    /// The groups of two or more rows joined by pairs of (centred) similarity ≥ <paramref name="threshold"/>, each ascending,
    /// ordered by their first row.
    /// </summary>
    public static IReadOnlyList<int[]> Find(Embeddings embeddings, double threshold = DefaultThreshold) => Find(embeddings, threshold, null);

    /// <summary>
    /// As <see cref="Find(Embeddings, double)"/>, and a pair counts only when the two images' pixels (rows of
    /// <paramref name="images"/>, as read at the encoder's size) also correlate at <paramref name="pixelThreshold"/> or
    /// more (Pearson): an encoder trained to ignore crops and colour puts distinct images of one kind as close as copies.
    /// </summary>
    public static IReadOnlyList<int[]> Find(Embeddings embeddings, ImageStore images, double threshold = DefaultThreshold, double pixelThreshold = DefaultPixelThreshold)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count != embeddings.Count) throw new ArgumentException($"images: {images.Count:N0} images for {embeddings.Count:N0} embeddings.", nameof(images));
        return Find(embeddings, threshold, (i, j) => PixelCorrelation(images.Image(i), images.Image(j)) >= pixelThreshold);
    }

    /// <summary>The default pixel correlation of <see cref="Find(Embeddings, ImageStore, double, double)"/>.</summary>
    public const double DefaultPixelThreshold = 0.97;

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
