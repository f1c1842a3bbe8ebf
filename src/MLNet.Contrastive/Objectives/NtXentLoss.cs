using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (InfoNCE over 2N views).
/// </summary>
public static class NtXentLoss
{
    /// <summary>Default temperature τ (SimCLR uses 0.1–0.5; 0.2 works well for small CNNs).</summary>
    public const double DefaultTemperature = 0.2;

    /// <summary>
    /// z1, z2: [N, D], two views of the same N images (row i of z1 and of z2 form a positive pair).
    /// All 2N embeddings are L2-normalised; each anchor's logits are its cosine similarities to the other
    /// 2N − 1 embeddings divided by τ; the loss is the mean over the 2N anchors of
    /// −log softmax at the positive, so each anchor has one positive and 2N − 2 negatives. Returns a scalar.
    /// </summary>
    public static Tensor Compute(Tensor z1, Tensor z2, double temperature = DefaultTemperature)
    {
        if (z1.ndim != 2 || !z1.shape.SequenceEqual(z2.shape))
            throw new ArgumentException($"z1 and z2 must both be [N, D]; got [{string.Join(", ", z1.shape)}] and [{string.Join(", ", z2.shape)}].");
        if (temperature <= 0) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "The temperature must be positive.");
        var n = z1.shape[0];
        if (n < 2) throw new ArgumentException("NT-Xent needs at least two images per batch (one negative pair).");

        using var scope = NewDisposeScope();
        var z = F.normalize(cat(new[] { z1, z2 }, 0), dim: 1);
        var logits = z.mm(z.t()) / temperature;
        // An embedding is never its own negative.
        logits = logits.masked_fill(eye(2 * n, dtype: ScalarType.Bool, device: z.device), double.NegativeInfinity);
        var targets = cat(new[] { arange(n, 2 * n, device: z.device), arange(0, n, device: z.device) });
        return F.cross_entropy(logits, targets).MoveToOuterDisposeScope();
    }
}
