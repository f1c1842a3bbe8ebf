namespace MLNet.Contrastive.Selection;

/// <summary>
/// ProbCover (Yehuda, Dekel, Hacohen &amp; Weinshall, "Active Learning Through a Covering Lens", NeurIPS 2022), after the
/// authors' deep-al/pycls/al/prob_cover.py: the graph x → y when ‖x − y‖ &lt; δ; rows covered by a labelled row drop
/// out; each step takes the row whose ball covers the most uncovered rows. δ, unless given, is the largest radius at
/// which a fraction <see cref="LabelSelectionOptions.Purity"/> of the balls hold rows of one k-means cluster only (the
/// paper's purity criterion, α = 0.95). Once everything is covered, the rest of the budget is drawn at random.
/// </summary>
internal static class ProbCoverSelection
{
    /// <summary>More edges than this (4 GB of row indices) ask for a smaller δ rather than exhaust memory.</summary>
    private const long MaxEdges = 1_000_000_000;

    public static int[] Select(SelectionInput input)
    {
        var n = input.Count;
        var delta = input.Options.Delta ?? PurityDelta(input);
        var (offsets, targets) = BallGraph(input, delta);

        var covered = new bool[n];
        var degree = new int[n];
        for (var x = 0; x < n; x++)
            if (input.Labelled[x])
                for (var e = offsets[x]; e < offsets[x + 1]; e++) covered[targets[e]] = true;
        for (var x = 0; x < n; x++)
            for (var e = offsets[x]; e < offsets[x + 1]; e++)
                if (!covered[targets[e]]) degree[x]++;

        var taken = (bool[])input.Labelled.Clone();
        var chosen = new List<int>(input.Budget);
        while (chosen.Count < input.Budget)
        {
            var best = -1;
            for (var x = 0; x < n; x++)
                if (!taken[x] && (best < 0 || degree[x] > degree[best])) best = x;
            if (degree[best] == 0) break;
            chosen.Add(best);
            taken[best] = true;
            // The graph is symmetric: the rows whose balls held a newly covered row lose one degree each.
            for (var e = offsets[best]; e < offsets[best + 1]; e++)
            {
                var y = targets[e];
                if (covered[y]) continue;
                covered[y] = true;
                for (var f = offsets[y]; f < offsets[y + 1]; f++) degree[targets[f]]--;
            }
        }
        input.Options.Log?.Invoke($"ProbCover: δ = {delta:F3}{(input.Options.Delta is null ? $" (purity {input.Options.Purity:P0} over {input.Options.PurityClusters} k-means clusters)" : "")}, " +
                                  $"{targets.Length:N0} edges ({(double)targets.Length / n:F1} per image), coverage {covered.Count(c => c) / (double)n:P1}" +
                                  (chosen.Count < input.Budget ? $"; everything covered after {chosen.Count}, the rest at random." : "."));
        if (chosen.Count < input.Budget)
        {
            var rest = Enumerable.Range(0, n).Where(i => !taken[i]).ToArray();
            new Random(input.Options.Seed).Shuffle(rest);
            chosen.AddRange(rest[..(input.Budget - chosen.Count)]);
        }
        return chosen.ToArray();
    }

    /// <summary>The δ-ball graph as adjacency lists: the neighbours of x are targets[offsets[x] .. offsets[x + 1]], x itself included.</summary>
    internal static (long[] Offsets, int[] Targets) BallGraph(SelectionInput input, double delta)
    {
        var n = input.Count;
        var threshold = VectorMath.SimilarityAt(delta);
        var offsets = new long[n + 1];
        var targets = new List<int>();
        ExactNeighbours.SimilarityBlocks(input.Values, n, input.Values, n, input.Dimension, (start, rows, similarities) =>
        {
            for (var r = 0; r < rows; r++)
            {
                var row = similarities.AsSpan(r * n, n);
                for (var y = 0; y < n; y++)
                    if (row[y] > threshold || y == start + r) targets.Add(y);
                offsets[start + r + 1] = targets.Count;
                if (targets.Count > MaxEdges)
                    throw new InvalidOperationException($"Delta {delta:G3}: the ball graph has more than {MaxEdges:N0} edges; give a smaller delta.");
            }
        });
        return (offsets, targets.ToArray());
    }

    /// <summary>
    /// The largest δ at which a fraction Purity of the balls are pure: a ball around x is pure while δ does not exceed the
    /// distance from x to the nearest row of another cluster, so δ is that distance's (1 − Purity) quantile.
    /// </summary>
    internal static double PurityDelta(SelectionInput input)
    {
        var (n, d) = (input.Count, input.Dimension);
        var k = Math.Clamp(input.Options.PurityClusters, 2, n);
        var (assignment, _) = KMeansClustering.Cluster(input.Values, n, d, k, input.Options.Seed);
        var impure = new float[n];
        ExactNeighbours.SimilarityBlocks(input.Values, n, input.Values, n, d, (start, rows, similarities) =>
        {
            for (var r = 0; r < rows; r++)
            {
                var row = similarities.AsSpan(r * n, n);
                var (own, best) = (assignment[start + r], float.NegativeInfinity);
                for (var y = 0; y < n; y++)
                    if (assignment[y] != own && row[y] > best) best = row[y];
                impure[start + r] = VectorMath.Distance(best);
            }
        });
        Array.Sort(impure);
        return Math.Clamp(impure[Math.Min(n - 1, (int)Math.Floor((1 - input.Options.Purity) * n))], 1e-6, 2);
    }
}
