using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.Contrastive.Metrics;

/// <summary>How k-means clusters of the embeddings agree with the labels, for one cluster count.</summary>
/// <param name="Clusters">k-means' K.</param>
/// <param name="Nmi">Normalised mutual information (arithmetic-mean normalisation), 0 … 1.</param>
/// <param name="Ari">Adjusted Rand index, about 0 for chance, 1 for identical partitions.</param>
/// <param name="Purity">Fraction of rows whose cluster's majority class is their class.</param>
/// <param name="Assignments">The cluster of each row.</param>
public sealed record ClusteringScore(int Clusters, double Nmi, double Ari, double Purity, int[] Assignments);

/// <summary>
/// Under- and over-clustering diagnostics: k-means (ML.NET's KMeans trainer) on the embeddings at K/2, K and 2K
/// clusters for K classes, each scored against the labels. A representation that merges classes scores well at K/2
/// but not at K (under-clustering); one that splits them gains purity at 2K while NMI and ARI drop at K (over-clustering).
/// </summary>
public static class ClusteringDiagnostics
{
    /// <summary>ML.NET k-means at K/2, K and 2K clusters (K = the number of classes) on <paramref name="embeddings"/>, scored against their labels by NMI, ARI and purity.</summary>
    public static IReadOnlyList<ClusteringScore> Evaluate(MLContext mlContext, Embeddings embeddings)
    {
        var labels = embeddings.Labels ?? throw new ArgumentException("Clustering diagnostics need labelled embeddings.", nameof(embeddings));
        var classes = labels.Distinct().Count();
        return new[] { Math.Max(2, classes / 2), classes, 2 * classes }.Distinct()
            .Select(k => Score(k, labels, KMeans(mlContext, embeddings, k))).ToList();
    }

    /// <summary>Cluster index (0-based) of each row from ML.NET's k-means with <paramref name="clusters"/> clusters.</summary>
    public static int[] KMeans(MLContext mlContext, Embeddings embeddings, int clusters)
    {
        var data = embeddings.ToDataView(mlContext, "Features");
        var model = mlContext.Clustering.Trainers.KMeans("Features", numberOfClusters: clusters).Fit(data);
        return model.Transform(data).GetColumn<uint>("PredictedLabel").Select(c => (int)c - 1).ToArray();
    }

    /// <summary>NMI, ARI and purity of <paramref name="clusters"/> against <paramref name="labels"/>.</summary>
    public static ClusteringScore Score(int k, IReadOnlyList<int> labels, int[] clusters)
    {
        var n = labels.Count;
        var table = labels.Zip(clusters).GroupBy(p => p).ToDictionary(g => g.Key, g => g.Count());
        var classCounts = labels.GroupBy(l => l).Select(g => g.Count()).ToArray();
        var clusterCounts = clusters.GroupBy(c => c).Select(g => g.Count()).ToArray();

        double Entropy(IEnumerable<int> counts) => -counts.Sum(c => (double)c / n * Math.Log((double)c / n));
        var labelTotals = labels.GroupBy(l => l).ToDictionary(g => g.Key, g => g.Count());
        var clusterTotals = clusters.GroupBy(c => c).ToDictionary(g => g.Key, g => g.Count());
        var mutual = table.Sum(cell => (double)cell.Value / n *
            Math.Log((double)cell.Value * n / ((double)labelTotals[cell.Key.First] * clusterTotals[cell.Key.Second])));
        var (hLabels, hClusters) = (Entropy(classCounts), Entropy(clusterCounts));
        var nmi = hLabels + hClusters == 0 ? 1 : 2 * mutual / (hLabels + hClusters);

        static double Pairs(double m) => m * (m - 1) / 2;
        var index = table.Values.Sum(c => Pairs(c));
        var (rows, columns) = (classCounts.Sum(c => Pairs(c)), clusterCounts.Sum(c => Pairs(c)));
        var expected = rows * columns / Pairs(n);
        var maximum = (rows + columns) / 2;
        var ari = maximum == expected ? 1 : (index - expected) / (maximum - expected);

        var purity = (double)table.GroupBy(cell => cell.Key.Second).Sum(g => g.Max(cell => cell.Value)) / n;
        return new ClusteringScore(k, nmi, ari, purity, clusters);
    }
}
