using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.Contrastive.Objectives;

/// <summary>
/// MoCo's InfoNCE (He et al. 2020): each query against its own key and a queue of K keys of earlier batches, which
/// supplies negatives beyond the batch.
/// </summary>
public static class MoCoLoss
{
    /// <summary>
    /// queries [N, D] (with gradient), keys [N, D] (momentum encoder, no gradient), queue [K, D]; all rows L2-normalised.
    /// Logits [N, 1 + K] = [q·k, q·queueᵀ] / τ; the loss is the mean cross-entropy with the positive at index 0. Returns a scalar.
    /// </summary>
    public static Tensor Compute(Tensor queries, Tensor keys, Tensor queue, double temperature)
    {
        ShapeCheck.SamePairs(queries, keys, nameof(queries), nameof(keys));
        if (queue.ndim != 2 || queue.shape[1] != queries.shape[1])
            throw new ArgumentException($"The queue must be [K, {queries.shape[1]}]; got [{string.Join(", ", queue.shape)}].");
        if (!(temperature > 0)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "The temperature must be positive.");
        using var scope = NewDisposeScope();
        var positive = (queries * keys.detach()).sum(1, keepdim: true);
        var negative = queries.mm(queue.detach().t());
        var logits = cat(new[] { positive, negative }, 1) / temperature;
        var targets = zeros(queries.shape[0], dtype: ScalarType.Int64, device: queries.device);
        return F.cross_entropy(logits, targets).MoveToOuterDisposeScope();
    }
}
