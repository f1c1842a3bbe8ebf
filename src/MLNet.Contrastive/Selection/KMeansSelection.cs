namespace MLNet.Contrastive.Selection;

/// <summary>
/// k-means into |labelled| + budget clusters (ML.NET's trainer) and, for each cluster without a label, the row nearest
/// its centroid: a representative of every mode, blind to density within a cluster.
/// </summary>
internal static class KMeansSelection
{
    public static int[] Select(SelectionInput input)
    {
        var d = input.Dimension;
        var k = Math.Min(input.LabelledCount + input.Budget, input.Count);
        var (assignment, centroids) = KMeansClustering.Cluster(input.Values, input.Count, d, k, input.Options.Seed);
        return KMeansClustering.RoundRobin(input, assignment, centroids.Length / d, minClusterSize: 0,
            // Within one cluster ‖x − c‖² = 1 + ‖c‖² − 2 x·c: the nearest row has the largest x·c.
            rows => rows.Select(i => VectorMath.Dot(input.Values.AsSpan(i * d, d), centroids.AsSpan(assignment[i] * d, d))).ToArray());
    }
}
