using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Objectives;

/// <summary>BYOL's regression loss (Grill et al. 2020): the normalised mean squared error between prediction and target.</summary>
public static class ByolLoss
{
    /// <summary>
    /// p: the online network's predictions [N, D]; z: the target network's projections of the other view [N, D]
    /// (no gradient flows into z). Mean over rows of ‖p/‖p‖ − z/‖z‖‖² = 2 − 2·cos(p, z), in [0, 4]. Returns a scalar.
    /// </summary>
    public static Tensor Compute(Tensor p, Tensor z)
    {
        ShapeCheck.SamePairs(p, z, nameof(p), nameof(z));
        using var scope = NewDisposeScope();
        var cosine = F.cosine_similarity(p, z.detach(), dim: 1);
        return (2 - 2 * cosine).mean().MoveToOuterDisposeScope();
    }
}
