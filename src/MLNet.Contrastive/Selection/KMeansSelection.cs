namespace MLNet.Contrastive.Selection;

/// <summary>
/// k-means into |labelled| + budget clusters (ML.NET's trainer) of the PCA-whitened embeddings
/// (<see cref="LabelSelectionOptions.WhitenedComponents"/>) and, for each cluster without a label, the row nearest its
/// centroid: a representative of every mode, blind to density within a cluster.
/// </summary>
internal static class KMeansSelection
{
    public static int[] Select(SelectionInput input)
    {
        var components = input.Options.WhitenedComponents;
        var (values, d) = components > 0 ? Whitening.Whiten(input.Values, input.Count, input.Dimension, components) : (input.Values, input.Dimension);
        var k = Math.Min(input.LabelledCount + input.Budget, input.Count);
        var (assignment, centroids) = KMeansClustering.Cluster(values, input.Count, d, k, input.Options.Seed);
        return KMeansClustering.RoundRobin(input, assignment, centroids.Length / d, minClusterSize: 0,
            // Within one cluster ‖x − c‖² = 1 + ‖c‖² − 2 x·c: the nearest row has the largest x·c.
            rows => rows.Select(i => VectorMath.Dot(values.AsSpan(i * d, d), centroids.AsSpan(assignment[i] * d, d))).ToArray());
    }
}
