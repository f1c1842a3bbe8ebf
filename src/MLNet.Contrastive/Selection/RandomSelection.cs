namespace MLNet.Contrastive.Selection;

/// <summary>The baseline: <c>budget</c> unlabelled rows uniformly at random (a seeded Fisher–Yates shuffle).</summary>
internal static class RandomSelection
{
    public static int[] Select(SelectionInput input)
    {
        var pool = input.Unlabelled();
        new Random(input.Options.Seed).Shuffle(pool);
        return pool[..input.Budget];
    }
}
