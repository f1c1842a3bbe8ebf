using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// Binary noise-contrastive estimation (Gutmann &amp; Hyvärinen 2010; Wu et al. 2018; VISSL's nce_loss): each
/// positive pair against k noise samples, as a logistic classification "data or noise" with the noise-distribution
/// correction k·Pn. Unlike InfoNCE/NT-Xent there is no softmax over the candidates.
/// </summary>
public static class NceLoss
{
    /// <summary>Noise samples per positive pair.</summary>
    public const int DefaultNoiseSamples = 16;

    /// <summary>
    /// positive [N]: model probabilities P(x) of the N positive pairs; noise [N, k]: of each anchor's k noise samples;
    /// <paramref name="noiseProbability"/>: Pn, the probability of a sample under the noise distribution
    /// (1 / pool size for uniform sampling). With h(x) = P(x) / (P(x) + k·Pn), returns the scalar
    /// −(1/N) Σᵢ [ log h(posᵢ) + Σⱼ log(1 − h(noiseᵢⱼ)) ].
    /// </summary>
    public static Tensor Compute(Tensor positive, Tensor noise, double noiseProbability)
    {
        if (positive.ndim != 1 || noise.ndim != 2 || noise.shape[0] != positive.shape[0])
            throw new ArgumentException($"positive must be [N] and noise [N, k]; got [{string.Join(", ", positive.shape)}] and [{string.Join(", ", noise.shape)}].");
        if (noiseProbability is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(noiseProbability), noiseProbability, "Pn must be in (0, 1].");
        using var scope = NewDisposeScope();
        var kPn = noise.shape[1] * noiseProbability;
        var dataTerm = (positive / (positive + kPn)).log();
        var noiseTerm = (kPn / (noise + kPn)).log().sum(1);
        return (-(dataTerm + noiseTerm).mean()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Model probabilities from similarities: P = exp(s / τ) / Z, with the partition function Z estimated, as in
    /// Wu et al., by pool size × the mean of exp(s / τ) over all the given scores (treated as a constant).
    /// similarities: any shape; returns the same shape.
    /// </summary>
    public static Tensor Probabilities(Tensor positiveSimilarity, Tensor noiseSimilarity, double temperature, long poolSize,
        out Tensor noiseProbabilities)
    {
        var positive = (positiveSimilarity / temperature).exp();
        var noise = (noiseSimilarity / temperature).exp();
        var partition = (cat(new[] { positive.detach().flatten(), noise.detach().flatten() }).mean() * poolSize);
        noiseProbabilities = noise / partition;
        return positive / partition;
    }
}
