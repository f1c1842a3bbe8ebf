using MLNet.Contrastive.Metrics;

namespace MLNet.Contrastive.Selection;

/// <summary>
/// Groups of near-identical images: rows whose centred embeddings' cosine similarity reaches a threshold, joined
/// transitively (a union–find over every such pair, found by exact search). The mean embedding is subtracted first: an
/// encoder's pooled features after a ReLU all lie in one orthant, where any two images of a set have a cosine near 1.
/// </summary>
public static class NearDuplicates
{
    /// <summary>The default cosine-similarity threshold of <see cref="Find"/>.</summary>
    public const double DefaultThreshold = 0.95;

    /// <summary>
    /// The groups of two or more rows joined by pairs of (centred) similarity ≥ <paramref name="threshold"/>, each ascending,
    /// ordered by their first row.
    /// </summary>
    public static IReadOnlyList<int[]> Find(Embeddings embeddings, double threshold = DefaultThreshold)
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
                    if (row[j] >= limit) parent[Root(i)] = Root(j);
            }
        });
        return Enumerable.Range(0, n).GroupBy(Root).Where(g => g.Count() > 1).Select(g => g.Order().ToArray()).OrderBy(g => g[0]).ToList();

        int Root(int i)
        {
            while (parent[i] != i) i = parent[i] = parent[parent[i]];
            return i;
        }
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
