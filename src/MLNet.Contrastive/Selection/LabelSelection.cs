using MLNet.Contrastive.Metrics;

namespace MLNet.Contrastive.Selection;

/// <summary>How <see cref="LabelSelection"/> chooses the images to label.</summary>
public enum SelectionStrategy
{
    /// <summary>Uniformly at random among the unlabelled images (the baseline).</summary>
    Random,
    /// <summary>k-means into |labelled| + budget clusters of the whitened embeddings; the image nearest the centroid of each cluster that holds no label yet.</summary>
    KMeans,
    /// <summary>TypiClust (Hacohen, Dekel &amp; Weinshall 2022): the most typical image of each of the largest uncovered clusters.</summary>
    TypiClust,
    /// <summary>ProbCover (Yehuda et al. 2022): greedy maximum coverage of δ-balls around the images.</summary>
    ProbCover,
    /// <summary>k-center greedy (Sener &amp; Savarese 2018): repeatedly the image farthest from every chosen or labelled one.</summary>
    KCenter,
}

/// <summary>Settings of <see cref="LabelSelection.Select(Embeddings, LabelSelectionOptions)"/>.</summary>
public sealed class LabelSelectionOptions
{
    /// <summary>
    /// The strategy. Default <see cref="SelectionStrategy.KMeans"/> (on whitened embeddings it chose better labels than
    /// TypiClust at every budget measured; docs/selection.md).
    /// </summary>
    public SelectionStrategy Strategy { get; set; } = SelectionStrategy.KMeans;

    /// <summary>How many images to choose (besides <see cref="Labelled"/>). Required: positive.</summary>
    public int Budget { get; set; }

    /// <summary>Seed of the random choices (random selection, k-means initialisation, k-center's first image). Default 0.</summary>
    public int Seed { get; set; }

    /// <summary>Rows already labelled (an earlier round): never chosen again, and the strategies add to them. Default none.</summary>
    public IReadOnlyCollection<int>? Labelled { get; set; }

    /// <summary>
    /// k-means strategy: clusters the embeddings' top this many principal components, each scaled to unit variance
    /// (PCA whitening; see docs/selection.md for the measurements behind it); 0 clusters the normalised embeddings as
    /// they are. Default 50.
    /// </summary>
    public int WhitenedComponents { get; set; } = 50;

    /// <summary>TypiClust: neighbours whose mean distance defines typicality (at most half the cluster). Default 20, as the paper.</summary>
    public int TypicalityNeighbours { get; set; } = 20;

    /// <summary>TypiClust: at most this many clusters. Default 500, as the authors' code.</summary>
    public int MaxClusters { get; set; } = 500;

    /// <summary>TypiClust: clusters of this many images or fewer are skipped (outliers are not typical). Default 5, as the authors' code.</summary>
    public int MinClusterSize { get; set; } = 5;

    /// <summary>ProbCover: the ball radius δ (Euclidean, between L2-normalised embeddings, 0–2). Default null: chosen from <see cref="Purity"/>.</summary>
    public double? Delta { get; set; }

    /// <summary>ProbCover without <see cref="Delta"/>: the largest δ at which this fraction of the balls hold a single k-means cluster. Default 0.95, as the paper.</summary>
    public double Purity { get; set; } = 0.95;

    /// <summary>ProbCover without <see cref="Delta"/>: the k-means clusters purity is measured against (the paper uses the number of classes). Default 10.</summary>
    public int PurityClusters { get; set; } = 10;

    /// <summary>Receives a line on what the strategy found (ProbCover: δ, the graph's edges, the coverage reached). Default none.</summary>
    public Action<string>? Log { get; set; }

    internal LabelSelectionOptions Clone() => (LabelSelectionOptions)MemberwiseClone();
}

/// <summary>
/// Chooses which images to label from their embeddings, with no labels at all or in rounds. Every strategy works on the
/// L2-normalised rows (Euclidean distance between them orders pairs as cosine similarity does).
/// </summary>
public static class LabelSelection
{
    /// <summary>
    /// The <see cref="LabelSelectionOptions.Budget"/> rows of <paramref name="embeddings"/> to label, in the order chosen;
    /// none of them is in <see cref="LabelSelectionOptions.Labelled"/>.
    /// </summary>
    public static int[] Select(Embeddings embeddings, LabelSelectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        ArgumentNullException.ThrowIfNull(options);
        var input = SelectionInput.Create(embeddings, options);
        return options.Strategy switch
        {
            SelectionStrategy.Random => RandomSelection.Select(input),
            SelectionStrategy.KMeans => KMeansSelection.Select(input),
            SelectionStrategy.TypiClust => TypiClustSelection.Select(input),
            SelectionStrategy.ProbCover => ProbCoverSelection.Select(input),
            SelectionStrategy.KCenter => KCenterGreedy.Select(input),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Strategy, "Unknown selection strategy."),
        };
    }

    /// <summary>Parses a strategy name in any case (random, kmeans, typiclust, probcover, kcenter), or a clear error naming <paramref name="option"/>.</summary>
    public static SelectionStrategy ParseStrategy(string name, string option = "strategy") =>
        Enum.TryParse<SelectionStrategy>(name.Replace("-", ""), ignoreCase: true, out var strategy) && Enum.IsDefined(strategy) ? strategy
            : throw new ArgumentException($"{option} '{name}': expected one of {string.Join(", ", Enum.GetNames<SelectionStrategy>().Select(n => n.ToLowerInvariant()))}.");

    /// <summary>
    /// The largest Euclidean distance from a row to its nearest row among <paramref name="centers"/> (the covering radius
    /// k-center minimises), between L2-normalised rows.
    /// </summary>
    public static double CoveringRadius(Embeddings embeddings, IReadOnlyCollection<int> centers)
    {
        var values = VectorMath.Normalized(embeddings);
        var nearest = ExactNeighbours.MaxSimilarityTo(values, embeddings.Count, embeddings.Dimension, centers.ToArray());
        return nearest.Max(s => VectorMath.Distance(s));
    }

    /// <summary>The fraction of rows within <paramref name="delta"/> (Euclidean, normalised rows) of one of <paramref name="centers"/>: what ProbCover maximises.</summary>
    public static double Coverage(Embeddings embeddings, IReadOnlyCollection<int> centers, double delta)
    {
        var values = VectorMath.Normalized(embeddings);
        var nearest = ExactNeighbours.MaxSimilarityTo(values, embeddings.Count, embeddings.Dimension, centers.ToArray());
        return nearest.Count(s => VectorMath.Distance(s) < delta) / (double)embeddings.Count;
    }
}

/// <summary>The normalised rows, the labelled mask and the settings one selection runs on.</summary>
internal sealed record SelectionInput(float[] Values, int Count, int Dimension, bool[] Labelled, int LabelledCount, LabelSelectionOptions Options)
{
    public int Budget => Options.Budget;

    public static SelectionInput Create(Embeddings embeddings, LabelSelectionOptions options)
    {
        var labelled = new bool[embeddings.Count];
        foreach (var i in options.Labelled ?? [])
        {
            if (i < 0 || i >= embeddings.Count)
                throw new ArgumentOutOfRangeException(nameof(options), i, $"Labelled: row {i} is outside the {embeddings.Count:N0} embeddings.");
            labelled[i] = true;
        }
        // A NaN or infinity would turn the covariance, the clusters and every distance into silent nonsense.
        var bad = Array.FindIndex(embeddings.Values, v => !float.IsFinite(v));
        if (bad >= 0)
            throw new ArgumentException($"embeddings: row {bad / embeddings.Dimension} holds a non-finite value ({embeddings.Values[bad]}).", nameof(embeddings));
        var labelledCount = labelled.Count(l => l);
        if (options.Budget <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.Budget, "Budget: must be positive.");
        if (options.Budget > embeddings.Count - labelledCount)
            throw new ArgumentOutOfRangeException(nameof(options), options.Budget,
                $"Budget: {options.Budget:N0} is more than the {embeddings.Count - labelledCount:N0} unlabelled images.");
        if (options.Delta is <= 0 or > 2) throw new ArgumentOutOfRangeException(nameof(options), options.Delta, "Delta: must be in (0, 2].");
        if (options.Purity is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(options), options.Purity, "Purity: must be in (0, 1].");
        if (options.WhitenedComponents < 0) throw new ArgumentOutOfRangeException(nameof(options), options.WhitenedComponents, "WhitenedComponents: must be 0 (off) or positive.");
        if (options.TypicalityNeighbours <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.TypicalityNeighbours, "TypicalityNeighbours: must be positive.");
        return new SelectionInput(VectorMath.Normalized(embeddings), embeddings.Count, embeddings.Dimension, labelled, labelledCount, options);
    }

    /// <summary>The rows not labelled, ascending.</summary>
    public int[] Unlabelled() => Enumerable.Range(0, Count).Where(i => !Labelled[i]).ToArray();
}
