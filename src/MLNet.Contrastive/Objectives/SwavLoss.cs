using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// SwAV's objective (Caron et al. 2020): online cluster assignments ("codes") of the global crops by Sinkhorn-Knopp,
/// each predicted from the other crops' prototype scores (swapped prediction).
/// </summary>
public static class SwavLoss
{
    /// <summary>
    /// Codes Q [B, K] of prototype scores [B, K] (cosines): the entropy-regularised transport of the B samples to K
    /// equally used prototypes, by <paramref name="iterations"/> Sinkhorn-Knopp iterations on exp(scores / ε). Each row
    /// sums to 1 (a sample's soft assignment) and each column to B / K (equal use), up to the iterations' precision.
    /// </summary>
    public static Tensor SinkhornKnopp(Tensor scores, double epsilon, int iterations)
    {
        if (scores.ndim != 2) throw new ArgumentException($"The scores must be [B, K]; got [{string.Join(", ", scores.shape)}].", nameof(scores));
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "ε must be positive.");
        if (iterations < 1) throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "At least one iteration is needed.");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (b, k) = (scores.shape[0], scores.shape[1]);
        // Subtracting the maximum keeps exp finite at small ε; the normalisations below cancel it.
        var q = (scores / epsilon).to_type(ScalarType.Float64);
        q = (q - q.max()).exp();
        q /= q.sum();
        for (var i = 0; i < iterations; i++)
        {
            q /= q.sum(0, keepdim: true) * k;   // each prototype's total → 1 / K
            q /= q.sum(1, keepdim: true) * b;   // each sample's total → 1 / B
        }
        return (q * b).to_type(scores.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Swapped prediction: for each global crop i with codes Q_i [B, K], the cross-entropy −Σ Q_i · log softmax(S_v / τ)
    /// against the prototype scores S_v [B, K] of every other crop v, averaged over those pairs. Returns a scalar.
    /// </summary>
    /// <param name="codes">The codes of the global crops, one [B, K] each (no gradient).</param>
    /// <param name="scores">The prototype scores of all crops, global ones first, one [B, K] each.</param>
    /// <param name="temperature">τ of the softmax over prototypes.</param>
    public static Tensor SwappedPrediction(IReadOnlyList<Tensor> codes, IReadOnlyList<Tensor> scores, double temperature)
    {
        if (codes.Count < 1 || scores.Count < 2 || codes.Count > scores.Count)
            throw new ArgumentException($"Swapped prediction needs codes of 1 or more global crops and scores of at least 2 crops; got {codes.Count} and {scores.Count}.");
        if (!(temperature > 0)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "The temperature must be positive.");
        foreach (var s in scores) ShapeCheck.SamePairs(codes[0], s, nameof(codes), nameof(scores));
        using var scope = NewDisposeScope();
        var total = zeros(1, dtype: scores[0].dtype, device: scores[0].device).squeeze();
        var pairs = 0;
        for (var i = 0; i < codes.Count; i++)
            for (var v = 0; v < scores.Count; v++)
            {
                if (v == i) continue;
                total += -(codes[i].detach() * nn.functional.log_softmax(scores[v] / temperature, dim: 1)).sum(1).mean();
                pairs++;
            }
        return (total / pairs).MoveToOuterDisposeScope();
    }
}
