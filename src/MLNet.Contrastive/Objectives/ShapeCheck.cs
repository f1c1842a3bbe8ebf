using static TorchSharp.torch;

namespace MLNet.Contrastive.Objectives;

internal static class ShapeCheck
{
    /// <summary>Throws unless <paramref name="a"/> and <paramref name="b"/> are both [N, D] with N ≥ <paramref name="minimumRows"/>.</summary>
    public static void SamePairs(Tensor a, Tensor b, string aName, string bName, int minimumRows = 1)
    {
        if (a.ndim != 2 || !a.shape.SequenceEqual(b.shape))
            throw new ArgumentException($"{aName} and {bName} must both be [N, D]; got [{string.Join(", ", a.shape)}] and [{string.Join(", ", b.shape)}].");
        if (a.shape[0] < minimumRows)
            throw new ArgumentException($"{aName} and {bName} need at least {minimumRows} rows; got {a.shape[0]}.");
    }
}
