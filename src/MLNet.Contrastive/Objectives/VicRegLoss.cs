using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// VICReg (Bardes et al. 2022): variance-invariance-covariance regularisation of the two views' projections.
/// </summary>
public static class VicRegLoss
{
    /// <summary>The paper's coefficients: invariance 25, variance 25, covariance 1.</summary>
    public const double DefaultInvarianceWeight = 25, DefaultVarianceWeight = 25, DefaultCovarianceWeight = 1;

    /// <summary>
    /// z1, z2: [N, D] (N ≥ 2). Invariance: mean squared error between z1 and z2 (over N·D values). Variance: for each
    /// branch the mean over dimensions of max(0, 1 − √(Var + 10⁻⁴)) (unbiased variance over the batch), averaged over the
    /// two branches. Covariance: for each branch the sum of squared off-diagonal entries of its covariance matrix
    /// (divisor N − 1) divided by D, summed over the branches. Returns the weighted sum (a scalar) and its three terms.
    /// </summary>
    public static (Tensor Loss, Tensor Invariance, Tensor Variance, Tensor Covariance) Terms(Tensor z1, Tensor z2,
        double invarianceWeight = DefaultInvarianceWeight, double varianceWeight = DefaultVarianceWeight, double covarianceWeight = DefaultCovarianceWeight)
    {
        ShapeCheck.SamePairs(z1, z2, nameof(z1), nameof(z2), minimumRows: 2);
        using var scope = NewDisposeScope();
        var invariance = F.mse_loss(z1, z2);
        var variance = (Variance(z1) + Variance(z2)) / 2;
        var covariance = Covariance(z1) + Covariance(z2);
        var loss = invarianceWeight * invariance + varianceWeight * variance + covarianceWeight * covariance;
        return (loss.MoveToOuterDisposeScope(), invariance.MoveToOuterDisposeScope(), variance.MoveToOuterDisposeScope(), covariance.MoveToOuterDisposeScope());
    }

    /// <summary>The weighted VICReg loss; see <see cref="Terms"/>.</summary>
    public static Tensor Compute(Tensor z1, Tensor z2, double invarianceWeight = DefaultInvarianceWeight,
        double varianceWeight = DefaultVarianceWeight, double covarianceWeight = DefaultCovarianceWeight)
    {
        var (loss, invariance, variance, covariance) = Terms(z1, z2, invarianceWeight, varianceWeight, covarianceWeight);
        invariance.Dispose();
        variance.Dispose();
        covariance.Dispose();
        return loss;
    }

    private static Tensor Variance(Tensor z) => F.relu(1 - (z.var(0) + 1e-4).sqrt()).mean();

    private static Tensor Covariance(Tensor z)
    {
        var (n, d) = (z.shape[0], z.shape[1]);
        var centred = z - z.mean(new long[] { 0 }, keepdim: true);
        var covariance = centred.t().mm(centred) / (n - 1);
        return (covariance.pow(2).sum() - covariance.diagonal().pow(2).sum()) / d;
    }
}
