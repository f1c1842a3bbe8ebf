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
        Check(z1, z2, temperature);
        using var scope = NewDisposeScope();
        var (logits, positives) = Logits(z1, z2, temperature);
        return F.cross_entropy(logits, positives).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The family's shared similarities: the 2N × 2N cosine similarities of the L2-normalised views [z1; z2] divided by
    /// τ, each row's own column set to −∞ (an embedding is never its own negative), and each row's positive column [2N]
    /// (row i of z1 pairs with row i of z2). <see cref="DecoupledContrastiveLoss"/> builds on the same logits.
    /// </summary>
    internal static (Tensor Logits, Tensor Positives) Logits(Tensor z1, Tensor z2, double temperature)
    {
        var n = z1.shape[0];
        var z = F.normalize(cat(new[] { z1, z2 }, 0), dim: 1);
        var logits = (z.mm(z.t()) / temperature).masked_fill(eye(2 * n, dtype: ScalarType.Bool, device: z.device), double.NegativeInfinity);
        var positives = cat(new[] { arange(n, 2 * n, device: z.device), arange(0, n, device: z.device) });
        return (logits, positives);
    }

    /// <summary>
    /// <see cref="Compute"/>'s value and its gradients with respect to z1 and z2 [N, D], without a graph: the 2N × 2N
    /// similarities are formed <paramref name="blockRows"/> anchors at a time, so memory holds blockRows × 2N of them
    /// instead of (2N)² and the intermediates autograd would keep. With u the normalised views, P the row softmax of
    /// the masked similarities and u⁺ each view's positive, ∂L/∂u = (P u + Pᵀ u − 2 u⁺) / (2N τ), then through the
    /// normalisation. For gradient caching at large batches.
    /// </summary>
    public static (Tensor Loss, Tensor Gradient1, Tensor Gradient2) ComputeWithGradient(Tensor z1, Tensor z2, double temperature = DefaultTemperature, int blockRows = 1024)
    {
        Check(z1, z2, temperature);
        if (blockRows < 1) throw new ArgumentOutOfRangeException(nameof(blockRows), blockRows, "A block needs at least one row.");
        var n = z1.shape[0];

        using var scope = NewDisposeScope();
        var views = cat(new[] { z1.detach(), z2.detach() }, 0).requires_grad_(true);
        var u = F.normalize(views, dim: 1);
        var m = 2 * n;
        var positives = cat(new[] { arange(n, m, device: u.device), arange(0, n, device: u.device) });
        var unit = u.detach();
        var towardsAll = zeros_like(unit);   // Σ over anchors in the block's rows: P u
        var fromAll = zeros_like(unit);      // Σ over blocks: Pᵀ u_block
        var loss = zeros(1, dtype: ScalarType.Float64, device: u.device).squeeze();
        using (no_grad())
        {
            for (long start = 0; start < m; start += blockRows)
            {
                using var block = NewDisposeScope();
                var rows = Math.Min(blockRows, m - start);
                var anchors = unit.narrow(0, start, rows);
                var logits = anchors.mm(unit.t()) / temperature;
                var self = arange(start, start + rows, device: u.device);
                logits.index_put_(double.NegativeInfinity, arange(rows, device: u.device), self);
                var logSumExp = logits.logsumexp(1);
                var positive = logits.gather(1, positives.narrow(0, start, rows).unsqueeze(1)).squeeze(1);
                loss.add_((logSumExp - positive).sum().to_type(ScalarType.Float64));
                var p = (logits - logSumExp.unsqueeze(1)).exp();
                towardsAll.narrow(0, start, rows).add_(p.mm(unit));
                fromAll.add_(p.t().mm(anchors));
            }
        }
        var gradient = (towardsAll + fromAll - 2 * unit.index_select(0, positives)) / (m * temperature);
        u.backward([gradient]);
        var gradients = views.grad!.split(n);
        return ((loss / m).to_type(z1.dtype).MoveToOuterDisposeScope(), gradients[0].MoveToOuterDisposeScope(), gradients[1].MoveToOuterDisposeScope());
    }

    internal static void Check(Tensor z1, Tensor z2, double temperature)
    {
        if (z1.ndim != 2 || !z1.shape.SequenceEqual(z2.shape))
            throw new ArgumentException($"z1 and z2 must both be [N, D]; got [{string.Join(", ", z1.shape)}] and [{string.Join(", ", z2.shape)}].");
        if (temperature <= 0) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "The temperature must be positive.");
        if (z1.shape[0] < 2) throw new ArgumentException("NT-Xent needs at least two images per batch (one negative pair).");
    }
}
