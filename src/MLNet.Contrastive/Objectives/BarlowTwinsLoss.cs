using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// Barlow Twins (Zbontar et al. 2021): makes the cross-correlation matrix of the two views' projections the identity —
/// invariance on the diagonal, redundancy reduction off it.
/// </summary>
public static class BarlowTwinsLoss
{
    /// <summary>
    /// z1, z2: [N, D] (N ≥ 2). Each is standardised over the batch (mean 0, biased variance 1, ε = 1e-5, as batch norm
    /// without affine parameters); C = z̃1ᵀ z̃2 / N is [D, D]; the loss is Σᵢ (1 − Cᵢᵢ)² + λ Σᵢ≠ⱼ Cᵢⱼ². Returns a scalar.
    /// λ = 1/D balances the two terms for small projectors (the paper's 5·10⁻³ is for D = 8192, where 1/D ≈ 1.2·10⁻⁴ would be
    /// too weak against its scale; Tsai et al. 2021 derive λ = 1/D).
    /// </summary>
    public static Tensor Compute(Tensor z1, Tensor z2, double lambda)
    {
        ShapeCheck.SamePairs(z1, z2, nameof(z1), nameof(z2), minimumRows: 2);
        if (!(lambda >= 0)) throw new ArgumentOutOfRangeException(nameof(lambda), lambda, "λ must be non-negative.");
        using var scope = NewDisposeScope();
        var n = z1.shape[0];
        var c = Standardize(z1).t().mm(Standardize(z2)) / n;
        var diagonal = c.diagonal();
        var onDiagonal = (1 - diagonal).pow(2).sum();
        var offDiagonal = c.pow(2).sum() - diagonal.pow(2).sum();
        return (onDiagonal + lambda * offDiagonal).MoveToOuterDisposeScope();
    }

    private static Tensor Standardize(Tensor z)
    {
        var centred = z - z.mean(new long[] { 0 }, keepdim: true);
        return centred / (centred.pow(2).mean(new long[] { 0 }, keepdim: true) + 1e-5).sqrt();
    }
}
