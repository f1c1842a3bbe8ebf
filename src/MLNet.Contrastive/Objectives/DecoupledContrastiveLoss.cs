using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// Decoupled contrastive learning (Yeh et al. 2022, DCL and DCLW): NT-Xent with the positive pair taken out of the
/// denominator, which removes the coupling between the positive's and the negatives' gradients that makes NT-Xent
/// need large batches; DCLW also weights each positive term by a negative von Mises-Fisher weight, so that the pairs
/// whose views already agree count less. Follows lightly's <c>lightly/loss/dcl_loss.py</c> (weights, detaching,
/// reduction), except the denominator: the paper's Eq. 6 (and the authors' code) has one log-sum over all 2N − 2
/// negatives, lightly sums two log-sums (same view, other view); here it is the paper's.
/// </summary>
public static class DecoupledContrastiveLoss
{
    /// <summary>Default temperature τ (lightly's and the paper's 0.1).</summary>
    public const double DefaultTemperature = 0.1;

    /// <summary>Default σ of DCLW's weights (the paper's 0.5).</summary>
    public const double DefaultSigma = 0.5;

    /// <summary>
    /// z1, z2: [N, D], two views of the same N images (row i of z1 and of z2 form a positive pair), L2-normalised here.
    /// With s the similarities divided by τ, each of the 2N anchors i contributes
    /// −w_i·s(i, i⁺) + log Σ_{j ∉ {i, i⁺}} exp s(i, j), over its 2N − 2 negatives only; the loss is their mean.
    /// w = 1 (DCL) unless <paramref name="sigma"/> is given (DCLW, see <see cref="Weights"/>). Returns a scalar.
    /// </summary>
    public static Tensor Compute(Tensor z1, Tensor z2, double temperature = DefaultTemperature, double? sigma = null)
    {
        NtXentLoss.Check(z1, z2, temperature);
        if (sigma is { } s && !(s > 0 && double.IsFinite(s))) throw new ArgumentOutOfRangeException(nameof(sigma), s, "σ must be a positive finite number.");

        using var scope = NewDisposeScope();
        var (logits, positives) = NtXentLoss.Logits(z1, z2, temperature);
        var column = positives.unsqueeze(1);
        var positive = logits.gather(1, column).squeeze(1);
        // The decoupling: the positive leaves its own denominator.
        var isPositive = F.one_hot(positives, logits.shape[1]).to_type(ScalarType.Bool);
        var negatives = logits.masked_fill(isPositive, double.NegativeInfinity).logsumexp(1);
        if (sigma is { } weightSigma) positive = positive * Weights(z1, z2, weightSigma).repeat(2);
        return (negatives - positive).mean().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// DCLW's weights [N] of the positive pairs of z1, z2 [N, D]: w_i = 2 − N·exp(c_i/σ) / Σ_k exp(c_k/σ), c_i the cosine
    /// of row i of z1 and z2, so they average 1 and the pairs that already agree most weigh least. No gradient flows
    /// through them.
    /// </summary>
    public static Tensor Weights(Tensor z1, Tensor z2, double sigma = DefaultSigma)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var cosines = (F.normalize(z1.detach(), dim: 1) * F.normalize(z2.detach(), dim: 1)).sum(1);
        return (2 - z1.shape[0] * softmax(cosines / sigma, 0)).MoveToOuterDisposeScope();
    }
}
