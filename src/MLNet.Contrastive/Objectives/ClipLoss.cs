using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// CLIP's symmetric InfoNCE (Radford et al. 2021) between two towers' embeddings of N paired inputs, with a learned
/// temperature kept as a log logit scale (OpenCLIP's <c>logit_scale</c>, clamped after every step).
/// </summary>
public static class ClipLoss
{
    /// <summary>CLIP's initial temperature, 0.07 (logit scale 1/0.07 ≈ 14.3).</summary>
    public const double DefaultTemperature = 0.07;

    /// <summary>CLIP's largest logit scale, 100 (temperature 0.01): the clamp keeps training from sharpening the logits without bound.</summary>
    public const double DefaultMaxLogitScale = 100;

    /// <summary>
    /// a, b: [N, P], the embeddings of the N pairs by each tower (row i of a and row i of b are a pair); logScale: the
    /// log logit scale, a scalar. Both sides are L2-normalised; logits = exp(logScale) · a bᵀ [N, N]; the loss is the
    /// mean of the cross-entropy of each row of a over the N rows of b at its pair, and of each row of b over the rows
    /// of a: ½ (CE(logits, I) + CE(logitsᵀ, I)). Each pair has N − 1 negatives in each direction. Returns a scalar.
    /// </summary>
    public static Tensor Compute(Tensor a, Tensor b, Tensor logScale)
    {
        ShapeCheck.SamePairs(a, b, "The first tower's embeddings", "the second tower's", minimumRows: 2);
        if (logScale.numel() != 1) throw new ArgumentException($"The log logit scale must be a scalar; got [{string.Join(", ", logScale.shape)}].", nameof(logScale));
        using var scope = NewDisposeScope();
        var logits = logScale.exp() * F.normalize(a, dim: 1).mm(F.normalize(b, dim: 1).t());
        var targets = arange(a.shape[0], device: a.device);
        return ((F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2).MoveToOuterDisposeScope();
    }

    /// <summary>The log logit scale that a temperature τ gives: log(1/τ).</summary>
    public static double LogScale(double temperature) => -Math.Log(temperature);

    /// <summary>Clamps the log logit scale in place to [0, log(<paramref name="maxLogitScale"/>)] (temperature in [1/max, 1]), as CLIP does after each step.</summary>
    public static void Clamp(Tensor logScale, double maxLogitScale = DefaultMaxLogitScale)
    {
        using var noGrad = no_grad();
        logScale.clamp_(0, Math.Log(maxLogitScale));
    }
}
