using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Objectives;

/// <summary>SimSiam's loss (Chen &amp; He 2021): negative cosine similarity with a stop-gradient on the target branch.</summary>
public static class SimSiamLoss
{
    /// <summary>
    /// p: predictions of one view [N, D]; z: projections of the other view [N, D], treated as constants
    /// (stop-gradient). −mean over rows of cos(p, z), in [−1, 1]. Returns a scalar.
    /// </summary>
    public static Tensor Compute(Tensor p, Tensor z)
    {
        ShapeCheck.SamePairs(p, z, nameof(p), nameof(z));
        using var scope = NewDisposeScope();
        return (-F.cosine_similarity(p, z.detach(), dim: 1).mean()).MoveToOuterDisposeScope();
    }
}
