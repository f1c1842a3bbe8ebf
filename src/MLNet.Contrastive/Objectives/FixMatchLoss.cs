using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// FixMatch's unlabelled-image term (Sohn et al. 2020): the class the network gives a weak view of an image is the
/// target of a strong view of it, where the network is confident.
/// </summary>
public static class FixMatchLoss
{
    /// <summary>
    /// weak: logits of weak views [N, K] (no gradient flows into them); strong: logits of strong views of the same images
    /// [N, K]. With pseudo-label ŷ = argmax softmax(weak) and confidence c = max softmax(weak), the mean over all N rows of
    /// 1[c ≥ <paramref name="threshold"/>] · CE(strong, ŷ): rows below the threshold count as zero, as in FixMatch (the
    /// mean is over the batch, not over the confident rows). Returns the loss (a scalar) and the confident fraction.
    /// </summary>
    public static (Tensor Loss, Tensor ConfidentFraction) Compute(Tensor weak, Tensor strong, double threshold)
    {
        ShapeCheck.SamePairs(weak, strong, nameof(weak), nameof(strong));
        if (!(threshold is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "The confidence threshold must be in [0, 1].");
        using var scope = NewDisposeScope();
        var (confidence, pseudoLabels) = F.softmax(weak.detach(), 1).max(1);
        var confident = confidence.ge(threshold).to(strong.dtype);
        var loss = (F.cross_entropy(strong, pseudoLabels, reduction: nn.Reduction.None) * confident).mean();
        return (loss.MoveToOuterDisposeScope(), confident.mean().MoveToOuterDisposeScope());
    }
}
