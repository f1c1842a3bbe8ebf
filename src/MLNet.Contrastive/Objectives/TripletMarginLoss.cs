using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Objectives;

/// <summary>How the negative of each anchor is chosen from the batch.</summary>
public enum TripletMining
{
    /// <summary>The closest negative (Hermans et al. 2017).</summary>
    BatchHard,
    /// <summary>
    /// FaceNet's semi-hard negative: the closest negative farther than the positive; when none is, the farthest negative.
    /// </summary>
    SemiHard,
}

/// <summary>The distance between L2-normalised embeddings.</summary>
public enum TripletDistance
{
    /// <summary>1 − cosine similarity, in [0, 2].</summary>
    Cosine,
    /// <summary>‖a − b‖₂ = √(2 − 2·cos), in [0, 2].</summary>
    Euclidean,
}

/// <summary>
/// Margin triplet loss for self-supervision: anchor and positive are two views of one image, the negatives are
/// both views of the batch's other images. Mean over the 2N anchors of max(0, d(a, p) − d(a, n) + margin).
/// </summary>
public static class TripletMarginLoss
{
    /// <summary>Margin between the positive and negative cosine distances.</summary>
    public const double DefaultMargin = 0.5;

    /// <summary>z1, z2: [N, D], row i of each a view of image i (N ≥ 2). Returns a scalar.</summary>
    public static Tensor Compute(Tensor z1, Tensor z2, double margin = DefaultMargin, TripletMining mining = TripletMining.SemiHard,
        TripletDistance distance = TripletDistance.Cosine)
    {
        if (z1.ndim != 2 || !z1.shape.SequenceEqual(z2.shape))
            throw new ArgumentException($"z1 and z2 must both be [N, D]; got [{string.Join(", ", z1.shape)}] and [{string.Join(", ", z2.shape)}].");
        var n = z1.shape[0];
        if (n < 2) throw new ArgumentException("A triplet loss needs at least two images per batch (one negative).");
        if (margin < 0) throw new ArgumentOutOfRangeException(nameof(margin), margin, "The margin must be non-negative.");

        using var scope = NewDisposeScope();
        var z = F.normalize(cat(new[] { z1, z2 }, 0), dim: 1);
        var cosine = z.mm(z.t());
        var d = distance == TripletDistance.Cosine ? 1 - cosine : (2 - 2 * cosine).clamp_min(1e-12).sqrt();
        var index = arange(2 * n, device: z.device);
        var positiveIndex = (index + n) % (2 * n);
        var positive = d.gather(1, positiveIndex.unsqueeze(1)).squeeze(1);
        // Negatives: every embedding of another image (both of its views).
        var image = index % n;
        var isNegative = image.unsqueeze(0) != image.unsqueeze(1);

        Tensor negative;
        if (mining == TripletMining.BatchHard)
            negative = d.masked_fill(isNegative.logical_not(), double.PositiveInfinity).amin(1);
        else
        {
            var semiHard = isNegative & (d > positive.unsqueeze(1));
            var closestSemiHard = d.masked_fill(semiHard.logical_not(), double.PositiveInfinity).amin(1);
            var farthest = d.masked_fill(isNegative.logical_not(), double.NegativeInfinity).amax(1);
            negative = where(semiHard.any(1), closestSemiHard, farthest);
        }
        return F.relu(positive - negative + margin).mean().MoveToOuterDisposeScope();
    }
}
