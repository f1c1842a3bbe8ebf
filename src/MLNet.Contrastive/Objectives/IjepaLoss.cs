using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// I-JEPA's objective (Assran et al. 2023), after facebookresearch/ijepa <c>src/train.py</c> (<c>forward_target</c>,
/// <c>loss_fn</c>) and lightly's <c>examples/pytorch/ijepa.py</c>: the target encoder's tokens are layer-normed over the
/// feature dimension (no affine), and the predictor's tokens are scored against them with the smooth L1 loss (β = 1),
/// averaged over every element. The targets take no gradient.
/// </summary>
public static class IjepaLoss
{
    /// <summary>
    /// The loss: mean over elements of smooth-L1(prediction − LayerNorm(target)), with smooth-L1(d) = d²/2 for |d| &lt; 1,
    /// |d| − 1/2 otherwise. A scalar.
    /// </summary>
    /// <param name="prediction">The predictor's tokens of the target patches [B, T, D].</param>
    /// <param name="target">The target encoder's tokens of the same patches [B, T, D], before the layer norm.</param>
    public static Tensor Compute(Tensor prediction, Tensor target)
    {
        if (prediction.ndim != 3 || !prediction.shape.SequenceEqual(target.shape))
            throw new ArgumentException($"The prediction and target must both be [B, T, D]; got [{string.Join(", ", prediction.shape)}] and [{string.Join(", ", target.shape)}].");
        using var scope = NewDisposeScope();
        var normed = nn.functional.layer_norm(target.detach(), [target.shape[2]]);
        return nn.functional.smooth_l1_loss(prediction, normed).MoveToOuterDisposeScope();
    }
}
