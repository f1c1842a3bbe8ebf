namespace MLNet.Contrastive.Selection;

/// <summary>
/// TypiClust (Hacohen, Dekel &amp; Weinshall, "Active Learning on a Budget", ICML 2022), after the authors'
/// deep-al/pycls/al/typiclust.py: k-means into min(|labelled| + budget, 500) clusters; clusters with the fewest labels
/// first, larger first, skipping those of 5 rows or fewer; from each, its most typical row — typicality = 1 / (mean
/// squared distance to its min(20, size/2) nearest neighbours within the cluster + 1e-5). Typicality is computed once
/// per cluster over all its rows (the authors recompute it without the rows already taken; the two differ only when a
/// cluster gives a second row).
/// </summary>
internal static class TypiClustSelection
{
    public static int[] Select(SelectionInput input)
    {
        var (values, d, options) = (input.Values, input.Dimension, input.Options);
        var k = Math.Clamp(input.LabelledCount + input.Budget, 1, Math.Min(options.MaxClusters, input.Count));
        var (assignment, centroids) = KMeansClustering.Cluster(values, input.Count, d, k, options.Seed);
        return KMeansClustering.RoundRobin(input, assignment, centroids.Length / d, options.MinClusterSize,
            rows => Typicality(values, d, rows, options.TypicalityNeighbours));
    }

    /// <summary>1 / (mean squared distance to the min(<paramref name="neighbours"/>, |rows|/2) nearest other rows + 1e-5), per row.</summary>
    internal static float[] Typicality(float[] values, int d, int[] rows, int neighbours)
    {
        var k = Math.Min(neighbours, rows.Length / 2);
        if (k == 0) return new float[rows.Length];
        var members = VectorMath.Gather(values, d, rows);
        var (indices, similarities) = ExactNeighbours.Nearest(members, rows.Length, members, rows.Length, d, k + 1);
        var typicality = new float[rows.Length];
        for (var i = 0; i < rows.Length; i++)
        {
            // Drop the row itself (first, unless an exact duplicate ties with it; then drop the farthest).
            var self = Array.IndexOf(indices, i, i * (k + 1), k + 1);
            var sum = 0f;
            for (var j = 0; j < k + 1; j++) sum += VectorMath.SquaredDistance(similarities[i * (k + 1) + j]);
            sum -= VectorMath.SquaredDistance(similarities[self >= 0 ? self : i * (k + 1) + k]);
            typicality[i] = 1f / (sum / k + 1e-5f);
        }
        return typicality;
    }
}
