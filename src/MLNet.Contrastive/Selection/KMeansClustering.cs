using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using MLNet.Contrastive.Metrics;

namespace MLNet.Contrastive.Selection;

/// <summary>
/// k-means with ML.NET's trainer (k-means++-style initialisation, Yinyang iterations) on unit rows, and the round-robin
/// over clusters that the k-means and TypiClust strategies share.
/// </summary>
internal static class KMeansClustering
{
    private const string Features = "Features";

    /// <summary>The cluster of every row (0 … k−1) and the centroids [k · D]; seeded through the MLContext.</summary>
    public static (int[] Assignment, float[] Centroids) Cluster(float[] values, int n, int d, int k, int seed)
    {
        var mlContext = new MLContext(seed);
        var data = new Embeddings(values, n, d, null).ToDataView(mlContext, Features);
        // One thread: ML.NET's parallel initialisation is not reproducible for a seed.
        var model = mlContext.Clustering.Trainers.KMeans(new KMeansTrainer.Options
        {
            FeatureColumnName = Features, NumberOfClusters = k, NumberOfThreads = 1,
        }).Fit(data);
        VBuffer<float>[] centroids = default!;
        model.Model.GetClusterCentroids(ref centroids, out var found);
        var flat = new float[found * d];
        for (var c = 0; c < found; c++) centroids[c].DenseValues().ToArray().CopyTo(flat, c * d);
        var assignment = model.Transform(data).GetColumn<uint>("PredictedLabel").Select(label => (int)label - 1).ToArray();
        return (assignment, flat);
    }

    /// <summary>
    /// <c>budget</c> rows, one per cluster in turn: clusters with the fewest labelled rows first, larger before smaller
    /// (TypiClust's order), each giving its best-scored row not yet taken; clusters of <paramref name="minClusterSize"/>
    /// rows or fewer are skipped while larger ones remain. <paramref name="score"/> scores a cluster's rows (higher is better).
    /// </summary>
    public static int[] RoundRobin(SelectionInput input, int[] assignment, int clusters, int minClusterSize, Func<int[], float[]> score)
    {
        var members = Enumerable.Range(0, clusters).Select(_ => new List<int>()).ToArray();
        for (var i = 0; i < assignment.Length; i++) members[assignment[i]].Add(i);
        var order = Enumerable.Range(0, clusters)
            .Where(c => members[c].Count > minClusterSize)
            .OrderBy(c => members[c].Count(i => input.Labelled[i])).ThenByDescending(c => members[c].Count).ThenBy(c => c)
            .Concat(Enumerable.Range(0, clusters).Where(c => members[c].Count is > 0 && members[c].Count <= minClusterSize).OrderByDescending(c => members[c].Count))
            .ToList();

        var taken = (bool[])input.Labelled.Clone();
        var ranked = new Queue<int>?[clusters];
        var chosen = new List<int>(input.Budget);
        while (chosen.Count < input.Budget)
        {
            var before = chosen.Count;
            foreach (var c in order)
            {
                if (chosen.Count == input.Budget) break;
                ranked[c] ??= Rank(members[c]);
                while (ranked[c]!.TryDequeue(out var row))
                {
                    if (taken[row]) continue;
                    taken[row] = true;
                    chosen.Add(row);
                    break;
                }
            }
            if (chosen.Count == before) throw new InvalidOperationException("The clusters ran out of unlabelled rows before the budget was met.");
        }
        return chosen.ToArray();

        Queue<int> Rank(List<int> rows)
        {
            var scores = score(rows.ToArray());
            return new Queue<int>(Enumerable.Range(0, rows.Count).OrderByDescending(i => scores[i]).ThenBy(i => rows[i]).Select(i => rows[i]));
        }
    }
}
