namespace MLNet.Contrastive.Selection;

/// <summary>
/// k-center greedy (Sener &amp; Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set Approach", 2018,
/// Algorithm 1): each step takes the row farthest from its nearest labelled or chosen row, a 2-approximation of the
/// smallest covering radius. With nothing labelled the first row is a seeded random one.
/// </summary>
internal static class KCenterGreedy
{
    public static int[] Select(SelectionInput input)
    {
        var (values, n, d) = (input.Values, input.Count, input.Dimension);
        // Largest similarity to a centre = smallest distance; one exact pass over the labelled rows to start.
        var nearest = ExactNeighbours.MaxSimilarityTo(values, n, d, Enumerable.Range(0, n).Where(i => input.Labelled[i]).ToArray());
        var taken = (bool[])input.Labelled.Clone();
        var chosen = new List<int>(input.Budget);
        if (input.LabelledCount == 0)
        {
            var unlabelled = input.Unlabelled();
            Take(unlabelled[new Random(input.Options.Seed).Next(unlabelled.Length)]);
        }
        while (chosen.Count < input.Budget)
        {
            var farthest = -1;
            for (var i = 0; i < n; i++)
                if (!taken[i] && (farthest < 0 || nearest[i] < nearest[farthest])) farthest = i;
            Take(farthest);
        }
        return chosen.ToArray();

        void Take(int centre)
        {
            chosen.Add(centre);
            taken[centre] = true;
            var row = values.AsSpan(centre * d, d);
            for (var i = 0; i < n; i++) nearest[i] = Math.Max(nearest[i], VectorMath.Dot(values.AsSpan(i * d, d), row));
        }
    }
}
