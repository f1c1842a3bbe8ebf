using MLNet.Contrastive.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.Contrastive.Models;

/// <summary>
/// The batch norm of every encoder and head here: BatchNorm1d ([N, C]) or BatchNorm2d ([N, C, H, W]) with the same
/// parameters, buffers and state-dict names, which in one process it is. During a data-parallel training step with
/// synchronisation on (<see cref="PretrainOptions.SynchronizeBatchNorm"/>) it normalises by the mean and variance of
/// every rank's batch together, and moves the running statistics by them, as PyTorch's <c>nn.SyncBatchNorm</c> does:
/// N ranks at batch B/N then compute what one process computes at batch B. The statistics travel as one average over
/// the ranks whose backward pass is the same average of their gradients, so the gradient is the global batch's too. The
/// ranks may hold different numbers of rows (MoCo's shuffled key groups), none included: each sends its sums and count.
/// </summary>
public sealed class SyncBatchNorm : BatchNorm
{
    [ThreadStatic] private static IDataParallel? group;

    private readonly bool spatial;

    /// <summary>A batch norm over <paramref name="features"/> channels of [N, C] inputs, or of [N, C, H, W] ones when <paramref name="spatial"/>.</summary>
    public SyncBatchNorm(long features, bool spatial) : base(features, 1e-5, 0.1, true, true, null, null, spatial ? "BatchNorm2d" : "BatchNorm1d")
    {
        this.spatial = spatial;
    }

    /// <summary>BatchNorm1d: [N, C] → [N, C].</summary>
    public static SyncBatchNorm OneD(long features) => new(features, spatial: false);

    /// <summary>BatchNorm2d: [N, C, H, W] → [N, C, H, W].</summary>
    public static SyncBatchNorm TwoD(long features) => new(features, spatial: true);

    /// <summary>
    /// Until the result is disposed, batch norms in training mode on this thread normalise over the ranks of
    /// <paramref name="ranks"/> (null or one rank: each over its own batch). Every rank must run the same forward passes.
    /// </summary>
    internal static IDisposable Synchronize(IDataParallel? ranks)
    {
        var previous = group;
        group = ranks is { WorldSize: > 1 } ? ranks : null;
        return new Restore(previous);
    }

    /// <summary>Whether batch norms in training mode on this thread normalise over several ranks now (<see cref="Synchronize"/>).</summary>
    internal static bool Synchronizing => group is not null;

    /// <inheritdoc/>
    protected override void ValidateInputDimensions(Tensor input)
    {
        if (spatial ? input.ndim != 4 : input.ndim is not (2 or 3))
            throw new ArgumentException($"expected {(spatial ? "4D" : "2D or 3D")} input (got {input.ndim}D input)");
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        if (!training || group is not { } ranks || running_mean is null || input.ndim != (spatial ? 4 : 2)) return base.forward(input);
        using var scope = NewDisposeScope();
        var channels = num_features;
        var shape = spatial ? new long[] { 1, channels, 1, 1 } : new long[] { 1, channels };
        long[] dimensions = spatial ? [0, 2, 3] : [0];
        var count = input.numel() / channels;
        // Each rank's Σx and Σx² per channel and its count: two plain reductions, which libtorch's CPU kernels do in about
        // half the time of var_mean's. Ranks may hold different numbers of rows (MoCo's shuffled key groups, none at all),
        // so the global mean is the ratio of the sums over the ranks, not a mean of the ranks' means.
        // E[x²] − E[x]² in float32 loses precision only when a channel's mean is far above its spread.
        // Scalars held in using locals: this folder's code also runs outside training steps' collection pauses (TorchSharp#1434).
        using var values = count.ToScalar();
        var local = cat([input.sum(dimensions), input.square().sum(dimensions), full([1], values, dtype: input.dtype, device: input.device)]);
        var global = RankMean.apply(local, ranks);
        var rows = global.narrow(0, 2 * channels, 1);
        var mean = global.narrow(0, 0, channels).div(rows);
        using var zero = 0.ToScalar();
        using var epsilon = eps.ToScalar();
        using var unit = 1.ToScalar();
        var variance = (global.narrow(0, channels, channels).div(rows) - mean.square()).clamp_min(zero);
        // y = x · scale + offset with per-channel scale = γ / √(σ² + ε) and offset = β − μ · scale: one pass over the
        // activations forward (addcmul) instead of a subtraction, a division and the affine.
        var scale = variance.add(epsilon).rsqrt();
        if (weight is not null) scale = scale * weight;
        var offset = weight is null ? -(mean * scale) : bias! - mean * scale;
        var output = offset.view(shape).addcmul(input, scale.view(shape), unit);
        using (no_grad())
        {
            using var one = 1.ToScalar();
            num_batches_tracked!.add_(one);
            var factor = momentum ?? 1.0 / num_batches_tracked.item<long>();
            var total = Math.Round(rows.ToDouble() * ranks.WorldSize);
            using var keep = (1 - factor).ToScalar();
            using var step = factor.ToScalar();
            using var unbiased = (total / Math.Max(total - 1.0, 1.0)).ToScalar();
            running_mean.mul_(keep).add_(mean.detach(), alpha: step);
            running_var!.mul_(keep).add_(variance.detach().mul(unbiased), alpha: step);
        }
        return output.MoveToOuterDisposeScope();
    }

    private sealed class Restore(IDataParallel? previous) : IDisposable
    {
        public void Dispose() => group = previous;
    }

    /// <summary>The mean over the ranks of a float32 vector; its gradient is the mean over the ranks of the output's gradients.</summary>
    private sealed class RankMean : autograd.SingleTensorFunction<RankMean>
    {
        public override string Name => nameof(RankMean);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (local, ranks) = ((Tensor)vars[0], (IDataParallel)vars[1]);
            ctx.save_data("ranks", ranks);
            var mean = local.detach().clone();
            ranks.Average([mean]);
            return mean;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradient)
        {
            var mean = gradient.clone();
            ((IDataParallel)ctx.get_data("ranks")).Average([mean]);
            return [mean, null!]; // none for the ranks
        }
    }
}
